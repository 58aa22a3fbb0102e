"""The sweep's progress: a rich bar on a terminal (done / failed / remaining, ETA, the repositories
running now), otherwise one log line per finished repository."""
from __future__ import annotations

import logging
import threading
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bot.sweep.report import RepoEntry

log = logging.getLogger("rehome")

FAILED = ("failed", "partial")


class SweepProgress:
    def __init__(self, total: int, bar: bool, console: Console | None = None) -> None:
        self.total = total
        self.finished = 0
        self.failed = 0
        self._running: list[str] = []
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        if bar:
            self._bar = Progress(
                TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
                TextColumn("done {task.fields[done]} · failed {task.fields[failed]} · left {task.fields[left]}"),
                TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[current]}", markup=False),
                console=console or Console(stderr=True), transient=False)
            self._task = self._bar.add_task("sweep", total=total, done=0, failed=0, left=total, current="")

    def __enter__(self) -> SweepProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _update(self) -> None:
        if self._bar is not None:
            current = ", ".join(self._running[:3]) + (" …" if len(self._running) > 3 else "")
            self._bar.update(self._task, completed=self.finished, done=self.finished - self.failed,
                             failed=self.failed, left=self.total - self.finished, current=current)

    def running(self) -> int:
        """How many repositories have started and not finished. Without the lock: a signal handler
        asks, in the main thread, which may be holding it."""
        return len(self._running)

    def started(self, name: str) -> None:
        with self._lock:
            self._running.append(name)
            self._update()

    def done(self, entry: RepoEntry) -> None:
        with self._lock:
            if entry.repo in self._running:
                self._running.remove(entry.repo)
            self.finished += 1
            self.failed += entry.status in FAILED
            self._update()
            position = f"[{self.finished}/{self.total}]"
        detail = entry.pr_url or entry.error or ""
        skipped = " (already done at this commit; skipped)" if entry.from_state else ""
        line = f"{position} {entry.repo}: {entry.status}{skipped}{': ' + detail if detail else ''}"
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)  # above the bar, as the line without it
        elif entry.status in FAILED:
            log.warning("%s", line)
        else:
            log.info("%s", line)
