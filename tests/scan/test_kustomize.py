from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from bot.cli import main
from bot.rules import load_rules
from bot.scan.core import ScanOptions, scan
from tests.helpers import ref as _ref
from bot.scan.kustomize import split_image

FIXTURES = Path(__file__).parent / "fixtures" / "kustomize"
SHA3 = "sha256:" + "3" * 64
KEEPS = "newName without newTag or digest keeps the tags of the images named"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    # A copy outside the git checkout, so untracked fixture files are scanned too.
    root = tmp_path / "kustomize"
    shutil.copytree(FIXTURES, root)
    return root


EXPECTED = [
    _ref("base/deployment.yaml", 14, 18, "kubernetes", "busybox:1.36", "docker.io/library/busybox:1.36"),
    _ref("base/deployment.yaml", 17, 18, "kubernetes", "nginx:1.25", "docker.io/library/nginx:1.25"),
    _ref("base/deployment.yaml", 19, 18, "kubernetes", "redis:7.0", "docker.io/library/redis:7.0"),
    _ref("base/deployment.yaml", 34, 22, "kubernetes", "nginx:1.24", "docker.io/library/nginx:1.24"),
    _ref("base/kustomization.yaml", 7, 14, "kustomize", "busybox:1.37", "docker.io/library/busybox:1.37"),
    _ref("components/mirror/kustomization.yaml", 5, 14, "kustomize", "comp.example.com/redis", None, "unresolved",
         f"{KEEPS} redis in the kustomization that includes this component"),
    _ref("overlays/prod/kustomization.yaml", 8, 14, "kustomize", "mirror.example.com/library/nginx:1.24",
         "mirror.example.com/library/nginx:1.24", reason="tag kept from nginx:1.24"),
    _ref("overlays/prod/kustomization.yaml", 8, 14, "kustomize", "mirror.example.com/library/nginx:1.25",
         "mirror.example.com/library/nginx:1.25", reason="tag kept from nginx:1.25"),
    _ref("overlays/prod/kustomization.yaml", 10, 14, "kustomize", "quay.io/acme/redis:7.2", "quay.io/acme/redis:7.2"),
    _ref("overlays/prod/kustomization.yaml", 12, 30, "kustomize", f"busybox@{SHA3}", f"docker.io/library/busybox@{SHA3}"),
    _ref("overlays/remote/kustomization.yaml", 6, 12, "kustomize", "mirror.example.com/nginx:1.24",
         "mirror.example.com/nginx:1.24", reason="tag kept from nginx:1.24"),
    _ref("overlays/remote/kustomization.yaml", 6, 12, "kustomize", "mirror.example.com/nginx:1.25",
         "mirror.example.com/nginx:1.25", reason="tag kept from nginx:1.25"),
    _ref("overlays/remote/kustomization.yaml", 8, 12, "kustomize", "mirror.example.com/postgres", None, "unresolved",
         f"{KEEPS} postgres; none in this repository, and some resources come from outside it"
         " (https://github.com/example/deploy//app?ref=v1.0)"),
    _ref("overlays/with-component/kustomization.yaml", 10, 14, "kustomize", "final.example.com/redis:7.0",
         "final.example.com/redis:7.0", reason="tag kept from comp.example.com/redis:7.0"),
    _ref("overlays/with-component/kustomization.yaml", 12, 14, "kustomize", "other.example.com/nginx:1.24",
         "other.example.com/nginx:1.24", reason="tag kept from nginx:1.24"),
    _ref("overlays/with-component/kustomization.yaml", 12, 14, "kustomize", "other.example.com/nginx:1.25",
         "other.example.com/nginx:1.25", reason="tag kept from nginx:1.25"),
    _ref("standalone/Kustomization", 3, 12, "kustomize", "example.com/nginx", None, "unresolved",
         f"{KEEPS} nginx; no resource of this kustomization uses that name"),
    _ref("standalone/Kustomization", 5, 12, "kustomize", "alpine:3.19", "docker.io/library/alpine:3.19"),
]


def test_scan_kustomizations(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tree), "--format", "json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output == {"version": 1, "references": EXPECTED, "ignored": 0, "skipped": []}


def _edits(root: Path, path: str) -> list[dict]:
    result = scan(root, ScanOptions(rules=tuple(load_rules())))
    return [r.found.edit["kustomize"] for r in result.references if r.path == path]


def _at(text: str, part: dict) -> str:
    return text[part["scalar"][0]:part["scalar"][1]]


def test_entries_record_what_the_rewrite_needs(tree: Path) -> None:
    text = (tree / "overlays/prod/kustomization.yaml").read_text()
    nginx_124, nginx_125, redis, busybox = _edits(tree, "overlays/prod/kustomization.yaml")
    assert (nginx_124["name"]["value"], nginx_124["source"], nginx_125["source"]) == ("nginx", "nginx:1.24", "nginx:1.25")
    assert _at(text, nginx_124["newName"]) == "mirror.example.com/library/nginx"
    assert (nginx_124["newTag"], nginx_124["digest"], nginx_124["indent"], nginx_124["remote"]) == (None, None, 4, False)
    assert [_at(text, redis[k]) for k in ("name", "newName", "newTag")] == ["redis", "quay.io/acme/redis", '"7.2"']
    assert (busybox["newName"], busybox["flow"], busybox["entry"]) == (None, True, 2)
    assert _at(text, busybox["digest"]) == f'"{SHA3}"'


