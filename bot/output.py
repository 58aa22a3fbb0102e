"""Printing results: JSON for machines, plain tables for people; writing files in one step."""
from __future__ import annotations

import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.errors import RehomeError, UsageError
from bot.textfile import not_a_file


class WriteError(RehomeError):
    """A file that could not be written (permissions, a read-only or full disk)."""


# A name that is not UTF-8 (a file named in Latin-1) is held as lone surrogates (Python's surrogateescape).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters that would end a line, or that a reader cannot see.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED_CONTROLS = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible_controls(text: str) -> str:
    """Line breaks and other control or invisible characters written as escapes (`\\n`, `\\u2028`),
    so a value stays on one line and shows what it holds."""

    def escape(match: re.Match[str]) -> str:
        char = match.group(0)
        return _NAMED_CONTROLS.get(char) or f"\\u{ord(char):04x}"

    return _CONTROL.sub(escape, text)


def json_text(obj: Any) -> str:
    """`obj` as indented JSON, other scripts written as they are. Lone surrogates are written as
    `\\udcXX` escapes: the text stays UTF-8, and reads back as the same name."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def print_json(obj: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(json_text(obj) + "\n")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces; no trailing spaces."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    """Replace (or create) the file in one step: no reader, and no interruption, meets half of it. A file
    that was there keeps its mode bits and, where the user may give it, its owner; a new one gets the
    usual mode (0666 less the umask). A file with other names (hard links) keeps them: see `_put_in_place`."""
    temporary = stage(path, text)
    try:
        _put_in_place(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_together(changes: Sequence[tuple[Path, str | None, str]]) -> None:
    """Replace several files, each (path, old text, new text), all or none: every new text is staged
    first, and a file that cannot be replaced puts back the ones replaced before it (one whose old
    text is None was not there: it is removed again)."""
    _check_one_text_per_file(changes)
    staged: list[tuple[Path, Path, str | None]] = []
    try:
        for path, old, new in changes:
            staged.append((path, _stage_or_fail(path, new), old))
    except BaseException:
        for _path, temporary, _old in staged:
            temporary.unlink(missing_ok=True)
        raise
    for done, (path, temporary, _old) in enumerate(staged):
        try:
            _put_in_place(temporary, path)
        except OSError as exc:
            _undo(staged, failed_at=done, replaced=done)
            raise WriteError(f"{path}: cannot replace it: {exc.strerror or exc}; nothing was changed") from None
        except BaseException:  # Ctrl-C, which may come just after this file was replaced
            _undo(staged, failed_at=done, replaced=done + 1)
            raise


def _undo(staged: Sequence[tuple[Path, Path, str | None]], *, failed_at: int, replaced: int) -> None:
    """Removes the temporaries not put in place, from `failed_at` on, and puts back the old texts of
    the first `replaced` files."""
    for _path, later, _old in staged[failed_at:]:
        later.unlink(missing_ok=True)
    for earlier, _temporary, old in staged[:replaced]:
        _put_back(earlier, old)


def _put_back(path: Path, old: str | None) -> None:
    if old is None:
        path.unlink(missing_ok=True)
    else:
        write_atomically(path, old)


def file_identity(path: Path) -> tuple[int, int] | None:
    """What every name (hard link) of one file shares; None for a path that does not exist."""
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _check_one_text_per_file(changes: Sequence[tuple[Path, str | None, str]]) -> None:
    """Two names of one file (hard links) given different new texts: whichever came last would win."""
    seen: dict[tuple[int, int], tuple[Path, str]] = {}
    for path, _old, new in changes:
        identity = file_identity(path)
        if identity is None:
            continue
        first = seen.setdefault(identity, (path, new))
        if first[1] != new:
            raise WriteError(f"{first[0]} and {path} are one file (hard links) but would get different texts; "
                             "nothing was changed")


def _put_in_place(temporary: Path, path: Path) -> None:
    """The staged `temporary` becomes `path`'s content. Normally it is renamed over `path` (one step);
    a file with other names (hard links) gets the bytes copied into it instead, as a rename would leave
    the other names with the old text. Should the copy fail midway, the old bytes are put back."""
    if not _has_other_names(path):
        os.replace(temporary, path)
        return
    old = path.read_bytes()
    fd = os.open(path, os.O_WRONLY)
    try:
        try:
            _overwrite(fd, temporary.read_bytes())
        except BaseException:
            _overwrite(fd, old)
            raise
    finally:
        os.close(fd)
    temporary.unlink()


def _has_other_names(path: Path) -> bool:
    try:
        return path.lstat().st_nlink > 1
    except FileNotFoundError:
        return False


def _overwrite(fd: int, data: bytes) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    rest = memoryview(data)
    while rest:
        rest = rest[os.write(fd, rest):]
    os.ftruncate(fd, len(data))


def _stage_or_fail(path: Path, text: str) -> Path:
    try:
        return stage(path, text)
    except OSError as exc:
        raise WriteError(cannot_write(path, exc)) from None


def cannot_write(path: Path, exc: OSError) -> str:
    return f"{path}: cannot write it: {exc.strerror or exc}; nothing was changed"


def stage(path: Path, text: str) -> Path:
    """The new content in a temporary file beside `path`, with `path`'s mode and owner, for the
    caller to put in place (`_put_in_place`) or delete. Only a regular file is ever replaced."""
    try:
        before: os.stat_result | None = path.stat()
    except FileNotFoundError:
        before = None
    what = None if before is None else not_a_file(before.st_mode)
    if what is not None:  # a file put in its place would replace a device (say /dev/null) or a named pipe
        raise UsageError(f"{path}: is {what}, not a file; nothing was written")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
        if before is not None:
            os.chmod(temporary, stat.S_IMODE(before.st_mode))
            _keep_owner(temporary, before)
    except FileExistsError:
        raise  # the name is another file's, not one made here
    except BaseException:  # Ctrl-C too, which may come just after the file was made
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _keep_owner(path: Path, before: os.stat_result) -> None:
    if (before.st_uid, before.st_gid) == (os.getuid(), os.getgid()):
        return
    try:
        os.chown(path, before.st_uid, before.st_gid)
    except PermissionError:
        pass  # only root gives files away: the new file is the user's own, as an editor's would be


def check_writable_file(path: Path, flag: str) -> None:
    """Before any work: `path` can be created or appended to (a folder that is there, a regular file or
    nothing: a file put in place of a device would replace it, and a named pipe would block)."""
    if path.exists():
        _check_regular_file(path, flag)
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise UsageError(f"{flag} {path}: not writable")


def check_readable_file(path: Path, flag: str) -> None:
    """Before any work: `path` is a regular file (the contents can still fail to read)."""
    if not path.exists():
        raise UsageError(f"{flag} {path}: no such file")
    _check_regular_file(path, flag)


def _check_regular_file(path: Path, flag: str) -> None:
    what = not_a_file(path.stat().st_mode)
    if what is not None:
        raise UsageError(f"{flag} {path}: is {what}, not a file")


def check_writable_folder(path: Path, flag: str) -> None:
    """Before any work: `path` is a writable folder, made now (with its parents) when missing."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot make the folder: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: not writable")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 image`, `2 images`."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"
