"""Writing a file in one step: the old content or the new one, never half of it, and the right mode."""
from __future__ import annotations

import errno
import io
import json
import os
import stat
from pathlib import Path

import pytest

from bot import output
from bot.errors import UsageError
from bot.output import (WriteError, check_readable_file, check_writable_file, check_writable_folder, write_atomically,
                        write_together)


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


def test_a_file_given_to_another_user_keeps_its_owner(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("only root can give a file to another user")  # CI runs as root
    path = tmp_path / "Dockerfile"
    path.write_text("FROM alpine:3\n")
    os.chown(path, 1234, 2345)
    write_atomically(path, "FROM mirror.example.com/alpine:3\n")
    assert (path.stat().st_uid, path.stat().st_gid) == (1234, 2345)


def _linked(tmp_path: Path, text: str) -> tuple[Path, Path]:
    """`values.yaml` and its second name `other/values.yaml` (a hard link)."""
    path, other = tmp_path / "values.yaml", tmp_path / "other" / "values.yaml"
    path.write_text(text)
    other.parent.mkdir()
    os.link(path, other)
    return path, other


def test_a_file_with_hard_links_is_written_into_so_every_name_shows_the_new_text(tmp_path: Path) -> None:
    path, other = _linked(tmp_path, "image: redis:7\n")
    path.chmod(0o640)
    write_atomically(path, "image: mirror.example.com/m/redis:7\n")
    assert other.read_text() == path.read_text() == "image: mirror.example.com/m/redis:7\n"
    assert path.stat().st_ino == other.stat().st_ino and path.stat().st_nlink == 2
    assert _mode(path) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "values.yaml"]


def test_a_copy_into_a_hard_linked_file_that_fails_midway_puts_the_old_bytes_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, other = _linked(tmp_path, "image: redis:7\n")
    real_write = os.write
    failures = [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))]

    def write(fd: int, data) -> int:
        if failures:  # the disk fills up after the first few bytes
            real_write(fd, bytes(data[:5]))
            raise failures.pop()
        return real_write(fd, data)

    monkeypatch.setattr(output.os, "write", write)
    with pytest.raises(OSError) as failed:
        write_atomically(path, "image: mirror.example.com/m/redis:7\n")
    assert failed.value.errno == errno.ENOSPC
    assert other.read_text() == path.read_text() == "image: redis:7\n"
    assert path.stat().st_nlink == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "values.yaml"]


def test_two_names_of_one_file_written_together_get_the_same_text(tmp_path: Path) -> None:
    path, other = _linked(tmp_path, "old\n")
    write_together([(path, "old\n", "new\n"), (other, "old\n", "new\n")])
    assert (path.read_text(), other.read_text(), path.stat().st_nlink) == ("new\n", "new\n", 2)


def test_two_names_of_one_file_given_different_texts_are_refused(tmp_path: Path) -> None:
    path, other = _linked(tmp_path, "old\n")
    with pytest.raises(WriteError) as refused:
        write_together([(path, "old\n", "new\n"), (other, "old\n", "other\n")])
    assert str(refused.value) == (f"{path} and {other} are one file (hard links) but would get different texts; "
                                  "nothing was changed")
    assert (path.read_text(), other.read_text(), path.stat().st_nlink) == ("old\n", "old\n", 2)


def _three_files(tmp_path: Path) -> list[tuple[Path, str, str]]:
    changes = []
    for name in ("a.yaml", "b.yaml", "c.yaml"):
        (tmp_path / name).write_text(f"old {name}\n")
        changes.append((tmp_path / name, f"old {name}\n", f"new {name}\n"))
    return changes


def _contents(tmp_path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(tmp_path.iterdir())}


def test_files_written_together_are_all_replaced(tmp_path: Path) -> None:
    write_together(_three_files(tmp_path))
    assert _contents(tmp_path) == {"a.yaml": "new a.yaml\n", "b.yaml": "new b.yaml\n", "c.yaml": "new c.yaml\n"}


def test_a_file_that_cannot_be_written_leaves_every_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changes = _three_files(tmp_path)
    real_stage = output.stage

    def stage(path: Path, text: str) -> Path:
        if path.name == "c.yaml":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_stage(path, text)

    monkeypatch.setattr(output, "stage", stage)
    with pytest.raises(WriteError) as failed:
        write_together(changes)
    assert str(failed.value) == f"{tmp_path / 'c.yaml'}: cannot write it: Read-only file system; nothing was changed"
    assert _contents(tmp_path) == {"a.yaml": "old a.yaml\n", "b.yaml": "old b.yaml\n", "c.yaml": "old c.yaml\n"}


def test_a_file_that_cannot_be_replaced_puts_back_those_replaced_before_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changes = _three_files(tmp_path)
    real_replace = os.replace

    def replace(source: Path, target: Path) -> None:
        if Path(target).name == "b.yaml":  # an immutable file (chattr +i) refuses even root
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        real_replace(source, target)

    monkeypatch.setattr(output.os, "replace", replace)
    with pytest.raises(WriteError) as failed:
        write_together(changes)
    assert str(failed.value) == f"{tmp_path / 'b.yaml'}: cannot replace it: Operation not permitted; nothing was changed"
    assert _contents(tmp_path) == {"a.yaml": "old a.yaml\n", "b.yaml": "old b.yaml\n", "c.yaml": "old c.yaml\n"}


