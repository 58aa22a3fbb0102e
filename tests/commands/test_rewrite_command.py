"""`rehome rewrite` writes all of its files or none of them."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from bot import output
from tests.helpers import ref, run_cli

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n    - name: app\n      image: {image}\n"


def _tree(root: Path) -> dict[str, str]:
    files = {"a.yaml": POD.format(name="a", image="redis:7"), "z.yaml": POD.format(name="z", image="nginx:1.27")}
    for name, text in files.items():
        (root / name).write_text(text)
    return files


def test_a_file_that_cannot_be_replaced_leaves_the_whole_tree_as_it_was(tmp_path: Path, capsys,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = _tree(tmp_path)
    real_replace = os.replace

    def replace(source, target) -> None:
        if Path(target).name == "z.yaml":  # an immutable file (chattr +i): even root may not replace it
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        real_replace(source, target)

    monkeypatch.setattr(output.os, "replace", replace)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", "mirror.example.com/m")
    assert (code, out) == (1, "")
    assert err == f"rehome: error: {tmp_path / 'z.yaml'}: cannot replace it: Operation not permitted; nothing was changed\n"
    assert {p.name: p.read_text() for p in sorted(tmp_path.iterdir())} == before


def test_every_file_is_rewritten_when_all_can_be(tmp_path: Path, capsys) -> None:
    _tree(tmp_path)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", "mirror.example.com/m")
    assert (code, err) == (0, "")
    assert out == ("FILE    REFERENCES\n------  ----------\na.yaml  1\nz.yaml  1\n"
                   "2 files rewritten, 2 references moved\n")
    assert (tmp_path / "a.yaml").read_text() == POD.format(name="a", image="mirror.example.com/m/docker.io/library/redis:7")
    assert (tmp_path / "z.yaml").read_text() == POD.format(name="z", image="mirror.example.com/m/docker.io/library/nginx:1.27")


@pytest.mark.parametrize("flags", [["--pulls", "pulls.csv"], ["--since", "7d"]])
def test_pull_counts_are_not_offered_as_the_rewrite_shows_none(tmp_path: Path, capsys, flags: list[str]) -> None:
    before = _tree(tmp_path)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", "mirror.example.com/m", *flags)
    assert (code, out, err.splitlines()[-1]) == (2, "", f"rehome: error: unrecognized arguments: {' '.join(flags)}")
    assert {p.name: p.read_text() for p in sorted(tmp_path.iterdir())} == before


def test_a_file_with_a_second_name_keeps_it(tmp_path: Path, capsys) -> None:
    # The same manifest hard-linked into another folder: both names show the rewrite, still one file.
    tree, elsewhere = tmp_path / "tree", tmp_path / "elsewhere.yaml"
    tree.mkdir()
    _tree(tree)
    os.link(tree / "a.yaml", elsewhere)
    code, out, err = run_cli(capsys, "rewrite", str(tree), "--to", "mirror.example.com/m")
    assert (code, err) == (0, "")
    assert out == ("FILE    REFERENCES\n------  ----------\na.yaml  1\nz.yaml  1\n"
                   "2 files rewritten, 2 references moved\n")
    assert elsewhere.read_text() == POD.format(name="a", image="mirror.example.com/m/docker.io/library/redis:7")
    assert (tree / "a.yaml").stat().st_ino == elsewhere.stat().st_ino
    assert sorted(p.name for p in tree.iterdir()) == ["a.yaml", "z.yaml"]


def test_a_file_with_two_names_in_the_tree_is_counted_once(tmp_path: Path, capsys) -> None:
    _tree(tmp_path)
    os.link(tmp_path / "a.yaml", tmp_path / "b.yaml")
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", "mirror.example.com/m")
    assert (code, out, err) == (0, "FILE    REFERENCES\n------  ----------\na.yaml  1\nb.yaml  1\nz.yaml  1\n"
                                   "2 files rewritten, 2 references moved\n", "")
    assert (tmp_path / "a.yaml").stat().st_ino == (tmp_path / "b.yaml").stat().st_ino


def test_a_file_nested_too_deeply_to_check_is_left_untouched_and_said_so(tmp_path: Path, capsys) -> None:
    deep = POD.format(name="deep", image="redis:7") + "nested: " + "[" * 1000 + "]" * 1000 + "\n"
    (tmp_path / "deep.yaml").write_text(deep)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", "mirror.example.com/m")
    assert (code, err) == (1, "")
    assert out == "0 files rewritten, 0 references moved\n" \
                  "left untouched: deep.yaml: nested too deeply to check that only image names change\n"
    assert (tmp_path / "deep.yaml").read_text() == deep


def test_what_stays_in_place_is_listed_as_plan_lists_it(tmp_path: Path, capsys) -> None:
    _tree(tmp_path)
    (tmp_path / "b.yaml").write_text(POD.format(name="b", image="${APP_IMAGE}"))
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", "mirror.example.com/m")
    assert (code, err) == (0, "")
    assert out == ("FILE    REFERENCES\n------  ----------\na.yaml  1\nz.yaml  1\n"
                   "2 files rewritten, 2 references moved\n"
                   "unresolved: b.yaml:8:14: ${APP_IMAGE}: contains a variable: ${APP_IMAGE}\n")
    assert (tmp_path / "b.yaml").read_text() == POD.format(name="b", image="${APP_IMAGE}")


def _tree_with_what_stays(root: Path) -> None:
    _tree(root)
    (root / "b.yaml").write_text(POD.format(name="b", image="${APP_IMAGE}"))
    (root / "Dockerfile").write_bytes(b"FROM \xff x\n")


STAYS = ("unresolved: b.yaml:8:14: ${APP_IMAGE}: contains a variable: ${APP_IMAGE}\n"
         "skipped Dockerfile: not UTF-8 (byte 0xff at offset 5)\n")


def test_a_dry_run_prints_the_summary_after_the_diff(tmp_path: Path, capsys) -> None:
    _tree_with_what_stays(tmp_path)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", "mirror.example.com/m", "--dry-run")
    assert (code, err) == (0, "")
    assert out == (
        "--- a/a.yaml\n+++ b/a.yaml\n@@ -5,4 +5,4 @@\n spec:\n   containers:\n     - name: app\n"
        "-      image: redis:7\n+      image: mirror.example.com/m/docker.io/library/redis:7\n"
        "--- a/z.yaml\n+++ b/z.yaml\n@@ -5,4 +5,4 @@\n spec:\n   containers:\n     - name: app\n"
        "-      image: nginx:1.27\n+      image: mirror.example.com/m/docker.io/library/nginx:1.27\n"
        "FILE    REFERENCES\n------  ----------\na.yaml  1\nz.yaml  1\n"
        "2 files would be rewritten, 2 references would move; nothing written\n" + STAYS
    )
    assert (tmp_path / "a.yaml").read_text() == POD.format(name="a", image="redis:7")


def test_json_lists_what_stays_as_plan_does(tmp_path: Path, capsys) -> None:
    _tree_with_what_stays(tmp_path)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", "mirror.example.com/m", "--dry-run",
                             "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "version": 1,
        "dry_run": True,
        "files": [{"path": "a.yaml", "status": "rewritten", "references": 1, "reason": None},
                  {"path": "z.yaml", "status": "rewritten", "references": 1, "reason": None}],
        "unresolved": [ref("b.yaml", 8, 14, "kubernetes", "${APP_IMAGE}", None, "unresolved",
                           "contains a variable: ${APP_IMAGE}")],
        "covered": [],
        "skipped": [{"path": "Dockerfile", "reason": "not UTF-8 (byte 0xff at offset 5)"}],
    }


def test_an_image_a_compose_override_gives_a_service_the_base_file_builds_is_not_moved(tmp_path: Path, capsys) -> None:
    # `docker compose` reads compose.override.yaml with compose.yaml: `web` is built, its image names the build.
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build: .\n")
    override = "services:\n  web:\n    image: ghcr.io/acme/web-dev:1\n  cache:\n    image: redis:7\n"
    (tmp_path / "compose.override.yaml").write_text(override)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", "mirror.example.com/m", "--dry-run")
    assert (code, err) == (0, "")
    assert out == (
        "--- a/compose.override.yaml\n+++ b/compose.override.yaml\n@@ -2,4 +2,4 @@\n"
        "   web:\n     image: ghcr.io/acme/web-dev:1\n   cache:\n"
        "-    image: redis:7\n+    image: mirror.example.com/m/docker.io/library/redis:7\n"
        "FILE                   REFERENCES\n---------------------  ----------\ncompose.override.yaml  1\n"
        "1 file would be rewritten, 1 reference would move; nothing written\n"
    )
    assert (tmp_path / "compose.override.yaml").read_text() == override
