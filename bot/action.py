"""The GitHub Action's step (`python -m bot.action`), with the inputs `action.yml` passes as
`REHOME_*` environment variables.

`mode: migrate` runs `rehome run "$GITHUB_WORKSPACE" --forge github --format json`, then writes the
step outputs (`$GITHUB_OUTPUT`), the step summary (`$GITHUB_STEP_SUMMARY`) and `::error::`
annotations on the lines whose images could not be moved.

`mode: check` is the gate for pull requests: `rehome check --new-since` the pull request's base
(the whole tree outside pull requests), an annotation on each finding, the findings in the step
summary, and a failing step when new third-party references appear. With `sync: true` it first
runs `rehome sync`, so a version bump's new tag is in the mirror before the merge."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import NoReturn, TextIO

from bot import cli
from bot.check import Report, skipped_message
from bot.commands import check as check_command
from bot.commands import sync as sync_command
from bot.commands.run import github_token, make_forge
from bot.commands.sync import FORK_MESSAGE
from bot.errors import RehomeError, UsageError
from bot.follow import Refused, event_field, from_fork, read_event
from bot.forge.github import GITHUB_API
from bot.gitcmd import GitError, run_git
from bot.mirror import NEEDS_ATTENTION, MirrorImage
from bot.output import plural
from bot.pipeline import RunResult, run_repository
from bot.render import code_span, markdown_text, render_step_summary

TOKEN_ENV = "REHOME_TOKEN"
# The inputs that become `rehome` flags, each passed as `--flag=value`: a value starting with "-"
# stays a value, never read as another flag.
INPUT_FLAGS = {"destination": "--to", "config": "--config", "labels": "--labels", "reviewers": "--reviewers",
               "branch": "--branch", "pulls": "--pulls"}
# The inputs that are true or false, and the flag each `true` adds.
BOOLEAN_INPUTS = {"dry-run": "--dry-run", "recreate-closed": "--recreate-closed", "sync": None}
# How messages name those flags: in the Action's terms.
INPUT_NAMES = {flag: f"the {name} input" for name, flag in (*INPUT_FLAGS.items(), *BOOLEAN_INPUTS.items()) if flag}
# Not-moved categories a human must act on: each becomes an ::error:: on its line.
ANNOTATED = ("failed", "differs", "untouched")


def run_arguments(environ: Mapping[str, str]) -> list[str]:
    """`rehome run`'s arguments from the Actions environment and the inputs."""
    argv = ["run", environ.get("GITHUB_WORKSPACE") or ".", "--forge", "github", "--format", "json",
            "--token-env", TOKEN_ENV, *_flags(environ, INPUT_FLAGS)]
    argv += [flag for name, flag in BOOLEAN_INPUTS.items() if flag and _true(environ, name)]
    api = environ.get("GITHUB_API_URL", "").rstrip("/")
    if api and api != GITHUB_API:
        argv += ["--github-url", api]
    return argv


def _variable(name: str) -> str:
    """The environment variable `action.yml` passes input `x-y` as: `REHOME_X_Y`."""
    return "REHOME_" + name.upper().replace("-", "_")


def _true(environ: Mapping[str, str], name: str) -> bool:
    """A boolean input: `true` or `false` (any case), empty for the default (false). Anything else is
    refused: `dry-run: yes` read as false would make a real run."""
    text = environ.get(_variable(name), "").strip()
    if text.lower() not in ("", "true", "false"):
        raise UsageError(f"the {name} input must be true or false, not {text!r}")
    return text.lower() == "true"


def _flags(environ: Mapping[str, str], inputs: Iterable[str]) -> list[str]:
    """`--flag=value` for each of these inputs that is given."""
    given = {name: environ.get(_variable(name), "").strip() for name in inputs}
    return [f"{INPUT_FLAGS[name]}={value}" for name, value in given.items() if value]


def _common(environ: Mapping[str, str]) -> list[str]:
    return _flags(environ, ("destination", "config"))


def check_arguments(environ: Mapping[str, str], base: str | None) -> list[str]:
    argv = ["check", environ.get("GITHUB_WORKSPACE") or ".", "--format", "json", *_common(environ)]
    return argv + (["--new-since", base] if base else [])


