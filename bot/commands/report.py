"""`rehome report status --state FILE` (which of a sweep's pull requests are open, merged or
closed) and `rehome report merge OUT_DIR SHARD_REPORT…` (shards' reports as one)."""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from github import GithubException

from bot import options
from bot.errors import UsageError
from bot.forge.github import LOOPBACK, SECONDS_BETWEEN_REQUESTS, UNREADABLE_ANSWER, Pacer, api_url, failure_text
from bot.output import check_readable_file, plural, print_json, render_table
from bot.sweep import access
from bot.sweep import report as sweep_report
from bot.sweep.access import SweepError
from bot.sweep.ratelimit import RateLimiter
from bot.sweep.state import StateJournal

HELP = "follow a sweep: its pull requests' states (status), or shards' reports merged into one (merge)"
CONFIG_HELP = None  # reads no rehome.yaml

_PULL_URL = re.compile(r"/([^/]+)/([^/]+)/pull/(\d+)/?$")
STATES = ("open", "merged", "closed", "unknown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    status = sub.add_parser("status", help="which pull requests in a sweep's state file are open, merged or closed")
    status.add_argument("--state", metavar="FILE", required=True, help="the sweep's --state journal")
    options.add_github_options(status, app=True)
    status.add_argument("--org", metavar="ORG", help="with --app-id: the organisation the App is installed in")
    options.add_format(status)
    status.set_defaults(action=run_status)
    merge = sub.add_parser("merge", help="combine the shards' report.json files into one set of reports")
    merge.add_argument("out_dir", metavar="OUT_DIR", help="where report.md, report.json, report.csv and images.csv go")
    merge.add_argument("reports", nargs="+", metavar="SHARD_REPORT", help="a shard's report.json (or its folder)")
    options.add_format(merge)
    merge.set_defaults(action=run_merge)


def run(args: argparse.Namespace) -> int:
    return int(args.action(args))


@dataclasses.dataclass(frozen=True)
class LatestRun:
    """The repository's last line in the journal: the pull request may be an earlier run's."""

    status: str
    finished_at: str
    error: str | None


@dataclasses.dataclass(frozen=True)
class PullState:
    repo: str
    pr_url: str  # the last one the journal names for the repository
    state: str  # open, merged, closed, or unknown (could not be read: `error` says why)
    error: str | None
    latest_run: LatestRun

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def pull_states(journal: StateJournal, github: Any, limiter: RateLimiter, pacer: Pacer) -> list[PullState]:
    """One API call per pull request (`github` is lazy: the repository object is not fetched)."""
    states = []
    for repo, outcome in sorted(journal.last.items(), key=lambda item: item[0].lower()):
        pr_url = journal.pr_urls.get(repo)
        if pr_url is None:
            continue
        state, error = _pull_state(pr_url, github, limiter, pacer)
        states.append(PullState(repo, pr_url, state, error, LatestRun(outcome.status, outcome.finished_at,
                                                                      outcome.error)))
    return states


def _pull_state(pr_url: str, github: Any, limiter: RateLimiter, pacer: Pacer) -> tuple[str, str | None]:
    """The pull request's state, and why it is `unknown` when it could not be read."""
    match = _PULL_URL.search(urlparse(pr_url).path)
    if match is None:
        return "unknown", "not a pull request URL"
    pacer.wait(write=False)
    limiter.before()
    try:
        pull = github.get_repo(f"{match[1]}/{match[2]}").get_pull(int(match[3]))
        state = "merged" if pull.merged else pull.state
        return (state if state in STATES else "unknown"), None
    except GithubException as exc:
        message = exc.data.get("message") if isinstance(exc.data, dict) else exc.data
        return "unknown", f"GitHub: {exc.status} {message or ''}".strip()
    except UNREADABLE_ANSWER as exc:
        return "unknown", failure_text(f"read {pr_url}", exc)
    except requests.RequestException as exc:  # GitHub out of reach: so for every other pull request too
        raise SweepError(failure_text(f"read {pr_url}", exc)) from None
    finally:
        limiter.observe_requester(github.requester)


def run_status(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    path = Path(args.state)
    check_readable_file(path, "--state")
    journal = StateJournal(path)
    tokens = access.token_source(args.token_env, args.app_id, args.app_key_file, args.app_key_env, environ,
                                 org=args.org, github_url=args.github_url, required=True)
    github = access.client(tokens, args.github_url, lazy=True)
    loopback = (urlparse(api_url(args.github_url)).hostname or "") in LOOPBACK
    pacer = Pacer(0.0 if loopback else SECONDS_BETWEEN_REQUESTS, 0.0)
    states = pull_states(journal, github, RateLimiter(), pacer)
    totals = {state: sum(1 for s in states if s.state == state) for state in STATES}
    without = len(journal.last) - len(states)
    failed = sum(1 for outcome in journal.last.values() if outcome.status == "failed")
    if args.format == "json":
        print_json({"version": 1, "totals": {**totals, "without_pull_request": without, "latest_run_failed": failed},
                    "pull_requests": [s.to_json() for s in states]})
    else:
        rows = [(s.repo, s.state, s.pr_url, s.latest_run.status, _errors(s)) for s in states]
        if rows:
            print(render_table(("REPOSITORY", "STATE", "PULL REQUEST", "LATEST RUN", "ERROR"), rows))
        print(", ".join(f"{totals[s]} {s}" for s in STATES)
              + f"; {plural(without, 'repository', 'repositories')} without a pull request"
              + (f"; the latest run of {plural(failed, 'repository', 'repositories')} failed" if failed else ""))
    return 1 if totals["unknown"] else 0


def _errors(state: PullState) -> str:
    """Why the state is unknown, and what went wrong in the latest run, each on one line."""
    run_error = state.latest_run.error
    return "; ".join(filter(None, [state.error, run_error and f"latest run: {run_error.splitlines()[0]}"]))


def run_merge(args: argparse.Namespace) -> int:
    paths = [Path(p) / "report.json" if Path(p).is_dir() else Path(p) for p in args.reports]
    _check_out_dir(Path(args.out_dir), paths)
    _check_given_once(args.reports, paths)
    merged = sweep_report.merge([(str(p), sweep_report.load(p)) for p in paths])
    sweep_report.write(merged, Path(args.out_dir))
    if args.format == "json":
        print_json(merged.to_json())
    else:
        totals = merged.totals()
        print(f"{plural(len(paths), 'report')} merged into {args.out_dir}: "
              f"{plural(totals['repositories'], 'repository', 'repositories')}, {plural(totals['images'], 'image')}")
        if merged.interrupted:
            print(sweep_report.interrupted_line(merged))
    return 0


def _check_out_dir(out_dir: Path, reports: list[Path]) -> None:
    """Before reading anything: the merged reports replace no report, least of all a shard's (the
    OUT_DIR forgotten: `merge shard-0 shard-1` would make shard-0 hold shard-1's repositories alone)."""
    existing = out_dir / "report.json"
    if any(_same_file(out, report) for out in (out_dir, existing) for report in reports):
        raise UsageError(f"report merge: OUT_DIR {out_dir} is one of the reports to merge; nothing was written",
                         hint="the folder for the merged reports comes first: rehome report merge OUT_DIR "
                              "SHARD_REPORT...")
    if existing.exists():
        raise UsageError(f"report merge: OUT_DIR {out_dir} already holds a report ({existing}) that is not one of "
                         "those to merge; nothing was written", hint="give a new or empty folder")


def _check_given_once(given: list[str], paths: list[Path]) -> None:
    """Before reading anything: no report is named twice (a shard's folder and its report.json), which
    would count its repositories twice."""
    first: dict[tuple[int, int], int] = {}
    for index, path in enumerate(paths):
        try:
            found = path.stat()
        except OSError:
            continue  # reading it says what is wrong
        earlier = first.setdefault((found.st_dev, found.st_ino), index)
        if earlier != index:
            raise UsageError(f"report merge: {given[earlier]} and {given[index]} are the same report "
                             f"({paths[earlier]}); nothing was written", hint="give each shard's report once")


def _same_file(path: Path, other: Path) -> bool:
    try:
        return path.samefile(other)
    except OSError:
        return False