def test_entries_record_where_the_names_they_apply_to_are_written(tree: Path) -> None:
    """A manifest, or an entry that gave the images a newName, and the entries applied to them
    since; a component's entries apply to what the kustomization including it builds."""
    edits = {path: [(e["entry"], e["manifests"], e["entries"]) for e in _edits(tree, path)]
             for path in ("components/mirror/kustomization.yaml", "overlays/prod/kustomization.yaml",
                          "overlays/with-component/kustomization.yaml")}
    assert edits == {
        "components/mirror/kustomization.yaml": [(0, ["base/deployment.yaml"], [])],
        "overlays/prod/kustomization.yaml": [
            (0, ["base/deployment.yaml"], []),
            (0, ["base/deployment.yaml"], []),
            (1, ["base/deployment.yaml"], []),
            (2, ["base/deployment.yaml"], [("base/kustomization.yaml", 0)]),
        ],
        "overlays/with-component/kustomization.yaml": [
            (0, [], [("components/mirror/kustomization.yaml", 0)]),
            (1, ["base/deployment.yaml"], []),
            (1, ["base/deployment.yaml"], []),
        ],
    }


def test_remote_resources_are_flagged(tree: Path) -> None:
    edits = _edits(tree, "overlays/remote/kustomization.yaml")
    assert [(e["remote"], e["external"]) for e in edits] == [
        (True, ["https://github.com/example/deploy//app?ref=v1.0"]),
    ] * 3
    assert not any(e["remote"] for e in _edits(tree, "overlays/with-component/kustomization.yaml"))


def test_remote_resources_of_an_included_kustomization_count(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base/kustomization.yaml").write_text("resources:\n- github.com/example/app/deploy?ref=v2\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [base]\nimages:\n- name: app\n  newTag: '2'\n")
    [edit] = _edits(tmp_path, "kustomization.yaml")
    assert edit["remote"] is True


def test_unreadable_resources_make_kept_tags_unresolved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app/kustomization.yaml").write_text(
        "resources:\n- missing.yaml\n- ../../outside\nimages:\n- name: nginx\n  newName: example.com/nginx\n"
    )
    assert main(["scan", str(tmp_path), "--format", "json"]) == 0
    [ref] = json.loads(capsys.readouterr().out)["references"]
    assert (ref["line"], ref["column"], ref["status"], ref["reason"]) == (
        6, 12, "unresolved", f"{KEEPS} nginx; none found, and some resources could not be read (missing.yaml)",
    )


def test_cyclic_includes_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, other in (("a", "b"), ("b", "a")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "kustomization.yaml").write_text(
            f"resources: [../{other}]\nimages:\n- name: nginx\n  newName: example.com/nginx\n"
        )
    assert main(["scan", str(tmp_path), "--format", "json"]) == 0
    refs = json.loads(capsys.readouterr().out)["references"]
    assert [(r["path"], r["status"]) for r in refs] == [("a/kustomization.yaml", "unresolved"), ("b/kustomization.yaml", "unresolved")]
    assert all("could not be read" in r["reason"] for r in refs)


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("nginx", ("nginx", "", "")),
        ("nginx:1.25", ("nginx", "1.25", "")),
        (f"nginx@{SHA3}", ("nginx", "", SHA3)),
        (f"nginx:1.25@{SHA3}", ("nginx", "1.25", SHA3)),
        ("localhost:5000/app", ("localhost:5000/app", "", "")),
        ("localhost:5000/app:1", ("localhost:5000/app", "1", "")),
    ],
)
def test_split_image_as_kustomize(image: str, parts: tuple[str, str, str]) -> None:
    assert split_image(image) == parts


def _built_images(directory: Path) -> set[str]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl (with Kustomize v5) is needed to check the Kustomize fixtures against the real tool")
    built = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True)
    images = set()
    for line in built.stdout.splitlines():
        key, _, value = line.strip().removeprefix("- ").partition(":")
        if key == "image":
            images.add(value.strip())
    return images


def _output_names(kustomization: Path) -> set[str]:
    """The image names the kustomization's entries give their images."""
    entries = YAML(typ="safe").load(kustomization.read_text())["images"]
    return {e.get("newName", e["name"]) for e in entries if {"newName", "newTag", "digest"} & set(e)}


@pytest.mark.parametrize("directory", ["base", "overlays/prod", "overlays/with-component"])
def test_produced_images_match_kustomize_build(tree: Path, directory: str) -> None:
    result = scan(tree, ScanOptions(rules=tuple(load_rules())))
    reported = {
        r.raw for r in result.references
        if r.kind == "kustomize" and r.path.startswith(f"{directory}/") and r.status != "unresolved"
    }
    names = _output_names(tree / directory / "kustomization.yaml")
    built = {image for image in _built_images(tree / directory) if split_image(image)[0] in names}
    assert reported and reported == built
