"""Printing results: JSON for machines, plain tables for people; writing files in one step."""
from __future__ import annotations

import json
import os
import secrets
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO


def print_json(obj: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    json.dump(obj, stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces; no trailing spaces."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    """Replace (or create) the file in one step: no reader, and no interruption, meets half of it. A file
    that was there keeps its mode bits; a new one gets the usual ones (0666 less the umask)."""
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
