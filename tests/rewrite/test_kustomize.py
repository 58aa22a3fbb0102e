"""Kustomize through the real tool: `kubectl kustomize` before and after the rewrite."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from bot import rewrite
from bot.imageref import parse
from bot.policy import map_to_mirror
from tests.helpers import run_cli, shared_anchor, write_tree

FIXTURE = Path(__file__).parent / "kustomize"
DEST = "us-docker.pkg.dev/acme/mirror"


def _built_images(directory: Path) -> list[str]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl (with Kustomize v5) is needed to check rewrites of kustomizations")
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    images = []
    for doc in YAML(typ="safe").load_all(out.stdout):
        spec = doc["spec"]["template"]["spec"]
        images += [c["image"] for c in spec.get("initContainers", []) + spec["containers"]]
    return images


def _mirror(image: str) -> str:
    return str(map_to_mirror(parse(image), DEST, "{destination}/{domain}/{path}"))


@pytest.mark.parametrize("overlay", ["base", "overlay"])
def test_every_built_image_is_the_mirror_of_what_it_was(tmp_path, capsys, overlay):
    work = tmp_path / "tree"
    shutil.copytree(FIXTURE, work)
    before = _built_images(work / overlay)
    code, _, err = run_cli(capsys, "rewrite", str(work), "--to", DEST)
    assert code == 0, err
    assert _built_images(work / overlay) == [_mirror(image) for image in before]


def test_the_overrides_still_apply_with_their_tags_and_names(tmp_path, capsys):
    work = tmp_path / "tree"
    shutil.copytree(FIXTURE, work)
    assert _built_images(work / "overlay") == ["ghcr.io/acme/alpine:3.20", "quay.io/acme/busybox:1.36", "nginx:1.27"]
    run_cli(capsys, "rewrite", str(work), "--to", DEST)
    assert (work / "base" / "kustomization.yaml").read_text() == (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources:\n"
        "  - deployment.yaml\n"
        "images:\n"
        f"  - name: {DEST}/docker.io/library/nginx\n"
        f"    newName: {DEST}/docker.io/library/nginx\n"
        '    newTag: "1.27"  # the web tier runs 1.27\n'
    )
    assert (work / "overlay" / "kustomization.yaml").read_text() == (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources:\n"
        "  - ../base\n"
        "images:\n"
        f"  - name: {DEST}/docker.io/library/busybox\n"
        f"    newName: {DEST}/quay.io/acme/busybox\n"
        f'  - {{name: {DEST}/docker.io/library/alpine, newName: {DEST}/ghcr.io/acme/alpine, newTag: "3.20"}}\n'
    )


def test_remote_bases_leave_the_override_and_its_manifests_covered(tmp_path, capsys):
    work = tmp_path / "tree"
    shutil.copytree(FIXTURE, work)
    code, out, _ = run_cli(capsys, "plan", str(work / "remote"), "--to", DEST, "--format", "json")
    plan = json.loads(out)
    assert (code, plan["moves"]) == (0, [])
    assert [(c["path"], c["raw"], c["reason"]) for c in plan["covered"]] == [
        ("deployment.yaml", "redis:7",
         "matched by the Kustomize images: override in kustomization.yaml, whose kustomization also builds resources "
         "from outside the repository (https://github.com/acme/platform//deploy/cache?ref=v1.2.0)"),
        ("kustomization.yaml", "redis:7.4",
         "the kustomization also builds resources from outside the repository "
         "(https://github.com/acme/platform//deploy/cache?ref=v1.2.0); moving this override would make it stop "
         "applying to them"),
    ]
    before = {p: p.read_bytes() for p in (work / "remote").iterdir()}
    assert run_cli(capsys, "rewrite", str(work / "remote"), "--to", DEST)[0] == 0
    assert {p: p.read_bytes() for p in (work / "remote").iterdir()} == before


KUSTOMIZATION_WITH_INTERNAL_NEW_NAME = """\
resources: [deployment.yaml]
images:
- name: nginx
  newTag: "1.26"
