"""Reading a file a user names: a regular file only, refused at once when it is anything else."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.textfile import NotAFileError, read_text


def test_a_regular_file_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "repos.txt"
    path.write_bytes("acme/ünï\r\nacme/web\n".encode())
    assert read_text(path) == "acme/ünï\nacme/web\n"


@pytest.mark.parametrize(("make", "message"), [
    (lambda tmp: (tmp / "folder").mkdir() or tmp / "folder", "a folder, not a file"),
    (lambda tmp: os.mkfifo(tmp / "pipe") or tmp / "pipe", "a named pipe, not a file"),  # no writer: must not wait
    (lambda tmp: Path(os.devnull), "a device or socket, not a file"),
])
def test_anything_but_a_regular_file_is_refused_before_it_is_read(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(NotAFileError) as refused:
        read_text(make(tmp_path))
    assert (str(refused.value), refused.value.strerror) == (message, message)


def test_a_missing_file_is_the_usual_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "missing")