def test_a_new_file_written_before_one_that_cannot_be_replaced_is_removed_again(tmp_path: Path, monkeypatch) -> None:
    replace = os.replace

    def busy_c(source: Path, target: Path) -> None:  # c.yaml stages, then cannot be put in place
        if Path(target).name == "c.yaml":
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        replace(source, target)

    monkeypatch.setattr(output.os, "replace", busy_c)
    with pytest.raises(WriteError) as failed:
        write_together([(tmp_path / "a.yaml", None, "new a.yaml\n"), (tmp_path / "c.yaml", None, "new c.yaml\n")])
    assert str(failed.value) == (f"{tmp_path / 'c.yaml'}: cannot replace it: {os.strerror(errno.EBUSY)}; "
                                 "nothing was changed")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_files_are_put_in_place_leaves_every_file_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changes = _three_files(tmp_path)
    real_replace = os.replace

    def interrupted_at_b(source: Path, target: Path) -> None:
        real_replace(source, target)
        if Path(target).name == "b.yaml":
            raise KeyboardInterrupt

    monkeypatch.setattr(output.os, "replace", interrupted_at_b)
    with pytest.raises(KeyboardInterrupt):
        write_together(changes)
    assert _contents(tmp_path) == {"a.yaml": "old a.yaml\n", "b.yaml": "old b.yaml\n", "c.yaml": "old c.yaml\n"}


def test_ctrl_c_as_a_temporary_file_is_made_leaves_none_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changes = _three_files(tmp_path)
    real_open = os.open

    def interrupted_at_c(path: str, flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags, mode)
        if ".c.yaml." in str(path):  # the signal arrives as the call returns, before its result is kept
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(output.os, "open", interrupted_at_c)
    with pytest.raises(KeyboardInterrupt):
        write_together(changes)
    assert _contents(tmp_path) == {"a.yaml": "old a.yaml\n", "b.yaml": "old b.yaml\n", "c.yaml": "old c.yaml\n"}


def test_a_folder_in_the_way_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").mkdir()
    with pytest.raises(UsageError) as refused:
        write_together([(tmp_path / "a.yaml", None, "new a.yaml\n"), (tmp_path / "c.yaml", None, "new c.yaml\n")])
    assert str(refused.value) == f"{tmp_path / 'c.yaml'}: is a folder, not a file; nothing was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


@pytest.mark.parametrize(("make", "flag", "message"), [
    (lambda p: p.mkdir(), "--state", "{p}: is a folder, not a file"),
    (lambda p: None, "--state", "{p}: the folder {p.parent} does not exist"),
])
def test_a_file_that_could_not_be_written_is_refused_before_any_work(tmp_path: Path, make, flag: str, message: str) -> None:
    path = tmp_path / "state.jsonl" if "folder, not" in message else tmp_path / "missing" / "state.jsonl"
    make(path)
    with pytest.raises(UsageError) as refused:
        check_writable_file(path, flag)
    assert str(refused.value) == f"{flag} " + message.format(p=path)


@pytest.mark.parametrize("check", [check_writable_file, check_readable_file])
def test_a_named_pipe_or_a_device_is_refused_as_a_file(tmp_path: Path, check) -> None:
    pipe = tmp_path / "state.jsonl"
    os.mkfifo(pipe)
    for path, what in ((pipe, "a named pipe"), (Path(os.devnull), "a device or socket")):
        with pytest.raises(UsageError) as refused:
            check(path, "--state")
        assert str(refused.value) == f"--state {path}: is {what}, not a file"
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_a_file_to_read_must_be_there(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as refused:
        check_readable_file(tmp_path / "state.jsonl", "--state")
    assert str(refused.value) == f"--state {tmp_path / 'state.jsonl'}: no such file"
    (tmp_path / "state.jsonl").write_text("")
    check_readable_file(tmp_path / "state.jsonl", "--state")


def test_a_report_folder_that_is_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("")
    with pytest.raises(UsageError) as refused:
        check_writable_folder(tmp_path / "reports", "--report")
    assert str(refused.value) == f"--report {tmp_path / 'reports'}: is a file, not a folder"
    check_writable_folder(tmp_path / "new" / "reports", "--report")
    assert (tmp_path / "new" / "reports").is_dir()


def test_json_keeps_other_scripts_and_escapes_a_name_that_is_not_utf8() -> None:
    stream = io.StringIO()
    output.print_json({"paths": ["café.yaml", os.fsdecode(b"caf\xe9.yaml")]}, stream)
    assert stream.getvalue() == '{\n  "paths": [\n    "café.yaml",\n    "caf\\udce9.yaml"\n  ]\n}\n'
    assert json.loads(stream.getvalue())["paths"][1] == os.fsdecode(b"caf\xe9.yaml")
