"""A commit's files read from git's objects (`GitTree`) are the files a checkout of it holds
(`DiskTree`): the same paths, texts and reasons, and the same scan."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.policy import DEFAULT_INTERNAL, Policy
from bot.rules import load_rules
from bot.scan.core import ScanOptions, scan
from bot.scan.files import DiskTree, GitTree, skipped_folder
from tests.helpers import committed, ref, write_tree
from tests.scan import make_folder_links

FIXTURES = Path(__file__).parent / "fixtures"
MAX = 64


@pytest.fixture
def odd_tree(tmp_path: Path) -> tuple[Path, str]:
    root = write_tree(tmp_path / "repo", {
        "Dockerfile": "FROM redis:7\n",
        "deploy/app.yaml": "image: nginx:1.27\n",
        "deploy/run.sh": "#!/bin/sh\n",
        "deploy/latin1.yaml": b"name: caf\xe9\n",
        "deploy/blob.yaml": b"a\0b\n",
        "deploy/big.yaml": "x: " + "y" * 100 + "\n",
        "node_modules/pkg/Dockerfile": "FROM node:20\n",
        "docs/readme.md": "hello\n",
    })
    os.chmod(root / "deploy/run.sh", 0o755)
    os.symlink("app.yaml", root / "deploy/alias.yaml")
    os.symlink("../deploy/app.yaml", root / "docs/app.yaml")
    (root / "vendor/lib").mkdir(parents=True)
    (root / "vendor/lib/app.yaml").write_text("image: nginx:1.27\n")
    os.symlink("../vendor/lib/app.yaml", root / "deploy/vendored.yaml")
    os.symlink("../../outside.yaml", root / "deploy/escape.yaml")
    os.symlink("/etc/hostname", root / "deploy/absolute.yaml")
    os.symlink("loop-b.yaml", root / "deploy/loop-a.yaml")
    os.symlink("loop-a.yaml", root / "deploy/loop-b.yaml")
    (tmp_path / "outside.yaml").write_text("image: secret:1\n")
    return root, committed(root)


def test_a_commits_objects_read_as_its_checkout(odd_tree: tuple[Path, str]) -> None:
    root, commit = odd_tree
    disk, objects = DiskTree(root), GitTree(root, commit)
    assert objects.paths() == disk.paths() == [
        "Dockerfile", "deploy/absolute.yaml", "deploy/alias.yaml", "deploy/app.yaml", "deploy/big.yaml",
        "deploy/blob.yaml", "deploy/escape.yaml", "deploy/latin1.yaml", "deploy/loop-a.yaml", "deploy/loop-b.yaml",
        "deploy/run.sh", "deploy/vendored.yaml", "docs/app.yaml", "docs/readme.md"]
    read = {path: objects.read(path, MAX) for path in objects.paths() + ["missing.yaml", "deploy"]}
    assert read == {path: disk.read(path, MAX) for path in read}
    assert read == {
        "Dockerfile": ("FROM redis:7\n", None),
        "deploy/absolute.yaml": (None, "symlink leads outside the scanned root"),
        "deploy/alias.yaml": (None, "symlink to deploy/app.yaml, read under that name"),
        "deploy/app.yaml": ("image: nginx:1.27\n", None),
        "deploy/big.yaml": (None, "larger than 64 bytes"),
        "deploy/blob.yaml": (None, "binary file"),
        "deploy/escape.yaml": (None, "symlink leads outside the scanned root"),
        "deploy/latin1.yaml": (None, "not UTF-8 (byte 0xe9 at offset 9)"),
        "deploy/loop-a.yaml": (None, "unreadable: symlink loop"),
        "deploy/loop-b.yaml": (None, "unreadable: symlink loop"),
        "deploy/run.sh": ("#!/bin/sh\n", None),
        "deploy/vendored.yaml": (None, "symlink to vendor/lib/app.yaml, in vendor/, a folder scans always skip"),
        "docs/app.yaml": (None, "symlink to deploy/app.yaml, read under that name"),
        "docs/readme.md": ("hello\n", None),
        "missing.yaml": (None, None),
        "deploy": (None, None),
    }
    followed = {path: objects.read(path, MAX, follow_links=True) for path in ("deploy/alias.yaml", "docs/app.yaml")}
    assert followed == {path: disk.read(path, MAX, follow_links=True) for path in followed} == {
        "deploy/alias.yaml": ("image: nginx:1.27\n", None), "docs/app.yaml": ("image: nginx:1.27\n", None)}
    targets = {path: objects.link_target(path) for path in objects.paths() + ["missing.yaml", "deploy"]}
    assert targets == {path: disk.link_target(path) for path in targets}
    assert {path: target for path, target in targets.items() if target is not None} == {
        "deploy/alias.yaml": "deploy/app.yaml", "deploy/vendored.yaml": "vendor/lib/app.yaml",
        "docs/app.yaml": "deploy/app.yaml"}
    assert [objects.is_file(p) for p in ("deploy/alias.yaml", "deploy", "deploy/escape.yaml", "../outside.yaml")] \
        == [True, False, False, False]
    assert objects.files_below(["deploy/run.sh", "docs/", "nowhere"]) == ["deploy/run.sh", "docs/app.yaml",
                                                                        "docs/readme.md"]


def test_a_tree_rooted_in_a_subfolder_lists_its_paths_from_there(odd_tree: tuple[Path, str]) -> None:
    root, commit = odd_tree
    objects = GitTree(root / "docs", commit)
    assert objects.paths() == ["app.yaml", "readme.md"]
    assert objects.read("app.yaml", MAX) == (None, "symlink leads outside the scanned root")
    assert objects.read("readme.md", MAX) == ("hello\n", None)


def test_every_fixture_scans_the_same_from_objects_as_from_disk(tmp_path: Path) -> None:
    root = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, root, symlinks=True)
    commit = committed(root)
    options = ScanOptions(rules=tuple(load_rules()), policy=Policy(DEFAULT_INTERNAL), jobs=1)
    from_disk = scan(root, options)
    from_objects = scan(root, options, GitTree(root, commit))
    assert len(from_disk.references) > 100
    assert from_objects == from_disk


def test_a_symlinks_target_no_rule_reads_is_read_through_the_link_from_a_commit_as_from_disk(tmp_path: Path) -> None:
    # shared/db.yml is read once, with the compose rule both links were selected by; the kubernetes rule reads
    # deploy/pod.yaml by name already; the targets in vendor/ and outside the root are not read.
    write_tree(tmp_path, {"outside.yml": "services:\n  o:\n    image: traefik:3\n"})
    root = write_tree(tmp_path / "repo", {
        "shared/db.yml": "services:\n  db:\n    image: postgres:16\n",
        "deploy/pod.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: a, image: nginx:1.27}]\n",
        "vendor/db.yml": "services:\n  db:\n    image: mysql:8\n",
    })
    for name, target in {"docker-compose.yml": "shared/db.yml", "compose.yaml": "shared/db.yml",
                         "docker-compose.pod.yml": "deploy/pod.yaml", "docker-stack.yml": "vendor/db.yml",
                         "docker-compose.out.yml": "../outside.yml"}.items():
        os.symlink(target, root / name)
    commit = committed(root)
    options = ScanOptions(rules=tuple(load_rules()), policy=Policy(DEFAULT_INTERNAL), jobs=1)
    from_objects = scan(root, options, GitTree(root, commit))
    assert from_objects == scan(root, options)
    assert from_objects.to_json() == {
        "version": 1,
        "references": [
            ref("deploy/pod.yaml", 4, 33, "kubernetes", "nginx:1.27", "docker.io/library/nginx:1.27"),
            ref("shared/db.yml", 3, 12, "compose", "postgres:16", "docker.io/library/postgres:16"),
        ],
        "ignored": 0,
        "skipped": [
            {"path": "compose.yaml", "reason": "symlink to shared/db.yml, read under that name"},
            {"path": "docker-compose.out.yml", "reason": "symlink leads outside the scanned root"},
            {"path": "docker-compose.pod.yml", "reason": "symlink to deploy/pod.yaml, read under that name"},
            {"path": "docker-compose.yml", "reason": "symlink to shared/db.yml, read under that name"},
            {"path": "docker-stack.yml", "reason": "symlink to vendor/db.yml, in vendor/, a folder scans always skip"},
        ],
    }


def test_symlinks_to_folders_are_followed_from_a_commit_as_from_disk(tmp_path: Path) -> None:
    root = make_folder_links(tmp_path)
    options = ScanOptions(rules=tuple(load_rules()), policy=Policy(DEFAULT_INTERNAL), jobs=1)
    from_objects = scan(root, options, GitTree(root, committed(root)))
    assert from_objects == scan(root, options)
    assert [(r.path, r.raw) for r in from_objects.references] == [
        ("ci/workflows/build.yml", "node:20"), ("compose/docker-compose.yml", "postgres:16"),
        ("private/docker-compose.yml", "vault:1.13")]
    assert [s.path for s in from_objects.skipped] == [".github/workflows", "deploy", "secrets"]


@pytest.mark.parametrize(("path", "folder"), [
    ("deploy/app.yaml", None),
    ("vendor.yaml", None),
    ("my_vendor/app.yaml", None),
    ("deploy/vendor", None),
    ("vendor/app.yaml", "vendor"),
    ("web/node_modules/pkg/third_party/pod.yaml", "web/node_modules"),
])
def test_skipped_folder_is_the_outermost_folder_scans_never_enter(path: str, folder: str | None) -> None:
    assert skipped_folder(path) == folder