def sync_arguments(environ: Mapping[str, str]) -> list[str]:
    argv = ["sync", environ.get("GITHUB_WORKSPACE") or ".", "--format", "json", *_common(environ)]
    return argv + (["--dry-run"] if _true(environ, "dry-run") else [])


def pull_request_base(environ: Mapping[str, str]) -> str | None:
    """The base commit of the pull request this run is for (fetched when the checkout lacks it)."""
    if not environ.get("GITHUB_EVENT_NAME", "").startswith("pull_request"):
        return None
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        raise UsageError("cannot read the pull request's base: GITHUB_EVENT_PATH is not set")
    sha = event_field(read_event(path), "pull_request", "base", "sha")
    if not isinstance(sha, str) or not sha:
        raise UsageError(f"{path}: the GitHub event names no pull request base (pull_request.base.sha)")
    workspace = environ.get("GITHUB_WORKSPACE") or "."
    try:
        run_git(workspace, ["cat-file", "-e", f"{sha}^{{commit}}"])
    except GitError:
        try:
            run_git(workspace, ["fetch", "--no-tags", "--depth=1", "origin", sha])
        except GitError as exc:
            raise UsageError(f"cannot fetch the pull request's base {sha}: {exc}") from None
    return sha


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(result: RunResult) -> list[str]:
    lines = []
    if result.status == "stopped":
        lines.append(f"::error::{_escape_data(result.message)}")
    lines += [f"::warning::{_escape_data(warning)}" for warning in result.warnings]
    for item in result.report.not_moved if result.report else ():
        if item.category in ANNOTATED:
            lines.append(f"::error file={_escape_property(item.path)},line={item.line},col={item.column}::"
                         + _escape_data(f"{item.raw} was not moved ({item.category}): {item.reason}"))
    return lines


def outputs(result: RunResult, data: Mapping[str, object]) -> dict[str, str]:
    """The step outputs, from the run's result and its JSON (`data`). `changed` is true only when
    this run pushed the branch: a dry run's `changed` (in the JSON: files it would change) is not."""
    def text(value: object) -> str:
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    return {"pr-url": text(data["pr_url"]), "pr-number": text(data["pr_number"]),
            "changed": text(result.changed and result.status != "dry-run"),
            "moved-count": text(data["moved"]), "unresolved-count": text(data["unresolved"]),
            "status": text(data["status"])}


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)


class _InputsParser(argparse.ArgumentParser):
    """Refuses arguments with a usage error (an `::error::` annotation) that names the input a
    refused flag came from: argparse would name the flag, which Action users never see, and
    exit with its message on standard error only."""

    def error(self, message: str) -> NoReturn:
        for flag, name in INPUT_NAMES.items():
            message = message.replace(f"argument {flag}:", f"{name}:")
        message = message.replace("argument --github-url:", "GITHUB_API_URL (the GitHub API the runner names):")
        raise UsageError(message)


def _parse(argv: list[str]) -> argparse.Namespace:
    args = cli.build_parser(argv, _InputsParser).parse_args(argv)
    args.flag_names = INPUT_NAMES
    cli._setup_logging(args)
    return args


def _sync_summary(images: list[MirrorImage], refused: list[Refused]) -> str:
    lines = ["## rehome sync", "", f"{sync_command.summary(images, refused)}."]
    copied = [i for i in images if i.status == "copied"]
    lines += [f"- copied {code_span(i.source, table=False)} to {code_span(i.target, table=False)}" for i in copied]
    lines += [f"- **{i.status}** {code_span(i.source, table=False)}: {markdown_text(i.problem or '')}"
              for i in images if i.status in NEEDS_ATTENTION]
    lines += [f"- refused {code_span(r.image, table=False)}: {markdown_text(r.reason)}" for r in refused]
    return "\n".join(lines) + "\n\n"


