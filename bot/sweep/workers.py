"""A sweep's repositories in worker processes, so the per-repository Python work (scanning,
planning, rewriting) uses every core; the sweep's own process keeps the journal, the progress and
the reports, and the shared objects (bot.sweep.shared).

Each thread of the sweep's pool owns one worker process and hands it one repository at a time over
a pipe. The worker answers on the same pipe: its log records as they happen, then the repository's
`RepoEntry`, so the records reach this process's handlers in order, before the outcome.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import logging.handlers
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import forkserver, resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any

from bot.cli import log_to
from bot.sweep.report import RepoEntry
from bot.sweep.runner import INTERRUPTS, SweepContext, in_its_name, inventory_one, name_repositories_in, run_one
from bot.sweep.select import RepoInfo
from bot.sweep.shared import LimiterProxy, MirrorProxy, SharedObjects, TokensProxy

log = logging.getLogger("rehome")

# Never `fork`: the sweep's process has threads (the progress display, the shared objects' server),
# and a forked copy of a threaded process can hang on a lock some other thread held.
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
# Imported once by the fork server, before it forks each worker: a worker starts with them loaded. The
# first makes the fork server outlive a SIGTERM sent to the sweep's whole process group.
PRELOAD = ["bot.sweep.forkserver", "bot.sweep.workers", "bot.commands.sweep"]
STOP_TIMEOUT = 10.0  # seconds an idle worker has to exit once told to
FORK_SERVER_END_TIMEOUT = 5.0  # seconds a fork server that failed a start has to be seen ended


@dataclasses.dataclass(frozen=True)
class WorkerSetup:
    """What a worker process is started with (pickled once, at its start)."""

    context: SweepContext  # the shared objects in it are proxies
    level: int  # the `rehome` logger's level in the sweep's process
    root_level: int


class ProcessWorkers:
    """`run(repo)` runs the repository in the calling thread's worker process (started on first use,
    and again if it died).

    Each worker keeps its temporary files (its clones) in a folder of its own inside one the sweep
    owns: what a worker that dies leaves there is removed by the sweep, at once."""

    def __init__(self, ctx: SweepContext) -> None:
        self._mp = multiprocessing.get_context(START_METHOD)
        if START_METHOD == "forkserver":
            self._mp.set_forkserver_preload(PRELOAD)
        self._shared = SharedObjects()
        shared = dataclasses.replace(ctx, tokens=self._shared.share(ctx.tokens, TokensProxy),
                                     limiter=self._shared.share(ctx.limiter, LimiterProxy),
                                     mirror=self._shared.share(ctx.mirror, MirrorProxy))
        self._setup = WorkerSetup(shared, log.getEffectiveLevel(), logging.getLogger().getEffectiveLevel())
        self._mine = threading.local()
        self._lock = threading.Lock()
        self._started: list[_Worker] = []
        self._temp = Path(tempfile.mkdtemp(prefix="rehome-sweep-"))

    def __enter__(self) -> ProcessWorkers:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def run(self, repo: RepoInfo) -> RepoEntry:
        worker: _Worker | None = getattr(self._mine, "worker", None)
        if worker is None or not worker.alive or not worker.process.is_alive():
            try:
                worker = self._new_worker()
            except (EOFError, OSError) as exc:  # its folder goes with the sweep's
                return RepoEntry(repo.full_name, "failed", error=f"its worker process could not be started "
                                                                 f"({_start_failure(exc)}); it runs again in the next sweep")
            self._mine.worker = worker
        return worker.run(repo)

    def _new_worker(self) -> _Worker:
        """A worker started; when the fork server that starts them has ended, started once more, from a
        new fork server. Its repository has not been handed to it yet: nothing of it can run twice.
        One start at a time, so the repositories waiting for a worker when the fork server ended get
        theirs from the one new fork server."""
        with self._lock:
            try:
                return self._start_worker()
            except (EOFError, ConnectionError):
                if not _fork_server_ended():
                    raise
            return self._start_worker()

    def _start_worker(self) -> _Worker:
        number = len(self._started) + 1
        temp = Path(tempfile.mkdtemp(prefix=f"worker-{number}-", dir=self._temp))
        worker = _Worker(self._mp, self._setup, number, temp)
        self._started.append(worker)
        return worker

    def close(self) -> None:
        """Once no repository is running: each worker told to stop, waited for; then the shared objects."""
        with self._lock:
            started, self._started = self._started, []
        for worker in started:
            worker.stop()
        self._shared.close()
        shutil.rmtree(self._temp, ignore_errors=True)


class _Worker:
    """One worker process and this process's end of its pipe."""

    def __init__(self, mp: BaseContext, setup: WorkerSetup, number: int, temp: Path) -> None:
        self._conn, theirs = mp.Pipe()
        self.temp = temp
        name = f"rehome-sweep-worker-{number}"
        self.process = mp.Process(target=serve, args=(theirs, setup, str(temp)), name=name)  # type: ignore[attr-defined]
        _start_process(self.process)
        theirs.close()  # only the worker holds its end: when it dies, this end reads EOF
        self.alive = True

    def _receive(self) -> tuple[str, Any]:
        """The worker's next message; EOFError when it has ended."""
        ready = wait([self._conn, self.process.sentinel])
        if self._conn not in ready and not self._conn.poll() and not self._outlived_its_fork_server():
            raise EOFError
        message: tuple[str, Any] = self._conn.recv()  # or EOFError, once a worker left running ends
        return message

    def _outlived_its_fork_server(self) -> bool:
        """Whether the worker runs on though its sentinel says it ended: the fork server that started
        it, which tells its exit code, ended first (killed), and left it running its repository."""
        if self.process.pid is None:
            return False
        try:
            os.kill(self.process.pid, 0)
        except (ProcessLookupError, PermissionError):  # reaped by its fork server (its id taken since, even)
            return False
        return True

    def _answer(self) -> tuple[str, Any]:
        """The worker's next message that is not a log record; those are handed to this process's loggers."""
        kind, payload = self._receive()
        while kind == "log":
            logging.getLogger(payload.name).handle(payload)
            kind, payload = self._receive()
        return kind, payload

    def run(self, repo: RepoInfo) -> RepoEntry:
        try:
            self._conn.send(repo)
            kind, payload = self._answer()
        except (EOFError, OSError):
            self.alive = False
            self.process.join(STOP_TIMEOUT)
            shutil.rmtree(self.temp, ignore_errors=True)  # the clone it was working in, say
            return RepoEntry(repo.full_name, "failed",
                             error=f"its worker process ended ({_ending(self.process.exitcode)}) before the repository "
                                   f"was done; it runs again in the next sweep")
        if kind == "raised":  # what would have ended a sweep in threads ends this one too
            raise payload
        entry: RepoEntry = payload
        return entry

    def stop(self) -> None:
        try:
            self._conn.send(None)
            self._answer()  # the log records it sent after its last repository, if any, then EOF
        except (EOFError, OSError):
            pass
        self.process.join(STOP_TIMEOUT)
        if self.process.exitcode is None:
            self.process.terminate()
            self.process.join(STOP_TIMEOUT)
        self._conn.close()
        self.alive = False


