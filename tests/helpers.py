"""Small helpers the tests share."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent  # the project: what `python -m bot` needs on its path

# JSON nested far deeper than Python's decoder goes, and what rehome says of it wherever it reads one.
DEEP_JSON = "[" * 200_000 + "]" * 200_000
NESTED_TOO_DEEP = "nested deeper than JSON can be read (about a thousand levels of arrays or objects)"


@contextlib.contextmanager
def logged(level: int = logging.WARNING) -> Iterator[list[str]]:
    """The messages rehome logs at `level` or above while the block runs (whatever an earlier
    command set the logger to)."""
    messages: list[str] = []
    handler = logging.Handler(level)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("rehome")
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def install_credential_helper(folder: Path, monkeypatch, name: str, script: str) -> None:
    """`docker-credential-<name>` in `folder`, put first on PATH, running the shell `script` after reading its
    standard input (the server asked about)."""
    helper = folder / f"docker-credential-{name}"
    helper.write_text(f"#!/bin/sh\ncat > /dev/null\n{script}\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
    return root


def folder_bytes(root: Path) -> dict[str, bytes | None]:
    """Every file below `root` byte for byte (a link: where it leads; a folder: None), to check a
    folder such as `.git` is left exactly as it was."""
    return {p.relative_to(root).as_posix(): _entry_bytes(p) for p in sorted(root.rglob("*"))}


def _entry_bytes(path: Path) -> bytes | None:
    if path.is_symlink():
        return os.readlink(path).encode()
    return None if path.is_dir() else path.read_bytes()


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def scan_json(capsys, root: Path, *extra: str) -> dict:
    code, out, err = run_cli(capsys, "scan", str(root), "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def shared_anchor(name: str, line: int) -> str:
    """The reason a rewrite leaves a YAML anchor also used at `line`, where no image is expected."""
    return (f"the value is the YAML anchor &{name}, also used at line {line}, where no image is expected: "
            "moving it would change that value too; change it by hand")


def ref(path: str, line: int, column: int, kind: str, raw: str, image: str | None,
        status: str = "third-party", reason: str | None = None) -> dict:
    return {"path": path, "line": line, "column": column, "kind": kind, "raw": raw,
            "image": image, "status": status, "reason": reason}


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True, capture_output=True, text=True,
    ).stdout


def committed(root: Path) -> str:
    """`root` made a git repository holding its files in one commit; that commit."""
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "files")
    return git(root, "rev-parse", "HEAD").strip()
