"""Many repositories, a few at once: each one's run (or inventory scan) and what became of it.
A repository's failure is its outcome, never the sweep's end."""
from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import logging
import signal
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from bot import git, gitcmd
from bot.cli import PYGITHUB_LOG
from bot.commands.plan import Planned
from bot.errors import RehomeError
from bot.forge.github import GitHubForge
from bot.mirror import MirrorImage, MirrorOptions
from bot.pipeline import RunResult, files_named_in_repository, plan_checkout, run_repository
from bot.plan import Plan
from bot.scan.model import INTERNAL
from bot.sweep.access import TokenSource
from bot.sweep.mirrorcache import SharedMirror
from bot.sweep.ratelimit import RateLimiter
from bot.sweep.report import ImageUse, RepoEntry
from bot.sweep.select import RepoInfo
from bot.sweep.state import InputValue, JournalError, Outcome, StateJournal, now

log = logging.getLogger("rehome")


@dataclasses.dataclass
class SweepContext:
    """What every repository's run shares."""

    args: argparse.Namespace  # `rehome run`'s flags (scan, plan, pull request settings)
    tokens: TokenSource
    github_url: str | None
    limiter: RateLimiter
    mirror: SharedMirror
    mirror_options: MirrorOptions
    journal: StateJournal | None = None
    inventory: bool = False
    # The journal's `inputs` (`inputs_of`), read once for the whole sweep: its files' fingerprints too.
    inputs: dict[str, InputValue] = dataclasses.field(default_factory=dict)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, RehomeError):
        return exc.message
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"internal error: {type(exc).__name__}: {exc}{where}"


def remote_head(repo: RepoInfo, ctx: SweepContext) -> str | None:
    """The base branch's commit, without cloning; None when it cannot be read."""
    token = ctx.tokens.current()
    ref = f"refs/heads/{repo.default_branch}"
    try:
        out = git.run_git(Path(tempfile.gettempdir()), ["ls-remote", repo.clone_url, ref],
                          env=git.auth_environment(token), secret=token)
    except RehomeError:
        return None
    return out.split()[0] if out.strip() else None


def has_no_commits(repo: RepoInfo, ctx: SweepContext) -> bool:
    """True for a repository the listing says is empty and that has no branch indeed (GitHub's
    size can lag behind a first push): there is nothing to clone, scan or change. One the listing
    does not say is empty is cloned; its clone finds out (git.NoCommits)."""
    return repo.empty and git.has_no_branches(repo.clone_url, ctx.tokens.current())


def _uses(plan: Plan, images: Sequence[MirrorImage] = ()) -> tuple[ImageUse, ...]:
    """The images the plan moves, each with the files using it and the mirror's status where known."""
    status = {image.source: image.status for image in images}
    return tuple(ImageUse(m.source, m.target, m.pulls, status.get(m.source), tuple(sorted({r.path for r in m.references})))
                 for m in plan.moves)


def _counts(planned: Planned) -> dict[str, int]:
    """The repository's references as its scan found them: RepoEntry's count fields."""
    plan = planned.plan
    return {"third_party": sum(len(m.references) for m in plan.moves) + len(plan.covered),
            "internal": sum(1 for r in planned.scanned.references if r.status == INTERNAL),
            "unresolved": len(plan.unresolved)}


def outcome_of(result: RunResult) -> tuple[str, str | None]:
    """The journal status for a run's result, and the error a human should read."""
    problems = [f"{i.source} not moved ({i.status}: {i.problem or 'no detail'})" for i in result.failed]
    problems += [f"{r.path} left as it is ({r.reason or 'a safety check failed'})"
                 for r in result.rewrites if r.new_text is None]
    problems += result.warnings
    error = "; ".join(problems) or None
    if result.status == "stopped":
        return "failed", result.message
    if result.status == "declined":  # not proposed again; an image that could not be copied is still said
        return "declined", error
    if result.status in ("opened", "updated", "unchanged") or (result.status == "dry-run" and result.changed):
        return ("partial" if error else "done"), error
    if error:  # nothing could be changed, and something needs a human
        return "failed", error
    return "nothing-to-do", None


_RUNNING = threading.local()  # the repository this thread runs, named in what it logs


