"""The sweep's progress: on a terminal, each finished repository's line above the bar."""
from __future__ import annotations

import io

from rich.console import Console

from bot.sweep.progress import SweepProgress
from bot.sweep.report import RepoEntry


def test_the_lines_above_the_bar_are_the_lines_without_it() -> None:
    out = io.StringIO()
    console = Console(file=out, width=160, color_system=None)  # not a terminal: the bar is drawn once, at the end
    with SweepProgress(2, bar=True, console=console) as progress:
        progress.done(RepoEntry("acme/a", "done", "https://github.com/acme/a/pull/1"))
        progress.done(RepoEntry("acme/b", "failed", error="git clone failed"))
    assert out.getvalue().splitlines()[:-1] == [
        "[1/2] acme/a: done: https://github.com/acme/a/pull/1", "[2/2] acme/b: failed: git clone failed"]