- name: busybox
  newName: us-docker.pkg.dev/acme/team/busybox
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
      - {name: a, image: nginx:1.25}
      - {name: b, image: busybox:1.36}
"""


def _internal_new_name_tree(root: Path) -> Path:
    root.mkdir()
    (root / "kustomization.yaml").write_text(KUSTOMIZATION_WITH_INTERNAL_NEW_NAME)
    (root / "deployment.yaml").write_text(DEPLOYMENT)
    return root


def test_an_entry_with_only_an_internal_new_name_follows_its_manifest_and_keeps_applying(tmp_path, capsys):
    work = _internal_new_name_tree(tmp_path / "tree")
    assert _built_images(work) == ["nginx:1.26", "us-docker.pkg.dev/acme/team/busybox:1.36"]
    code, out, err = run_cli(capsys, "rewrite", str(work), "--to", DEST)
    assert (code, err) == (0, "")
    assert out.endswith("2 files rewritten, 3 references moved\n")
    assert _built_images(work) == [f"{DEST}/docker.io/library/nginx:1.26", "us-docker.pkg.dev/acme/team/busybox:1.36"]
    assert (work / "kustomization.yaml").read_text() == (
        "resources: [deployment.yaml]\n"
        "images:\n"
        f"- name: {DEST}/docker.io/library/nginx\n"
        f"  newName: {DEST}/docker.io/library/nginx\n"
        '  newTag: "1.26"\n'
        f"- name: {DEST}/docker.io/library/busybox\n"
        "  newName: us-docker.pkg.dev/acme/team/busybox\n")
    assert run_cli(capsys, "rewrite", str(work), "--to", DEST)[:2] == (0, "0 files rewritten, 0 references moved\n")


def _refuse(monkeypatch, path: str, reason: str) -> None:
    """The rewrite of `path` fails its checks, with this reason."""
    real = rewrite.rewrite_file

    def refuse(text, moves, rule, context, policy, extra=None):
        if context.path == path:
            return rewrite.FileRewrite(context.path, text, None, 0, reason)
        return real(text, moves, rule, context, policy, extra)

    monkeypatch.setattr(rewrite, "rewrite_file", refuse)


def test_manifests_stay_as_they_are_when_their_kustomization_cannot_follow(tmp_path, capsys, monkeypatch):
    work = _internal_new_name_tree(tmp_path / "tree")
    _refuse(monkeypatch, "kustomization.yaml", "two edits overlap at characters 1-2")
    code, out, err = run_cli(capsys, "rewrite", str(work), "--to", DEST)
    assert (code, err) == (1, "")
    assert out == ("0 files rewritten, 0 references moved\n"
                   "left untouched: deployment.yaml: left as it is: kustomization.yaml, whose images: entries apply "
                   "to it, could not follow the move (two edits overlap at characters 1-2)\n"
                   "left untouched: kustomization.yaml: two edits overlap at characters 1-2\n")
    assert (work / "deployment.yaml").read_text() == DEPLOYMENT
    assert _built_images(work) == ["nginx:1.26", "us-docker.pkg.dev/acme/team/busybox:1.36"]


def _deployment(name: str, *images: str, annotations: str = "{}") -> str:
    containers = "".join(f"      - {{name: c{i}, image: {image}}}\n" for i, image in enumerate(images))
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  annotations: {annotations}\n"
            f"spec:\n  template:\n    spec:\n      containers:\n{containers}")


def _shared_entry_tree(root: Path, base: dict[str, str]) -> dict[Path, str]:
    files = {root / "base" / name: text for name, text in base.items()}
    files[root / "base" / "kustomization.yaml"] = f"resources: [{', '.join(sorted(base))}]\n"
    files[root / "overlay" / "kustomization.yaml"] = 'resources: [../base]\nimages:\n- name: nginx\n  newTag: "1.28"\n'
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def test_an_entry_that_also_matches_a_reference_that_stays_keeps_its_name_and_all_it_matches(tmp_path, capsys):
    files = _shared_entry_tree(tmp_path, {
        "deploy.yaml": _deployment("web", "*orig", "nginx:1.27", annotations="{original: &orig nginx:1.27}"),
        "cache.yaml": _deployment("cache", "redis:7"),
    })
    before = {d: _built_images(tmp_path / d) for d in ("base", "overlay")}
    assert before["overlay"] == ["redis:7", "nginx:1.28", "nginx:1.28"]
    code, out, _ = run_cli(capsys, "plan", str(tmp_path), "--to", DEST, "--format", "json")
    plan = json.loads(out)
    assert (code, [m["source"] for m in plan["moves"]]) == (0, ["docker.io/library/redis:7"])
    assert [(r["path"], r["line"], r["reason"]) for r in plan["unresolved"]] == [
        ("base/deploy.yaml", 5, shared_anchor("orig", 5)),
        ("base/deploy.yaml", 11, "matched by the Kustomize images: entry at overlay/kustomization.yaml:4, which must "
                                 "keep its name: it also matches base/deploy.yaml:5, which stays"),
        ("overlay/kustomization.yaml", 4, "its name nginx also matches base/deploy.yaml:5, which stays: renamed to "
                                          "follow the others, it would stop applying there; change it by hand"),
    ]
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)[0] == 0
    assert {path: path.read_text() for path in files if path.name != "cache.yaml"} == {
        path: text for path, text in files.items() if path.name != "cache.yaml"}
    assert {d: _built_images(tmp_path / d) for d in ("base", "overlay")} == {
        "base": [_mirror("redis:7"), "nginx:1.27", "nginx:1.27"],
        "overlay": [_mirror("redis:7"), "nginx:1.28", "nginx:1.28"],
    }


def test_an_entry_keeps_its_name_when_a_manifest_it_matches_is_left_untouched(tmp_path, capsys, monkeypatch):
    files = _shared_entry_tree(tmp_path, {
        "a.yaml": _deployment("a", "nginx:1.27"),
        "b.yaml": _deployment("b", "nginx:1.27", "redis:7"),
    })
    before = {d: _built_images(tmp_path / d) for d in ("base", "overlay")}
    _refuse(monkeypatch, "base/a.yaml", "nested too deeply to check that only image names change")
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (1, "")
    assert out == (
        "0 files rewritten, 0 references moved\n"
        "left untouched: base/a.yaml: nested too deeply to check that only image names change\n"
        "left untouched: base/b.yaml: left as it is: matched by the Kustomize images: entry at "
        "overlay/kustomization.yaml:4, which must keep its name: it also matches base/a.yaml:10, which stays\n"
        "left untouched: overlay/kustomization.yaml: its name nginx also matches base/a.yaml:10, which stays: "
        "renamed to follow the others, it would stop applying there; change it by hand\n")
    assert {path: path.read_text() for path in files} == files
    assert {d: _built_images(tmp_path / d) for d in ("base", "overlay")} == before


LAYERED_BASE = {
    "base/kustomization.yaml": "resources: [deployment.yaml]\n",
    "base/deployment.yaml": _deployment("web", "nginx:1.25", "redis:7"),
}


def _rendered(root: Path, files: dict[str, str]) -> dict[str, list[str]]:
    """What `kubectl kustomize` builds in each folder of `files` that holds a kustomization (not a component)."""
    folders = sorted({name.rpartition("/")[0] for name, text in files.items()
                      if name.endswith("kustomization.yaml") and "kind: Component" not in text})
    return {folder: _built_images(root / folder) for folder in folders}


def _mirrored(rendered: dict[str, list[str]]) -> dict[str, list[str]]:
    return {folder: [_mirror(image) for image in images] for folder, images in rendered.items()}


LAYERS = {
    **LAYERED_BASE,
    "components/tag/kustomization.yaml": 'kind: Component\nimages:\n- name: nginx\n  newTag: "1.26"\n',
    "components/rename/kustomization.yaml": (
        "kind: Component\ncomponents: [../tag]\nimages:\n- name: redis\n  newName: quay.io/acme/redis\n"),
    "with-tag/kustomization.yaml": "resources: [../base]\ncomponents: [../components/tag]\n",
    "with-both/kustomization.yaml": (
        'resources: [../base]\ncomponents: [../components/rename]\nimages:\n- name: quay.io/acme/redis\n'
        '  newTag: "7.4"\n'),
    "overlays/staging/kustomization.yaml": "resources: [../../base]\nimages:\n- name: nginx\n  newName: ghcr.io/acme/nginx\n",
    "overlays/prod/kustomization.yaml": (
        'resources: [../staging]\nimages:\n- name: ghcr.io/acme/nginx\n  newTag: "1.27"\n- name: redis\n'
        '  newTag: "7.2"\n'),
}


def test_components_and_overlays_of_overlays_keep_applying(tmp_path, capsys):
    write_tree(tmp_path, LAYERS)
    before = _rendered(tmp_path, LAYERS)
    assert before == {
        "base": ["nginx:1.25", "redis:7"],
        "overlays/prod": ["ghcr.io/acme/nginx:1.27", "redis:7.2"],
        "overlays/staging": ["ghcr.io/acme/nginx:1.25", "redis:7"],
        "with-both": ["nginx:1.26", "quay.io/acme/redis:7.4"],
        "with-tag": ["nginx:1.26", "redis:7"],
    }
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    assert out.splitlines()[-2:] == [
        "6 files rewritten, 7 references moved",
        "unresolved: components/rename/kustomization.yaml:5:12: quay.io/acme/redis: newName without newTag or digest "
        "keeps the tags of the images named redis in the kustomization that includes this component",
    ]
    assert _rendered(tmp_path, LAYERS) == _mirrored(before)
    nginx, redis = f"{DEST}/docker.io/library/nginx", f"{DEST}/docker.io/library/redis"
    assert {name: (tmp_path / name).read_text() for name in LAYERS if name.startswith(("components/", "overlays/"))} == {
        "components/tag/kustomization.yaml": f'kind: Component\nimages:\n- name: {nginx}\n  newName: {nginx}\n'
                                             '  newTag: "1.26"\n',
        "components/rename/kustomization.yaml": ("kind: Component\ncomponents: [../tag]\nimages:\n"
                                                 f"- name: {redis}\n  newName: quay.io/acme/redis\n"),
        "overlays/staging/kustomization.yaml": (f"resources: [../../base]\nimages:\n- name: {nginx}\n"
                                                f"  newName: {DEST}/ghcr.io/acme/nginx\n"),
        "overlays/prod/kustomization.yaml": (f"resources: [../staging]\nimages:\n- name: {DEST}/ghcr.io/acme/nginx\n"
                                             f'  newName: {DEST}/ghcr.io/acme/nginx\n  newTag: "1.27"\n'
                                             f'- name: {redis}\n  newName: {redis}\n  newTag: "7.2"\n'),
    }


REMOTE = "https://github.com/acme/platform//cache?ref=v1"


@pytest.mark.parametrize("includer", [
    f"resources: [../base, '{REMOTE}']\ncomponents: [../components/tag]\n",
    f"resources: [../base]\ncomponents: [../components/tag, '{REMOTE}']\n",
], ids=["remote resource", "remote component"])
def test_a_component_included_beside_remote_resources_stays_with_what_it_applies_to(tmp_path, capsys, includer):
    files = {
        **LAYERED_BASE,
        "components/tag/kustomization.yaml": LAYERS["components/tag/kustomization.yaml"],
        "app/kustomization.yaml": includer,
    }
    write_tree(tmp_path, files)
    code, out, _ = run_cli(capsys, "plan", str(tmp_path), "--to", DEST, "--format", "json")
    plan = json.loads(out)
    assert (code, [m["source"] for m in plan["moves"]]) == (0, ["docker.io/library/redis:7"])
    assert [(c["path"], c["raw"], c["reason"]) for c in plan["covered"]] == [
        ("base/deployment.yaml", "nginx:1.25",
         "matched by the Kustomize images: override in components/tag/kustomization.yaml, a component whose entries "
         f"also apply to resources from outside the repository ({REMOTE})"),
        ("components/tag/kustomization.yaml", "nginx:1.26",
         f"this component's entries also apply to resources from outside the repository ({REMOTE}); moving this "
         "override would make it stop applying to them"),
    ]


@pytest.mark.parametrize(("scanned", "moved"), [
    ("components/tag", {"with-both": ["nginx:1.26"], "with-tag": ["nginx:1.26"]}),
    ("with-both", {"with-both": ["quay.io/acme/redis:7.4"]}),
    ("overlays/prod", {"overlays/prod": ["ghcr.io/acme/nginx:1.27", "redis:7.2"]}),
])
def test_layers_outside_the_scanned_folder_are_not_read(tmp_path, capsys, scanned, moved):
    """Scanning one layer moves what it writes itself; the kustomizations it includes, or that
    include it, are outside: not rewritten, and what they build from it still applies."""
    write_tree(tmp_path, LAYERS)
    before = _rendered(tmp_path, LAYERS)
    code, _, err = run_cli(capsys, "rewrite", str(tmp_path / scanned), "--to", DEST)
    assert (code, err) == (0, "")
    assert _rendered(tmp_path, LAYERS) == {
        folder: [_mirror(image) if image in moved.get(folder, ()) else image for image in images]
        for folder, images in before.items()
    }


def test_an_entry_that_keeps_several_tags_moves_with_all_of_them(tmp_path, capsys):
    files = {
        "base/kustomization.yaml": "resources: [web.yaml, report.yaml]\n",
        "base/web.yaml": _deployment("web", "nginx:1.25"),
        "base/report.yaml": _deployment("report", "nginx:1.24"),
        "overlay/kustomization.yaml": "resources: [../base]\nimages:\n- name: nginx\n  newName: quay.io/acme/nginx\n",
    }
    write_tree(tmp_path, files)
    before = _rendered(tmp_path, files)
    assert before["overlay"] == ["quay.io/acme/nginx:1.24", "quay.io/acme/nginx:1.25"]
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    assert out == ("FILE                        REFERENCES\n"
                   "--------------------------  ----------\n"
                   "base/report.yaml            1\n"
                   "base/web.yaml               1\n"
                   "overlay/kustomization.yaml  2\n"
                   "3 files rewritten, 4 references moved\n")
    assert _rendered(tmp_path, files) == _mirrored(before)
    assert (tmp_path / "overlay/kustomization.yaml").read_text() == (
        f"resources: [../base]\nimages:\n- name: {DEST}/docker.io/library/nginx\n"
        f"  newName: {DEST}/quay.io/acme/nginx\n")


# `prod` sorts before `staging`, which it builds on: each is checked against the other's new text.
RENAMED_TWICE = {
    **LAYERED_BASE,
    "staging/kustomization.yaml": "resources: [../base]\nimages:\n- name: nginx\n  newName: quay.io/acme/nginx\n",
    "prod/kustomization.yaml": "resources: [../staging]\nimages:\n- name: quay.io/acme/nginx\n"
                               "  newName: ghcr.io/acme/nginx\n",
}


def test_an_overlay_is_checked_against_the_new_text_of_the_overlay_it_builds_on(tmp_path, capsys):
    write_tree(tmp_path, RENAMED_TWICE)
    before = _rendered(tmp_path, RENAMED_TWICE)
    assert before["prod"] == ["ghcr.io/acme/nginx:1.25", "redis:7"]
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    assert out.endswith("3 files rewritten, 4 references moved\n")
    assert _rendered(tmp_path, RENAMED_TWICE) == _mirrored(before)
    assert (tmp_path / "prod/kustomization.yaml").read_text() == (
        f"resources: [../staging]\nimages:\n- name: {DEST}/quay.io/acme/nginx\n  newName: {DEST}/ghcr.io/acme/nginx\n")


def test_what_an_overlay_that_cannot_follow_builds_on_stays_as_it_applies_to_it(tmp_path, capsys, monkeypatch):
    write_tree(tmp_path, RENAMED_TWICE)
    _refuse(monkeypatch, "prod/kustomization.yaml", "two edits overlap at characters 1-2")
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (1, "")
    assert out.splitlines()[-2:] == [
        "2 files rewritten, 2 references moved",
        "left untouched: prod/kustomization.yaml: two edits overlap at characters 1-2",
    ]
    assert _rendered(tmp_path, RENAMED_TWICE) == {
        "base": [_mirror("nginx:1.25"), _mirror("redis:7")],
        "prod": ["ghcr.io/acme/nginx:1.25", _mirror("redis:7")],
        "staging": ["quay.io/acme/nginx:1.25", _mirror("redis:7")],
    }
    assert (tmp_path / "staging/kustomization.yaml").read_text() == (
        f"resources: [../base]\nimages:\n- name: {DEST}/docker.io/library/nginx\n  newName: quay.io/acme/nginx\n")


def test_an_entry_between_the_manifest_and_an_entry_that_stays_stays_too(tmp_path, capsys):
    """Moved, the base's own entry would give nginx a mirror newName, and the overlay's entry, which
    must keep its name, would stop applying."""
    files = {
        "tagged/kustomization.yaml": 'resources: [deploy.yaml]\nimages:\n- name: nginx\n  newTag: "1.26"\n',
        "tagged/deploy.yaml": _deployment("web", "nginx:1.25"),
        "anchored/kustomization.yaml": "resources: [deploy.yaml]\n",
        "anchored/deploy.yaml": _deployment("api", "*orig", annotations="{original: &orig nginx:1.27}"),
        "overlay/kustomization.yaml": 'resources: [../tagged, ../anchored]\nimages:\n- name: nginx\n  newTag: "1.28"\n',
    }
    write_tree(tmp_path, files)
    before = _rendered(tmp_path, files)
    assert before["overlay"] == ["nginx:1.28", "nginx:1.28"]
    code, out, _ = run_cli(capsys, "plan", str(tmp_path), "--to", DEST, "--format", "json")
    plan = json.loads(out)
    assert (code, plan["moves"]) == (0, [])
    assert [(r["path"], r["line"], r["reason"]) for r in plan["unresolved"]] == [
        ("anchored/deploy.yaml", 5, shared_anchor("orig", 5)),
        ("overlay/kustomization.yaml", 4, "its name nginx also matches anchored/deploy.yaml:5, which stays: renamed "
                                          "to follow the others, it would stop applying there; change it by hand"),
        ("tagged/deploy.yaml", 10, "matched by the Kustomize images: entry at overlay/kustomization.yaml:4, which "
                                   "must keep its name: it also matches anchored/deploy.yaml:5, which stays"),
        ("tagged/kustomization.yaml", 4, "matched by the Kustomize images: entry at overlay/kustomization.yaml:4, "
                                         "which must keep its name: it also matches anchored/deploy.yaml:5, which stays"),
    ]
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)[0] == 0
    assert _rendered(tmp_path, files) == before


def test_an_entry_between_the_manifest_and_a_remote_overlay_is_covered(tmp_path, capsys):
    write_tree(tmp_path, {
        "base/kustomization.yaml": 'resources: [deploy.yaml]\nimages:\n- name: nginx\n  newTag: "1.26"\n',
        "base/deploy.yaml": _deployment("web", "nginx:1.25"),
        "overlay/kustomization.yaml": f"resources: [../base, '{REMOTE}']\nimages:\n- name: nginx\n  newTag: \"1.27\"\n",
    })
    code, out, _ = run_cli(capsys, "plan", str(tmp_path), "--to", DEST, "--format", "json")
    plan = json.loads(out)
    assert (code, plan["moves"]) == (0, [])
    matched = ("matched by the Kustomize images: override in overlay/kustomization.yaml, whose kustomization also "
               f"builds resources from outside the repository ({REMOTE})")
    assert [(c["path"], c["raw"], c["reason"]) for c in plan["covered"]] == [
        ("base/deploy.yaml", "nginx:1.25", matched),
        ("base/kustomization.yaml", "nginx:1.26", matched),
        ("overlay/kustomization.yaml", "nginx:1.27",
         f"the kustomization also builds resources from outside the repository ({REMOTE}); moving this override "
         "would make it stop applying to them"),
    ]


def _plan_stays(capsys, root: Path) -> tuple[list[str], list[tuple[str, int, str]], list[tuple[str, int, str]]]:
    """The sources that move, and the (path, line, reason) of what stays unresolved and covered."""
    code, out, err = run_cli(capsys, "plan", str(root), "--to", DEST, "--format", "json")
    assert (code, err) == (0, "")
    plan = json.loads(out)
    return ([m["source"] for m in plan["moves"]],
            [(r["path"], r["line"], r["reason"]) for r in plan["unresolved"]],
            [(r["path"], r["line"], r["reason"]) for r in plan["covered"]])


NGINX_SPELLED_TWO_WAYS = {
    "base/kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
    "base/a.yaml": _deployment("a", "docker.io/library/nginx:1.25"),
    "base/b.yaml": _deployment("b", "nginx:1.26"),
    "overlay/kustomization.yaml": 'resources: [../base]\nimages:\n- name: nginx\n  newTag: "1.27"\n',
}


def test_an_entry_for_one_spelling_of_an_image_is_not_renamed_to_apply_to_the_other(tmp_path, capsys):
    write_tree(tmp_path, NGINX_SPELLED_TWO_WAYS)
    before = _rendered(tmp_path, NGINX_SPELLED_TWO_WAYS)
    assert before["overlay"] == ["docker.io/library/nginx:1.25", "nginx:1.27"]
    reason = (f"docker.io/library/nginx and nginx would share the mirror name {DEST}/docker.io/library/nginx, and "
              "the Kustomize images: entry at overlay/kustomization.yaml:4 applies only to nginx (base/a.yaml:10 is "
              "the other): renamed, it would apply to both; change it by hand")
    assert _plan_stays(capsys, tmp_path) == (
        ["docker.io/library/nginx:1.25"],
        [("base/b.yaml", 10, reason), ("overlay/kustomization.yaml", 4, reason)],
        [],
    )
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)[0] == 0
    assert _rendered(tmp_path, NGINX_SPELLED_TWO_WAYS) == {
        "base": [_mirror("nginx:1.25"), "nginx:1.26"],
        "overlay": [_mirror("nginx:1.25"), "nginx:1.27"],
    }


REDIS_SPELLED_TWO_WAYS = {
    "base/kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
    "base/a.yaml": _deployment("a", "library/redis:7"),
    "base/b.yaml": _deployment("b", "redis:6"),
    "comp/kustomization.yaml": "kind: Component\nimages:\n- name: library/redis\n  newName: quay.io/acme/redis\n",
    "app/kustomization.yaml": "resources: [../base]\ncomponents: [../comp]\n",
}


def test_a_component_entry_for_one_spelling_of_an_image_is_not_renamed_to_apply_to_the_other(tmp_path, capsys):
    write_tree(tmp_path, REDIS_SPELLED_TWO_WAYS)
    before = _rendered(tmp_path, REDIS_SPELLED_TWO_WAYS)
    assert before["app"] == ["quay.io/acme/redis:7", "redis:6"]
    assert _plan_stays(capsys, tmp_path)[:2] == (
        ["docker.io/library/redis:6"],
        [("base/a.yaml", 10,
          f"library/redis and redis would share the mirror name {DEST}/docker.io/library/redis, and the Kustomize "
          "images: entry at comp/kustomization.yaml:4 applies only to library/redis (base/b.yaml:10 is the other): "
          "renamed, it would apply to both; change it by hand"),
         ("comp/kustomization.yaml", 4, "newName without newTag or digest keeps the tags of the images named "
                                        "library/redis in the kustomization that includes this component")],
    )
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)[0] == 0
    assert (tmp_path / "comp/kustomization.yaml").read_text() == REDIS_SPELLED_TWO_WAYS["comp/kustomization.yaml"]
    assert _rendered(tmp_path, REDIS_SPELLED_TWO_WAYS) == {
        "app": ["quay.io/acme/redis:7", _mirror("redis:6")],
        "base": ["library/redis:7", _mirror("redis:6")],
    }


JSON6902 = "- op: replace\n  path: /spec/template/spec/containers/0/image\n  value: nginx:1.20\n"


@pytest.mark.parametrize("patches", [
    {"overlay/kustomization.yaml": "patches:\n- target: {kind: Deployment, name: a}\n  patch: |-\n"
                                   + "".join(f"    {line}\n" for line in JSON6902.splitlines())},
    {"overlay/kustomization.yaml": "patches:\n- target: {kind: Deployment, name: a}\n  path: image.yaml\n",
     "overlay/image.yaml": JSON6902},
    {"overlay/kustomization.yaml": "patchesJson6902:\n- target: {group: apps, version: v1, kind: Deployment, name: a}\n"
                                   "  path: image.yaml\n",
     "overlay/image.yaml": JSON6902},
], ids=["inline", "file", "patchesJson6902"])
def test_an_entry_applying_to_images_set_by_json6902_patches_stays_with_what_it_matches(tmp_path, capsys, patches):
    files = {"base/kustomization.yaml": "resources: [a.yaml]\n", "base/a.yaml": _deployment("a", "nginx:1.25"),
             **patches}
    files["overlay/kustomization.yaml"] = (f"resources: [../base]\n{files['overlay/kustomization.yaml']}"
                                           'images:\n- name: nginx\n  newTag: "1.27"\n')
    write_tree(tmp_path, files)
    before = _rendered(tmp_path, files)
    assert before == {"base": ["nginx:1.25"], "overlay": ["nginx:1.27"]}
    line = files["overlay/kustomization.yaml"].splitlines().index('  newTag: "1.27"') + 1
    unseen = "images set by patches the scan does not read (overlay/kustomization.yaml)"
    assert _plan_stays(capsys, tmp_path) == ([], [], [
        ("base/a.yaml", 10, f"matched by the Kustomize images: override in overlay/kustomization.yaml, which also "
                            f"applies to {unseen}"),
        ("overlay/kustomization.yaml", line,
         f"the override also applies to {unseen}; moving this override would make it stop applying to them"),
    ])
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)[0] == 0
    assert {name: (tmp_path / name).read_text() for name in files} == files
    assert _rendered(tmp_path, files) == before


def test_a_kustomization_is_read_once_for_its_new_text_and_its_checks(tmp_path, capsys, monkeypatch):
    work = _internal_new_name_tree(tmp_path / "tree")
    read_again = rewrite._read_again
    reads: list[str] = []

    def counted(tree, path: str) -> str:
        reads.append(path)
        return read_again(tree, path)

    monkeypatch.setattr(rewrite, "_read_again", counted)
    code, out, err = run_cli(capsys, "rewrite", str(work), "--to", DEST)
    assert (code, err) == (0, "")
    assert out.endswith("2 files rewritten, 3 references moved\n")
    assert reads == ["deployment.yaml", "kustomization.yaml"]