def _check_summary(report: Report, base: str | None) -> str:
    scope = f"added since `{base[:12]}`" if base else "in the repository"
    counts = f"{plural(len(report.errors), 'third-party image reference')} {scope}, {len(report.warnings)} unresolved"
    if report.skipped:
        counts += f", {plural(len(report.skipped), 'file')} not read"
    lines = ["## rehome check", "", counts + "."]
    for finding in report.findings:
        ref = finding.reference
        where = code_span(f"{ref.path}:{ref.line}", table=False)
        lines.append(f"- {finding.level}: {where} {markdown_text(finding.message)}")
    lines += [f"- {report.skipped_level}: {code_span(s.path, table=False)} {markdown_text(skipped_message(s))}"
              for s in report.skipped]
    return "\n".join(lines) + "\n"


def check_mode(environ: Mapping[str, str], stdout: TextIO) -> int:
    failed, summary = False, environ.get("GITHUB_STEP_SUMMARY")
    if _true(environ, "sync"):
        # In the summary at once: what was copied stays said when the check then stops on an error.
        if from_fork(dict(environ)):
            _append(summary, f"## rehome sync\n\n{FORK_MESSAGE}.\n\n")
        else:
            images, refused = sync_command.sync(_parse(sync_arguments(environ)))
            _append(summary, _sync_summary(images, refused))
            failed = sync_command.exit_code(images, refused) != 0
    base = pull_request_base(environ)
    _, report = check_command.check(_parse(check_arguments(environ, base)))
    print(json.dumps(report.to_json(), indent=2), file=stdout)
    for finding in report.findings:
        ref = finding.reference
        print(f"::{finding.level} file={_escape_property(ref.path)},line={ref.line},col={ref.column}::"
              + _escape_data(finding.message), file=stdout)
    for skipped in report.skipped:
        print(f"::{report.skipped_level} file={_escape_property(skipped.path)}::"
              + _escape_data(skipped_message(skipped)), file=stdout)
    _append(summary, _check_summary(report, base))
    _append(environ.get("GITHUB_OUTPUT"), f"findings={len(report.errors)}\nunresolved-count={len(report.warnings)}\n")
    return 1 if report.failed or failed else 0


def migrate_mode(environ: Mapping[str, str], stdout: TextIO) -> int:
    args = _parse(run_arguments(environ))
    # Before make_forge, which would say it in `rehome run`'s terms (--token-env).
    github_token(args, environ, UsageError(
        "no GitHub token: the action's token input is empty",
        hint="leave the token input out to use the workflow's GITHUB_TOKEN, or give it a token that may push and "
             "open pull requests (a secret that is not defined reads as empty)"))
    result = run_repository(make_forge(args, dict(environ)), args)
    data = result.to_json()
    print(json.dumps(data, indent=2), file=stdout)
    for line in annotations(result):
        print(line, file=stdout)
    _append(environ.get("GITHUB_OUTPUT"), "".join(f"{k}={v}\n" for k, v in outputs(result, data).items()))
    summary = step_summary(result)
    _append(environ.get("GITHUB_STEP_SUMMARY"), summary if summary.endswith("\n") else summary + "\n")
    return result.exit_code


def step_summary(result: RunResult) -> str:
    """The pull request's text; above it, what became of the pull request when that is not plain (its
    change was declined before, or its base changed)."""
    if result.report is None:
        return f"## rehome\n\n{result.message}\n"
    summary = render_step_summary(result.report, result.templates)
    pull = result.pull_request
    if result.status == "declined" and pull is not None:
        return (f"> The pull request <{pull.url}> was closed without merging, and this change is the same: it is not "
                f"proposed again. {result.reopen_advice.capitalize()}, or set the `recreate-closed` input to `true` "
                "for a new one.\n\n" + summary)
    if result.retargeted_from is not None and pull is not None:
        return (f"> The pull request <{pull.url}> now merges into {code_span(result.report.base, table=False)}, the "
                f"default branch, not {code_span(result.retargeted_from, table=False)}.\n\n" + summary)
    return summary


MODES = {"migrate": migrate_mode, "check": check_mode}


def main(environ: Mapping[str, str] = os.environ, stdout: TextIO = sys.stdout) -> int:
    mode = environ.get("REHOME_MODE", "").strip() or "migrate"
    if mode not in MODES:
        print(f"::error::the mode input must be one of {', '.join(MODES)}, not {mode!r}", file=stdout)
        return 2
    try:
        return MODES[mode](environ, stdout)
    except RehomeError as exc:
        print(f"::error::{_escape_data(str(exc))}", file=stdout)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
