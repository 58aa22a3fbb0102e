"""`python -m tests.sweep.held FOLDER POINT ARG...`: `rehome ARG...`, held at POINT until the test
lets it go, so that a signal reaches it there and nowhere else. At POINT it writes FOLDER/held (the
process id of the process held) and adds it to FOLDER/pids, then waits for FOLDER/go (at most a minute).

POINT is `fork-server`: the fork server the sweep's worker processes come from, as it starts (its
first preload, tests.sweep.held.fork_server, before bot.sweep.forkserver); `listed`: the sweep's
process, once the repositories are listed, before any starts; or `exiting`: the process, once the
command has returned, as the interpreter frees its modules (the last of its exit).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

FOLDER_ENV = "REHOME_TEST_HELD_FORK_SERVER"  # for the fork server, which inherits the environment
WAIT = 60.0


@dataclasses.dataclass(frozen=True)
class Held:
    """The test's side: the command line that runs `rehome` held, and the gate."""

    folder: Path
    point: str

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "tests.sweep.held", str(self.folder), self.point]

    def wait(self, other_than: int | None = None) -> int:
        """The process id of the process held, once one (other than `other_than`) is."""
        held = self.folder / "held"
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and self._held(held) in (None, other_than):
            time.sleep(0.01)
        pid = self._held(held)
        assert pid is not None and pid != other_than, f"nothing (else) was held at {self.point} within {WAIT:.0f}s"
        return pid

    @staticmethod
    def _held(held: Path) -> int | None:
        return int(held.read_text()) if held.exists() else None

    def pids(self) -> list[int]:
        """Each process held, in order: the fork servers started, say."""
        return [int(pid) for pid in (self.folder / "pids").read_text().split()]

    def release(self) -> None:
        (self.folder / "go").touch()


def hold(folder: Path) -> None:
    with (folder / "pids").open("a") as pids:  # one short write: whole even with another process's
        pids.write(f"{os.getpid()}\n")
    written = folder / f"held.{os.getpid()}"
    written.write_text(str(os.getpid()))
    written.replace(folder / "held")  # whole when the test reads it; the test may kill it from then on
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not (folder / "go").exists():
        time.sleep(0.01)