class RepositoryNames(logging.Filter):
    """Names the repository in each record its run logs that does not start with it (`acme/api: pushing
    rehome/mirror-images`): several repositories run at once, and their lines interleave. A record about
    the whole sweep that a repository's run happens to log (GitHub's rate limit, the App's token) says so
    with `extra={"sweep_wide": True}`, and names none."""

    def filter(self, record: logging.LogRecord) -> bool:
        repo = getattr(_RUNNING, "repo", None)
        if repo is not None and not getattr(record, "sweep_wide", False) \
                and not (message := record.getMessage()).startswith(f"{repo}: "):
            record.msg, record.args = f"{repo}: {message}", None
        return True


def name_repositories_in(handlers: Iterable[logging.Handler]) -> None:
    for handler in handlers:
        if not any(isinstance(f, RepositoryNames) for f in handler.filters):
            handler.addFilter(RepositoryNames())


def in_its_name(work: Callable[[RepoInfo, SweepContext], RepoEntry], repo: RepoInfo, ctx: SweepContext) -> RepoEntry:
    """`work(repo, ctx)`, what it logs named after the repository (by `RepositoryNames`)."""
    _RUNNING.repo = repo.full_name
    try:
        return work(repo, ctx)
    finally:
        _RUNNING.repo = None


def run_one(repo: RepoInfo, ctx: SweepContext) -> RepoEntry:
    """`rehome run` for one repository, as a sweep entry; never raises for the repository's own faults."""
    if has_no_commits(repo, ctx):
        return _without_commits(repo, "nothing-to-do")
    head = None
    if ctx.journal is not None:
        head = remote_head(repo, ctx)
        if ctx.journal.should_skip(repo.full_name, head, ctx.inputs):
            previous = ctx.journal.last[repo.full_name]
            log.info("%s: %s at %s in the state file; skipped", repo.full_name, previous.status, (head or "")[:12])
            return RepoEntry(repo.full_name, previous.status, previous.pr_url, previous.head, previous.error,
                             from_state=True)
    # Filled as the run goes: a failure after the scan (a push refused) keeps what it found and copied.
    planned: list[tuple[Planned, str]] = []
    mirrored: list[MirrorImage] = []

    def ensure(*args: Any, **kwargs: Any) -> list[MirrorImage]:
        found = ctx.mirror(*args, repo=repo.full_name, **kwargs)
        mirrored.extend(found)
        return found

    try:
        forge = GitHubForge(repo.full_name, ctx.tokens.current(), github_url=ctx.github_url, limiter=ctx.limiter,
                            listed={"clone_url": repo.clone_url, "default_branch": repo.default_branch})
        args = argparse.Namespace(**{**vars(ctx.args), "target": repo.full_name})
        result = run_repository(forge, args, ensure=ensure, mirror_options=ctx.mirror_options,
                                on_planned=lambda *found: planned.append(found))
    except Exception as exc:  # noqa: BLE001 - a repository's failure is its outcome; the sweep goes on
        if not isinstance(exc, RehomeError):
            log.debug("%s: %s", repo.full_name, traceback.format_exc())
        if not planned:
            return RepoEntry(repo.full_name, "failed", None, head, _error_text(exc))
        status, error, pr_url = "failed", _error_text(exc), None
    else:
        if not planned:  # nothing was scanned: the repository has no commits
            return _without_commits(repo, "nothing-to-do")
        status, error = outcome_of(result)
        pull = result.pull_request
        pr_url = pull.url if pull is not None and pull.number is not None else None
    scanned, base_sha = planned[0]
    return RepoEntry(repo.full_name, status, pr_url, base_sha or head, error, images=_uses(scanned.plan, mirrored),
                     **_counts(scanned))


def inventory_one(repo: RepoInfo, ctx: SweepContext) -> RepoEntry:
    """A shallow read-only clone, scanned and planned: counts and the images, nothing written."""
    if has_no_commits(repo, ctx):
        return _without_commits(repo, "scanned")
    try:
        with git.clone(repo.clone_url, repo.default_branch, ctx.tokens.current()) as checkout, \
                files_named_in_repository(checkout, repo.full_name):
            planned = plan_checkout(checkout, ctx.args)
            head = checkout.base_sha
    except git.NoCommits:
        return _without_commits(repo, "scanned")
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        if not isinstance(exc, RehomeError):
            log.debug("%s: %s", repo.full_name, traceback.format_exc())
        return RepoEntry(repo.full_name, "failed", error=_error_text(exc))
    return RepoEntry(repo.full_name, "scanned", None, head, None, images=_uses(planned.plan), **_counts(planned))


