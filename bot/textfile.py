"""Reading a file a user names, whole: only a regular file. A device such as /dev/zero would be read
without end, and a named pipe would hold the command until something writes to it."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotAFileError(OSError):
    """The path is there but is not a regular file; the message says what it is instead."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.EINVAL, f"{what}, not a file")

    def __str__(self) -> str:
        return str(self.strerror)


def not_a_file(mode: int) -> str | None:
    """What a path with this `st_mode` is when it is not a regular file (`a folder`, ...), else None."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    return "a device or socket"


def read_text(path: Path) -> str:
    """The file's UTF-8 text, as `Path.read_text` reads it; OSError (`NotAFileError` for anything but
    a regular file) or UnicodeDecodeError when it cannot be read. The kind of file is looked at once
    it is open, so it cannot be swapped for another in between."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a named pipe must not wait for a writer
    what = not_a_file(os.fstat(fd).st_mode)
    if what is not None:
        os.close(fd)
        raise NotAFileError(what)
    with os.fdopen(fd, encoding="utf-8") as f:
        return f.read()