def _start_process(process: BaseProcess) -> None:
    """`process.start()`, SIGINT and SIGTERM blocked in this thread meanwhile. The fork server it may
    start inherits them blocked, so neither ends it before it ignores them (bot.sweep.forkserver, the
    first thing it imports); one sent meanwhile stays pending, and is then dropped. This process gets
    them all the same, in a thread that does not block them."""
    # It unblocks both in the calling thread when it starts the resource tracker: done first.
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _fork_server_ended() -> bool:
    """Whether the fork server a worker's start failed on has ended, waited for a moment: multiprocessing
    starts a new one for the next start only once the old one is seen ended. A start right after a
    kill can still find the old one ending, and fail on it as well. It is left to multiprocessing to
    reap (WNOWAIT)."""
    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)  # multiprocessing says it nowhere else
    if pid is None:  # not known: tried once more all the same
        return True
    deadline = time.monotonic() + FORK_SERVER_END_TIMEOUT
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:  # reaped already
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _start_failure(exc: EOFError | OSError) -> str:
    """Why a worker process could not be started, as its repository's error says it."""
    if isinstance(exc, (EOFError, ConnectionError)):
        return "the fork server that starts the workers ended"
    return f"{type(exc).__name__}: {exc}"


def _ending(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


# --- in the worker process ---------------------------------------------------------------------

class _PipeHandler(logging.handlers.QueueHandler):
    """Each record, its message formatted here (`prepare`), sent to the sweep's process."""

    def __init__(self, send: Callable[[tuple[str, Any]], None]) -> None:
        super().__init__(queue=None)  # type: ignore[arg-type]
        self._send = send

    def enqueue(self, record: logging.LogRecord) -> None:
        self._send(("log", record))


def _detach() -> None:
    """The worker takes its orders from the sweep's process only. Detached from the terminal
    (setsid), it and the git it runs are out of the foreground process group the terminal's Ctrl-C
    goes to; SIGINT and SIGTERM are ignored (and so by its git too): the sweep's process decides,
    and lets a running repository finish, so a push is never cut short."""
    if hasattr(os, "setsid"):
        os.setsid()
    ignore_interrupts()


def ignore_interrupts() -> None:
    """SIGINT and SIGTERM ignored from now on, and unblocked: one pending since a start that blocked
    them (`_start_process`) is dropped."""
    for number in INTERRUPTS:
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)


def serve(conn: Connection, setup: WorkerSetup, temp: str) -> None:
    """A worker process: repositories from the pipe, one at a time, until it says None or is closed
    (the sweep's process has ended: no other repository is started). Its temporary files go in `temp`."""
    _detach()
    tempfile.tempdir = temp
    lock = threading.Lock()

    def send(message: tuple[str, Any]) -> None:
        with lock:
            conn.send(message)

    handler = _PipeHandler(send)
    name_repositories_in([handler])
    log_to(handler, setup.level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(setup.root_level)
    try:
        _run_repositories(conn, setup, send)
    finally:
        _leave(Path(temp))


def _run_repositories(conn: Connection, setup: WorkerSetup, send: Callable[[tuple[str, Any]], None]) -> None:
    work = inventory_one if setup.context.inventory else run_one
    # Each repository runs off the worker's main thread: its scan then stays in this process (the
    # scan forks workers of its own only from a main thread), so a sweep's processes are its --jobs.
    with ThreadPoolExecutor(1, thread_name_prefix="repository") as runner:
        while True:
            try:
                repo = conn.recv()
            except (EOFError, OSError):
                return
            if repo is None:
                return
            try:
                message: tuple[str, Any] = ("entry", runner.submit(in_its_name, work, repo, setup.context).result())
            except Exception as exc:  # noqa: BLE001 - sent back, raised there as it would be in a thread
                message = ("raised", exc)
            try:
                send(message)
            except OSError:  # the sweep's process is gone
                return
            except Exception:  # noqa: BLE001 - an exception that does not pickle: its text does
                send(("raised", RuntimeError(f"{type(message[1]).__name__}: {message[1]}")))


def _leave(temp: Path) -> None:
    """The worker's temporary folder goes with it; so does the sweep's, once empty: when the sweep was
    killed outright, its last worker out removes it."""
    shutil.rmtree(temp, ignore_errors=True)
    with contextlib.suppress(OSError):
        temp.parent.rmdir()
