"""Which files a scan reads, and reading them whole or saying why not."""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

from bot.errors import UsageError

SKIPPED_DIRS = frozenset({".git", "node_modules", "vendor", "third_party"})


def _in_skipped_dir(path: str) -> bool:
    return any(part in SKIPPED_DIRS for part in path.split("/")[:-1])


def _git_files(root: Path, untracked: bool) -> list[str] | None:
    """Files git tracks below root (plus untracked, not ignored ones), or None outside a checkout."""
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
            capture_output=True, text=True, check=False,
        )
    except FileNotFoundError:
        return None
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    cmd = ["git", "-C", str(root), "-c", "core.quotepath=off", "ls-files", "-z", "--cached"]
    if untracked:
        cmd += ["--others", "--exclude-standard"]
    listed = subprocess.run(cmd, capture_output=True, check=False)
    if listed.returncode != 0:
        raise UsageError(f"{root}: git ls-files failed: {listed.stderr.decode(errors='replace').strip()}")
    return sorted({p for p in listed.stdout.decode("utf-8", "surrogateescape").split("\0") if p})


def _walked_files(root: Path) -> list[str]:
    found = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
        rel = Path(directory).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        found += [prefix + name for name in filenames]
    return sorted(found)


def list_files(root: Path, untracked: bool = False) -> list[str]:
    """Relative POSIX paths of the files to consider, sorted."""
    files = _git_files(root, untracked)
    if files is None:
        files = _walked_files(root)
    return [f for f in files if not _in_skipped_dir(f)]


def read_text(root: Path, path: str, max_size: int) -> tuple[str | None, str | None]:
    """(text, None) for a readable UTF-8 text file; (None, reason) otherwise; (None, None)
    for a path that is gone or is not a regular file (nothing to report)."""
    full = root / path
    try:
        if full.is_symlink():
            target = full.resolve()
            if not target.is_relative_to(root.resolve()):
                return None, "symlink leads outside the scanned root"
        if not full.is_file():
            return None, None
        size = full.stat().st_size
        if size > max_size:
            return None, f"larger than {_human_size(max_size)}"
        data = full.read_bytes()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "unreadable: symlink loop"
        return None, f"unreadable: {exc.strerror or exc}"
    except RuntimeError:  # a symlink loop, on Python versions that raise this for it
        return None, "unreadable: symlink loop"
    if b"\0" in data:
        return None, "binary file"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"


def _human_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"
