"""`rehome sweep --org ORG --to DEST`: an organisation's repositories, one pull request each
(or, with `--inventory`, only the org-wide report), resumable and shardable."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot import mirror, options
from bot.commands import plan as plan_command
from bot.config import Config
from bot.errors import RehomeError, UsageError
from bot.mirror import JOBS_HELP, MirrorOptions
from bot.output import check_writable_file, check_writable_folder, plural, print_json, render_table
from bot.registry.copy import DEFAULT_JOBS
from bot.sweep import access
from bot.sweep import report as sweep_report
from bot.sweep.mirrorcache import SharedMirror
from bot.sweep.progress import SweepProgress
from bot.sweep.ratelimit import RateLimiter
from bot.sweep.report import RepoEntry, SweepReport
from bot.sweep.runner import WORKERS, Interrupts, SweepContext, Swept, failed_names, sweep
from bot.sweep.select import RepoInfo, Selection, Unreadable, over_limit, parse_shard, select
from bot.sweep.state import StateJournal, inputs_of

HELP = "run rehome over a GitHub organisation's repositories: inventory, or one pull request each"
CONFIG_HELP = "rehome.yaml to use for every repository instead of its own (its destination is the sweep's without --to)"

log = logging.getLogger("rehome")

DEFAULT_REPO_JOBS = 4
NO_DESTINATION = ("no destination: give --to DEST, or a --config FILE that sets `destination` (the repositories' "
                  "own rehome.yaml cannot: a sweep copies to one destination)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_argument_group("which repositories")
    which.add_argument("--org", metavar="ORG", help="the GitHub organisation whose repositories to sweep")
    which.add_argument("--repos-file", metavar="FILE", help="sweep these repositories instead: owner/name per line")
    which.add_argument("--repo-include", metavar="REGEX", action="append", default=[],
                       help="only repositories whose owner/name this regular expression matches (repeatable)")
    which.add_argument("--repo-exclude", metavar="REGEX", action="append", default=[],
                       help="leave out repositories whose owner/name it matches (repeatable)")
    which.add_argument("--topic", action="append", default=[], help="only repositories with this topic (repeatable: any)")
    which.add_argument("--include-archived", action="store_true", help="also archived repositories")
    which.add_argument("--include-forks", action="store_true", help="also forks")
    which.add_argument("--include-empty", action="store_true", help="also repositories without commits")
    which.add_argument("--limit", type=int, metavar="N",
                       help="at most N repositories (after the filters); with --state, N that run: those it "
                            "has finished are skipped and not counted")
    which.add_argument("--shard", metavar="K/N", help="only this machine's share: shard K of N (0 <= K < N)")
    github = parser.add_argument_group("GitHub")
    options.add_github_options(github, app=True)
    what = parser.add_argument_group("what the sweep does")
    what.add_argument("--inventory", action="store_true",
                      help="write nothing anywhere: only the org-wide report of images and repositories")
    what.add_argument("--dry-run", action="store_true", help="run each repository as `rehome run --dry-run` would")
    what.add_argument("--jobs", type=int, default=DEFAULT_REPO_JOBS, metavar="N",
                      help=f"repositories at once (default {DEFAULT_REPO_JOBS})")
    what.add_argument("--workers", choices=WORKERS, default="process",
                      help="where each repository runs: `process` (default), a worker process, so repositories "
                           "use every core; `thread`, a thread of this one process (one core for the Python work)")
    what.add_argument("--copy-jobs", type=int, default=DEFAULT_JOBS, metavar="N", help=JOBS_HELP)
    what.add_argument("--refresh", action="store_true", help="replace mirror tags that now differ from their source")
    what.add_argument("--no-referrers", dest="referrers", action="store_false",
                      help="do not copy signatures and attestations")
    what.add_argument("--state", metavar="FILE", help="journal of finished repositories; a rerun skips those done")
    what.add_argument("--report", metavar="DIR", help="write report.md, report.json, report.csv and images.csv here")
    what.add_argument("--no-progress", action="store_true", help="no progress bar: one log line per repository")
    pull = parser.add_argument_group("the pull requests")
    options.add_pull_request_options(pull)
    options.add_destination(parser, "the --config file")
    plan_command.add_plan_options(parser)
    options.add_format(parser)
    options.add_scan_options(parser)
    mirror.add_registry_arguments(parser)


def uses_state(args: argparse.Namespace) -> bool:
    """Whether the sweep reads --state: an inventory does not. Then --limit N bounds the repositories
    that run, not the list: those the journal has finished are skipped and do not count, so each sweep
    goes on where the last one stopped."""
    return bool(args.state) and not args.inventory


def selection(args: argparse.Namespace) -> Selection:
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    return Selection.from_flags(args.repo_include, args.repo_exclude, topics=tuple(args.topic),
                                include_archived=args.include_archived, include_forks=args.include_forks,
                                include_empty=args.include_empty, limit=None if uses_state(args) else args.limit,
                                shard=parse_shard(args.shard) if args.shard else None)


def _check(args: argparse.Namespace) -> str:
    if bool(args.org) == bool(args.repos_file):
        raise UsageError("give --org ORG or --repos-file FILE (one of them)")
    for flag, value in (("--jobs", args.jobs), ("--copy-jobs", args.copy_jobs)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, not {value}")
    if args.inventory and args.dry_run:
        raise UsageError("--inventory already writes nothing; --dry-run goes without it")
    # A missing or invalid --config fails here, not once per repository. It is every repository's
    # rehome.yaml, so its destination is the sweep's; a repository's own cannot be: there is one per sweep.
    config = options.load_config(args, None) if args.config else Config()
    destination = options.require_destination(args, config, NO_DESTINATION)
    if args.state and not args.inventory:
        check_writable_file(Path(args.state), "--state")
    if args.report:
        check_writable_folder(Path(args.report), "--report")
    return destination


def repositories(args: argparse.Namespace, tokens: access.TokenSource,
                 limiter: RateLimiter) -> list[RepoInfo | Unreadable]:
    """The org's (or the file's) repositories; a named one GitHub could not read, by its name and why."""
    github = access.client(tokens, args.github_url)
    if args.org:
        return list(access.org_repositories(github, args.org, limiter))
    return list(access.named_repositories(github, access.read_repos_file(args.repos_file), limiter))


def mirror_options(args: argparse.Namespace, destination: str) -> MirrorOptions:
    host = mirror.registry_host(destination, "destination")
    return MirrorOptions(dry_run=args.dry_run, refresh=args.refresh, jobs=args.copy_jobs, referrers=args.referrers,
                         insecure_registries=tuple(args.insecure_registry),
                         credentials=mirror.credentials_from_args(args, host), destination=host)


def run(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    # SIGINT and SIGTERM are the sweep's own from here to its end (for the program, to the process's exit):
    # no moment of it is left to SIGTERM's default, which would end it with neither summary nor reports.
    with Interrupts.handling(until_exit=args.ends_process) as interrupts:
        return _run(args, environ, interrupts)


def _run(args: argparse.Namespace, environ: Mapping[str, str], interrupts: Interrupts) -> int:
    mode = "inventory" if args.inventory else "dry-run" if args.dry_run else "sweep"
    with interrupts.raising():  # until the repositories are listed, nothing runs that must be let finish
        destination = _check(args)
        chosen = selection(args)
        journal = StateJournal(Path(args.state)) if uses_state(args) else None
        limiter = RateLimiter()
        tokens = access.token_source(args.token_env, args.app_id, args.app_key_file, args.app_key_env, environ,
                                     org=args.org, github_url=args.github_url,
                                     required=not (args.inventory or args.dry_run))
        copy_options = mirror_options(args, destination)  # reads --password-stdin once, before any repository
        args.pull_counts = plan_command.load_pull_counts(args)
        inputs = inputs_of(args) if journal is not None else {}
        listed = _listed(args, tokens, limiter, chosen)
    if listed is None:  # no repository ran; how many there are is not known
        _summarise(args, sweep_report.make_report(mode, destination, [], interrupted=True, not_reached=None), [])
        raise KeyboardInterrupt
    taken, left = listed
    readable = [repo for repo in taken if isinstance(repo, RepoInfo)]
    # A batch: with the journal, --limit bounds the repositories that run, not the list.
    batch = journal is not None and args.limit is not None
    if batch:
        readable = _batch_order(readable, journal)
    # A named repository that could not be read is one of the sweep's, failed before it could run.
    unreadable = [RepoEntry(repo.full_name, "failed", error=repo.error) for repo in taken
                  if isinstance(repo, Unreadable)]
    total = len(taken)
    log.info("%s to sweep, %d left out", plural(total, "repository", "repositories"), len(left))
    for repo, why in left:
        log.debug("%s: left out: %s", repo.full_name, why)
    others = journal.finished_with_other_flags([r.full_name for r in readable], inputs) if journal is not None else {}
    if journal is not None and not batch:
        _warn(journal.run_again_notice(others.values(), inputs))
    ctx = SweepContext(args, tokens, args.github_url, limiter, SharedMirror(), copy_options, journal, args.inventory,
                       inputs)
    bar = not args.no_progress and sys.stderr.isatty()
    with SweepProgress(total, bar) as progress:
        interrupts.running = progress.running
        for entry in unreadable:
            progress.done(entry)
        swept = sweep(readable, ctx, args.jobs, interrupts.event, on_start=progress.started,
                      on_done=progress.done, workers=args.workers, limit=args.limit if batch else None)
    if batch:
        # Only the batch's own: those the limit left for a later sweep did not run again yet.
        ran = {entry.repo for entry in swept.entries if not entry.from_state}
        _warn(journal.run_again_notice([flags for repo, flags in others.items() if repo in ran], inputs, ran=True))
        left = _with_over_limit(left, swept, args.limit, journal.path)
    # The summary, the reports and the exit code say alike whether a signal came before this moment.
    stopped = interrupts.settle() or swept.journal_error is not None
    result = sweep_report.make_report(mode, destination, swept.entries + unreadable, interrupted=stopped,
                                      not_reached=swept.not_reached)
    _summarise(args, result, left)
    failed = failed_names(result.repositories)
    if failed:
        log.warning("%s: %s", _needing_a_look(len(failed)), ", ".join(failed[:10]) + (" …" if len(failed) > 10 else ""))
    if swept.journal_error is not None:
        raise RehomeError(swept.journal_error.message, hint="make room for it (or give another --state) and run "
                          "the sweep again: the repositories not journaled run again, their pull requests updated")
    if result.interrupted:
        raise KeyboardInterrupt  # reports written and printed: now the exit (130) of any interrupted command
    return 1 if failed else 0


def _warn(notice: str | None) -> None:
    if notice:
        log.warning("%s", notice)


def _listed(args: argparse.Namespace, tokens: access.TokenSource, limiter: RateLimiter,
            chosen: Selection) -> tuple[list[RepoInfo | Unreadable], list[tuple[RepoInfo | Unreadable, str]]] | None:
    """The repositories taken and those left out (`select`); None when interrupted while listing them."""
    try:
        return select(repositories(args, tokens, limiter), chosen)
    except KeyboardInterrupt:
        return None


def _batch_order(repos: list[RepoInfo], journal: StateJournal) -> list[RepoInfo]:
    """The repositories a batch goes through: those that never ran and those that finished (skipped unless
    their base branch moved) first, those that run again in any case (failed, say) after them, each by
    name. Repositories that fail every time then never take the places of those not yet run."""
    return sorted(repos, key=lambda repo: journal.runs_again_whatever_its_head(repo.full_name))


def _with_over_limit(left: list[tuple[RepoInfo | Unreadable, str]], swept: Swept, limit: int,
                     state: Path) -> list[tuple[RepoInfo | Unreadable, str]]:
    """The repositories left out, with those the sweep left for a later one once `limit` had run; says
    how many ran, were skipped as finished, and were left."""
    skipped = sum(1 for entry in swept.entries if entry.from_state)
    log.info("--limit %d: %s ran, %d skipped as finished in %s, %d left out for a later sweep", limit,
             plural(len(swept.entries) - skipped, "repository", "repositories"), skipped, state,
             len(swept.over_limit))
    over = [(repo, over_limit(limit)) for repo in swept.over_limit]
    return sorted([*left, *over], key=lambda pair: pair[0].full_name.lower())


def _summarise(args: argparse.Namespace, result: SweepReport,
               left: list[tuple[RepoInfo | Unreadable, str]]) -> None:
    """The --report files, and the summary on standard output: the table, or report.json's object with
    `left_out` (the repositories the filters left out, and why)."""
    if args.report:
        sweep_report.write(result, Path(args.report))
    if args.format == "json":
        print_json({**result.to_json(), "left_out": [{"repo": r.full_name, "reason": why} for r, why in left]})
    else:
        print(render(result, len(left)))


def _needing_a_look(count: int) -> str:
    return f"{plural(count, 'repository', 'repositories')} {'needs' if count == 1 else 'need'} a look"


def render(result: SweepReport, left_out: int) -> str:
    rows = [(r.repo, r.status, r.pr_url or "", "" if r.third_party is None else r.third_party,
             (r.error or "").splitlines()[0] if r.error else "") for r in result.repositories]
    lines = [render_table(("REPOSITORY", "STATUS", "PULL REQUEST", "THIRD-PARTY", "ERROR"), rows)] if rows else []
    totals: dict[str, Any] = result.totals()
    counts = ", ".join(f"{totals[s]} {s}" for s in sweep_report.ORDER if totals[s])
    lines.append(f"{plural(totals['repositories'], 'repository', 'repositories')} ({counts or 'none'}), "
                 f"{left_out} left out; {plural(totals['images'], 'third-party image')}")
    if result.interrupted:
        lines.append(sweep_report.interrupted_line(result))
    return "\n".join(lines)
