"""`rehome run TARGET --to DEST`: one repository end to end, ending in one pull request."""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from bot import mirror, options
from bot.commands import plan as plan_command
from bot.errors import UsageError
from bot.forge import FORGES, Forge, GitHubForge, LocalForge
from bot.git import origin_repository
from bot.output import check_writable_file, print_json, write_atomically
from bot.pipeline import RunResult, run_repository
from bot.registry import Secret

HELP = "move a repository's third-party images to the mirror and open (or update) one pull request"
CONFIG_HELP = "rehome.yaml to use instead of the one in TARGET"

log = logging.getLogger("rehome")

_OWNER_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", default=".", metavar="TARGET",
                        help="a local checkout (default: .) or OWNER/NAME on GitHub")
    options.add_destination(parser)
    plan_command.add_plan_options(parser)
    options.add_format(parser)
    group = parser.add_argument_group("where the pull request goes")
    group.add_argument("--forge", choices=sorted(FORGES),
                       help="local (default for a path: branch in the local repository, text to --pr-file) "
                            "or github (default for OWNER/NAME; for a path, OWNER/NAME comes from its origin remote)")
    options.add_github_options(group)
    group.add_argument("--pr-file", metavar="FILE",
                       help="local forge: write the pull request title and body here (emptied as a run "
                            "starts, and left empty when it proposes none or fails)")
    options.add_pull_request_options(group)
    options.add_scan_options(parser)
    mirror.add_copy_arguments(parser)
    mirror.add_registry_arguments(parser)


def make_forge(args: argparse.Namespace, environ: dict[str, str] | os._Environ = os.environ) -> Forge:
    """The forge for TARGET: a local path (local forge unless --forge github) or OWNER/NAME (GitHub)."""
    path = Path(args.target)
    is_path = path.exists()
    if not is_path and not _OWNER_NAME_RE.match(args.target):
        raise UsageError(f"{args.target}: no such folder, and not OWNER/NAME")
    kind = args.forge or ("local" if is_path else "github")
    if kind == "local":
        if not is_path:
            raise UsageError(f"{args.target}: the local forge needs a local checkout")
        pr_file = Path(args.pr_file) if args.pr_file else None
        if pr_file is not None:
            check_writable_file(pr_file, "--pr-file")
            if not args.dry_run:
                _empty(pr_file)
        return LocalForge(path, pr_file, stream=sys.stdout if args.format == "table" else None)
    repository = origin_repository(path) if is_path else args.target
    token = github_token(args, environ, options.missing_token(args.token_env, environ))
    return GitHubForge(repository, token, github_url=args.github_url)


def github_token(args: argparse.Namespace, environ: Mapping[str, str], missing: UsageError) -> Secret | None:
    """The token in --token-env's variable; a run that pushes needs one (`missing` is the refusal
    without, in the caller's terms), a dry run goes without."""
    value = environ.get(args.token_env)
    if not value and not args.dry_run:
        raise missing
    return Secret(value) if value else None


def _empty(pr_file: Path) -> None:
    """Before any work: a run that then fails leaves no earlier run's pull request in the file."""
    try:
        write_atomically(pr_file, "")
    except OSError as exc:
        raise UsageError(f"--pr-file {pr_file}: cannot write it: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    forge = make_forge(args)
    result = run_repository(forge, args)
    if result.status == "stopped":
        print(f"rehome: {result.message}", file=sys.stderr)
    if args.format == "json":
        print_json(result.to_json())
        if result.status != "stopped":
            log.info("%s", result.message)
    else:
        print(render(result))
    return result.exit_code


def render(result: RunResult) -> str:
    if result.status == "stopped":
        return ""
    lines = []
    if result.status == "dry-run" and result.plan is not None:
        lines += [plan_command.render(result.plan), ""]
    if result.images:
        lines += [mirror.render(result.images), ""]
    if result.status == "dry-run" and result.changed:
        lines += [result.diff.rstrip("\n"), "", f"{result.title}\n\n{result.body}".rstrip("\n"), ""]
    lines += [f"{problem.path}:{problem.line}: {problem.raw}: {problem.category}: {problem.reason}"
              for problem in (result.report.not_moved if result.report else ())
              if problem.category in ("failed", "differs", "untouched")]
    lines.append(result.message)
    return "\n".join(lines)
