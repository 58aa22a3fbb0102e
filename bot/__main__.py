from __future__ import annotations

from bot.cli import program

program()