def _without_commits(repo: RepoInfo, status: str) -> RepoEntry:
    log.info("%s: %s", repo.full_name, git.NO_COMMITS)
    return RepoEntry(repo.full_name, status, third_party=0, internal=0, unresolved=0)


def record(entry: RepoEntry, ctx: SweepContext) -> None:
    """The journal line for a repository that ran (not for one skipped, nor in a dry run or inventory)."""
    if ctx.journal is None or ctx.inventory or ctx.args.dry_run:
        return
    ctx.journal.record(Outcome(entry.repo, entry.status, entry.pr_url, entry.head, entry.error, now(), ctx.inputs))


WORKERS = ("process", "thread")
POLL = 0.2  # seconds between looks at the interrupt flag while repositories run


@dataclasses.dataclass(frozen=True)
class Swept:
    """The repositories' entries, in the order they finished; whether SIGINT or SIGTERM stopped
    the sweep, and how many repositories it then never started; the journal's write error, if one
    stopped it; those left for a later sweep once `limit` repositories had run, in their order."""

    entries: list[RepoEntry]
    interrupted: bool
    not_reached: int
    journal_error: JournalError | None = None
    over_limit: list[RepoInfo] = dataclasses.field(default_factory=list)


def sweep(repos: Sequence[RepoInfo], ctx: SweepContext, jobs: int, interrupted: threading.Event,
          on_start: Callable[[str], None] = lambda name: None,
          on_done: Callable[[RepoEntry], None] = lambda entry: None, *, workers: str = "process",
          limit: int | None = None) -> Swept:
    """Each repository once, at most `jobs` at a time, each outcome journaled as it finishes; with
    `limit`, in their order until `limit` of them have run (one the journal skips does not count).

    `workers`: "process" runs each repository in a worker process (bot.sweep.workers), so the
    Python work of several repositories uses several cores; "thread" runs them in threads of this
    process, with the shared objects used directly (what tests that patch a repository's run use).
    Once `interrupted` is set (SIGINT or SIGTERM: `Interrupts`) no other repository starts; those
    running finish and are journaled (one waiting for the rate limit's reset fails at once), and the
    result says the sweep was interrupted. A journal line that cannot be written stops it the same
    way (those running finish, unjournaled), and the result holds the error."""
    if workers not in WORKERS:
        raise ValueError(f"workers must be one of {WORKERS}, not {workers!r}")
    if workers == "thread":
        work = inventory_one if ctx.inventory else run_one
        name_repositories_in({*log.handlers, *logging.getLogger(PYGITHUB_LOG).handlers})
        with gitcmd.out_of_ctrl_c():  # the worker processes are out of it already
            return _schedule(repos, ctx, jobs, interrupted, lambda repo: in_its_name(work, repo, ctx), on_start,
                             on_done, limit)
    from bot.sweep.workers import ProcessWorkers  # it imports this module

    with ProcessWorkers(ctx) as processes:
        return _schedule(repos, ctx, jobs, interrupted, processes.run, on_start, on_done, limit)


def _schedule(repos: Sequence[RepoInfo], ctx: SweepContext, jobs: int, interrupted: threading.Event,
              work: Callable[[RepoInfo], RepoEntry], on_start: Callable[[str], None],
              on_done: Callable[[RepoEntry], None], limit: int | None) -> Swept:
    """Submits a repository only when fewer than `jobs` run, so each one started is really running;
    with `limit`, only while those that ran and those running are fewer than `limit`: a running one
    may yet turn out to be skipped (`from_state`), which frees its place, so never more than `limit` run."""
    entries: list[RepoEntry] = []
    waiting = list(reversed(repos))
    journal_error: JournalError | None = None
    ran = 0

    def stopping() -> bool:
        return interrupted.is_set() or journal_error is not None

    def room(more: int) -> bool:  # for another repository, with `more` running
        return limit is None or ran + more < limit

    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="sweep") as pool:
        running: set[Future[RepoEntry]] = set()
        while running or (waiting and room(0) and not stopping()):
            while waiting and len(running) < max(1, jobs) and room(len(running)) and not stopping():
                repo = waiting.pop()
                on_start(repo.full_name)  # here, not in its thread: a signal then knows it is running
                running.add(pool.submit(work, repo))
            finished, running = wait(running, timeout=POLL, return_when=FIRST_COMPLETED)
            if interrupted.is_set():  # a repository waiting for the rate limit's reset fails now
                ctx.limiter.interrupt()
            for future in finished:
                entry = future.result()
                ran += not entry.from_state
                if not entry.from_state and journal_error is None:
                    try:
                        record(entry, ctx)
                    except JournalError as exc:
                        journal_error = exc
                        log.error("%s; starting no other repository", exc.message)
                entries.append(entry)
                on_done(entry)
    if not room(0):  # those waiting would not have run, interrupted or not: they are for a later sweep
        return Swept(entries, interrupted.is_set(), 0, journal_error, list(reversed(waiting)))
    return Swept(entries, interrupted.is_set(), len(waiting), journal_error)


INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """SIGINT and SIGTERM through the whole of a sweep (`handling`), so that no moment of it is left to
    SIGTERM's default, which ends the process with no summary and no report.

    They raise KeyboardInterrupt where the main thread is while `raising` lasts: for the sweep's
    preparation (listing the repositories), which starts nothing that must be let finish. Otherwise
    they set `event` instead of raising where the main thread happens to be (in the middle of a
    journal line, say): the sweep starts no other repository. Once every repository has finished
    (`settle`), they stop nothing: one is said to change nothing, and the sweep ends as it would have.
    Only the main thread can install handlers; elsewhere the event is never set."""

    def __init__(self) -> None:
        self.event = threading.Event()
        # How many repositories run now (the sweep's progress counts them), for what a signal says it waits for.
        self.running: Callable[[], int] = lambda: 0
        self._raising = False
        self._settled = False

    @classmethod
    @contextlib.contextmanager
    def handling(cls, *, until_exit: bool = False) -> Iterator[Interrupts]:
        """The handlers while this lasts; with `until_exit`, once settled, until the process exits: the
        program's shutdown after the summary takes a moment, which SIGTERM's default would end (exit 143)
        while the reports say the sweep was not interrupted."""
        interrupts = cls()
        with _handling_interrupts(interrupts._handle, keep=lambda: until_exit and interrupts._settled):
            yield interrupts

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        self._raising = True
        try:
            yield
        finally:
            self._raising = False

    def settle(self) -> bool:
        """Whether SIGINT or SIGTERM came before now, when every repository has finished; from now
        on one stops nothing (the summary and the reports say what the sweep did, in full)."""
        self._settled = True
        return self.event.is_set()

    def _handle(self, signum: int, frame: object) -> None:
        if self._raising:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        if self._settled:
            log.warning("%s: every repository has finished: the sweep writes its summary and reports and ends as it "
                        "would have", name)
            return
        if not self.running():  # none left to wait for: before the first starts, or once the last has finished
            log.warning("%s: starting no other repository; none is running: the sweep writes its summary and "
                        "reports, which say it was interrupted", name)
        elif not self.event.is_set():
            log.warning("%s: starting no other repository; waiting for those running to finish "
                        "(a push is never cut short)", name)
        else:
            log.warning("still waiting for the repositories running to finish (SIGKILL ends the sweep now; "
                        "a rerun with the same --state runs them again)")
        self.event.set()


@contextlib.contextmanager
def _handling_interrupts(handler: Callable[[int, Any], None], keep: Callable[[], bool]) -> Iterator[None]:
    """`handler` for SIGINT and SIGTERM while this lasts, in the main thread (elsewhere, nothing changes);
    when `keep()` says so at its end, until the process exits: the handler to the exit handlers, then
    ignored (Python gives handlers back to the defaults as it finalizes, before freeing its modules)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number in INTERRUPTS}
    try:
        yield
    finally:
        if keep():
            atexit.register(_set_handlers, dict.fromkeys(INTERRUPTS, signal.SIG_IGN))
        else:
            _set_handlers(previous)


def _set_handlers(handlers: dict[int, Any]) -> None:
    for number, handler in handlers.items():
        signal.signal(number, handler)


def failed_names(entries: Iterable[RepoEntry]) -> list[str]:
    return sorted(e.repo for e in entries if e.status in ("failed", "partial"))
