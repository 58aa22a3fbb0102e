"""The GitHub Action's step (`python -m bot.action`): `rehome run "$GITHUB_WORKSPACE" --forge github
--format json` with the inputs `action.yml` passes as `REHOME_*` environment variables; then the
step outputs (`$GITHUB_OUTPUT`), the step summary (`$GITHUB_STEP_SUMMARY`) and `::error::`
annotations on the lines whose images could not be moved."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import TextIO

from bot import cli
from bot.commands.run import make_forge
from bot.errors import RehomeError
from bot.forge.github import GITHUB_API
from bot.pipeline import RunResult, run_repository
from bot.render import render_step_summary

TOKEN_ENV = "REHOME_TOKEN"
# Not-moved categories a human must act on: each becomes an ::error:: on its line.
ANNOTATED = ("failed", "differs", "untouched")


def run_arguments(environ: Mapping[str, str]) -> list[str]:
    """`rehome run`'s arguments from the Actions environment and the inputs."""
    argv = ["run", environ.get("GITHUB_WORKSPACE") or ".", "--forge", "github", "--format", "json",
            "--token-env", TOKEN_ENV]
    flags = (("REHOME_DESTINATION", "--to"), ("REHOME_CONFIG", "--config"), ("REHOME_LABELS", "--labels"),
             ("REHOME_REVIEWERS", "--reviewers"), ("REHOME_BRANCH", "--branch"))
    for name, flag in flags:
        if environ.get(name, "").strip():
            argv += [flag, environ[name].strip()]
    if environ.get("REHOME_DRY_RUN", "").strip().lower() == "true":
        argv.append("--dry-run")
    api = environ.get("GITHUB_API_URL", "").rstrip("/")
    if api and api != GITHUB_API:
        argv += ["--github-url", api]
    return argv


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(result: RunResult) -> list[str]:
    lines = []
    if result.status == "stopped":
        lines.append(f"::error::{_escape_data(result.message)}")
    for item in result.report.not_moved if result.report else ():
        if item.category in ANNOTATED:
            lines.append(f"::error file={_escape_property(item.path)},line={item.line},col={item.column}::"
                         + _escape_data(f"{item.raw} was not moved ({item.category}): {item.reason}"))
    return lines


def outputs(data: Mapping[str, object]) -> dict[str, str]:
    def text(value: object) -> str:
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    return {"pr-url": text(data["pr_url"]), "pr-number": text(data["pr_number"]), "changed": text(data["changed"]),
            "moved-count": text(data["moved"]), "unresolved-count": text(data["unresolved"])}


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)


def main(environ: Mapping[str, str] = os.environ, stdout: TextIO = sys.stdout) -> int:
    argv = run_arguments(environ)
    if environ.get("REHOME_PULLS", "").strip():
        print("::warning::the pulls input is not supported by this version of rehome; pull counts are left out",
              file=stdout)
    try:
        args = cli.build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    cli._setup_logging(args)
    try:
        result = run_repository(make_forge(args, dict(environ)), args)
    except RehomeError as exc:
        print(f"::error::{_escape_data(str(exc))}", file=stdout)
        return exc.exit_code
    data = result.to_json()
    print(json.dumps(data, indent=2), file=stdout)
    for line in annotations(result):
        print(line, file=stdout)
    _append(environ.get("GITHUB_OUTPUT"), "".join(f"{k}={v}\n" for k, v in outputs(data).items()))
    if result.report is not None:
        summary = render_step_summary(result.report, result.templates)
    else:
        summary = f"## rehome\n\n{result.message}\n"
    _append(environ.get("GITHUB_STEP_SUMMARY"), summary if summary.endswith("\n") else summary + "\n")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
