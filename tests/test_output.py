"""Writing a file in one step: the old content or the new one, never half of it, and the right mode."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot.output import write_atomically


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_is_replaced_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "deploy.sh"
    path.write_text("old\n")
    path.chmod(0o750)
    write_atomically(path, "new — ünïcode\n")
    assert path.read_bytes() == "new — ünïcode\n".encode()
    assert _mode(path) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy.sh"]


def test_a_new_file_gets_the_mode_the_umask_allows(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomically(tmp_path / "report.json", "{}\n")
    finally:
        os.umask(old)
    assert (tmp_path / "report.json").read_text() == "{}\n"
    assert _mode(tmp_path / "report.json") == 0o640


def test_a_write_that_fails_leaves_the_old_content_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("the old baseline\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, "half \udc80 written")  # a lone surrogate cannot be encoded: the write fails midway
    assert path.read_text() == "the old baseline\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json"]
