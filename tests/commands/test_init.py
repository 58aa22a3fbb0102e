from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bot import output
from bot.config import load_config
from tests.helpers import folder_bytes, run_cli


def test_init_writes_a_valid_commented_starter(tmp_path, capsys):
    code, out, err = run_cli(capsys, "init", str(tmp_path), "--to", "us-docker.pkg.dev/acme/mirror")
    assert (code, out, err) == (0, "", f"wrote {tmp_path / 'rehome.yaml'}\n")
    config = load_config(tmp_path / "rehome.yaml")
    assert (config.destination, config.mapping, config.pin_digest) == (
        "us-docker.pkg.dev/acme/mirror", "{destination}/{domain}/{path}", False)
    assert "# internal:" in (tmp_path / "rehome.yaml").read_text()


def test_init_never_overwrites_without_force(tmp_path, capsys):
    (tmp_path / "rehome.yaml").write_text("destination: keep.me/x\n")
    code, out, err = run_cli(capsys, "init", str(tmp_path))
    assert (code, err) == (2, f"rehome: error: {tmp_path / 'rehome.yaml'} already exists (use --force to overwrite it)\n")
    assert (tmp_path / "rehome.yaml").read_text() == "destination: keep.me/x\n"
    assert run_cli(capsys, "init", str(tmp_path), "--force")[0] == 0
    assert load_config(tmp_path / "rehome.yaml").destination == "us-docker.pkg.dev/PROJECT/mirror"


@pytest.mark.parametrize(("dest", "message"), [
    ("BAD Dest", "--to: destination 'BAD Dest' is not a registry path: invalid reference format: path component "
                 "'BAD Dest' must be lowercase letters and digits, joined by one '.', one or two '_', or dashes"),
    ("not a valid//dest:", "--to: destination 'not a valid//dest:' is not a registry path: invalid reference format: "
                           "repository name 'not a valid//dest' has an empty path component (a '/' at the start or "
                           "end, or two in a row)"),
    ("mirror/images", "--to: destination 'mirror/images' must start with a registry host, "
                      "e.g. us-docker.pkg.dev/PROJECT/REPOSITORY"),
])
def test_init_refuses_a_destination_no_command_could_use_and_writes_nothing(tmp_path, capsys, dest, message):
    code, out, err = run_cli(capsys, "init", str(tmp_path), "--to", dest)
    assert (code, out, err) == (2, "", f"rehome: error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_init_over_a_folder_named_rehome_yaml_is_refused(tmp_path, capsys):
    (tmp_path / "rehome.yaml").mkdir()
    code, out, err = run_cli(capsys, "init", str(tmp_path), "--force")
    assert (code, out, err) == (2, "", f"rehome: error: {tmp_path / 'rehome.yaml'} is a folder\n")


@pytest.mark.parametrize(("points_to", "flags"), [("nowhere.yaml", ()), ("shared.yaml", ("--force",))])
def test_init_never_replaces_a_symlink_and_names_where_it_points(tmp_path, capsys, points_to, flags):
    (tmp_path / "shared.yaml").write_text("destination: keep.me/x\n")
    link = tmp_path / "rehome.yaml"
    link.symlink_to(points_to)
    before = folder_bytes(tmp_path)
    assert run_cli(capsys, "init", str(tmp_path), *flags) == (2, "", (
        f"rehome: error: {link} is a symlink to {points_to}: init does not replace a symlink\n"
        "hint: remove the link first (or edit the file it points to)\n"))
    assert folder_bytes(tmp_path) == before


def test_init_in_a_folder_that_does_not_exist_names_it_and_writes_nothing(tmp_path, capsys):
    missing = tmp_path / "nope" / "deeper"
    assert run_cli(capsys, "init", str(missing)) == (2, "", f"rehome: error: {missing}: the folder does not exist\n")
    assert list(tmp_path.iterdir()) == []


def test_init_without_to_says_to_replace_the_placeholder_and_quiet_says_nothing(tmp_path, capsys):
    target = tmp_path / "rehome.yaml"
    assert run_cli(capsys, "init", str(tmp_path)) == (0, "", (
        f"wrote {target}\n"
        f"next: replace the placeholder destination us-docker.pkg.dev/PROJECT/mirror in {target} with your mirror "
        "(or run init again with --to DEST --force)\n"))
    assert run_cli(capsys, "init", "-q", str(tmp_path), "--force") == (0, "", "")


def test_init_quotes_a_destination_yaml_would_read_as_something_else(tmp_path, capsys):
    assert run_cli(capsys, "init", "-q", str(tmp_path), "--to", "[::1]:5000/mirror") == (0, "", "")
    assert "\ndestination: '[::1]:5000/mirror'\n" in (tmp_path / "rehome.yaml").read_text()
    assert load_config(tmp_path / "rehome.yaml").destination == "[::1]:5000/mirror"


def test_init_in_a_folder_it_cannot_write_is_a_usage_error_naming_the_file(tmp_path, capsys, monkeypatch):
    def read_only(path: Path, text: str) -> Path:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(output, "stage", read_only)
    assert run_cli(capsys, "init", str(tmp_path)) == (
        2, "", f"rehome: error: {tmp_path / 'rehome.yaml'}: cannot write it: Read-only file system; nothing was changed\n")
    assert list(tmp_path.iterdir()) == []
