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
    else:
        raise SystemExit(f"unknown point {point!r}")
    return cli.main(args)


raise SystemExit(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))
