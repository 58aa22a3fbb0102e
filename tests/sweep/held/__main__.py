"""`rehome`, held at a point (see tests.sweep.held). Run as `__main__` of a package, it is not run
again in the worker processes (multiprocessing runs a main module again in each, unless so named)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from bot import cli
from bot.commands import sweep as sweep_command
from bot.sweep import workers
from bot.sweep.runner import Swept
from tests.sweep.held import FOLDER_ENV, hold

AT_EXIT: list[HeldWhenFreed] = []


class HeldWhenFreed:
    """Holds (`hold`) when the interpreter frees it: as the process exits, once Python has given SIGINT and
    SIGTERM back to their defaults (unless ignored) and frees its modules, this one's globals among them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __del__(self) -> None:
        hold(self.folder)


def main(folder: Path, point: str, args: list[str]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    if point == "fork-server":
        os.environ[FOLDER_ENV] = str(folder)
        workers.PRELOAD = ["tests.sweep.held.fork_server", *workers.PRELOAD]
    elif point == "listed":
        sweep = sweep_command.sweep

        def held_sweep(*given: Any, **named: Any) -> Swept:
            hold(folder)
            return sweep(*given, **named)

        sweep_command.sweep = held_sweep
    elif point != "exiting":
        raise SystemExit(f"unknown point {point!r}")
    code = cli.main(args, ends_process=True)
    if point == "exiting":
        AT_EXIT.append(HeldWhenFreed(folder))
    return code


raise SystemExit(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))
