"""`--pin-digest`: rewritten references carry the digest the mirror's verified copy serves."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli, write_tree
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo
from tests.oci.servers import free_port


def _copied_app(loopback: Loopback, capsys) -> tuple[str, str, str, images.Image, str]:
    """An image pushed upstream as `<app>:1.0` and copied to its name under the mirror: (upstream host, mirror
    host, app repository, image, destination)."""
    up, down = loopback.upstream.host, loopback.target.host
    app = unique_repo("pin-app")
    image = images.image((1024,))
    images.push(up, app, image, "1.0")
    dest = f"{down}/mirror"
    assert run_cli(capsys, "copy", f"{up}/{app}:1.0", f"{dest}/{up.replace(':', '__')}/{app}:1.0")[0] == 0
    return up, down, app, image, dest


def test_pins_come_from_the_mirror(loopback: Loopback, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = loopback.upstream.host, loopback.target.host
    app, tool = unique_repo("pin-app"), unique_repo("pin-tool")
    image = images.image((1024,))
    images.push(up, app, image, "1.0")
    images.push(up, tool, images.image((512,)), "2")
    dest = f"{down}/mirror"
    repo = write_tree(tmp_path / "repo", {
        "Dockerfile": f"ARG T=2\nFROM {up}/{app}:1.0\nFROM {up}/{tool}:${{T}}\n",
        "chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\n",
        "chart/values.yaml": f"image:\n  registry: {up}\n  repository: {app}\n  tag: \"1.0\"\n",
        "pod.yaml": f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: {up}/{tool}:3\n",
    })
    flags = ["--to", dest, "--internal", f"{down}"]
    # Only app:1.0 is in the mirror; the others are not pinned (and say so).
    assert run_cli(capsys, "copy", f"{up}/{app}:1.0", f"{dest}/{up.replace(':', '__')}/{app}:1.0")[0] == 0
    code, _, err = run_cli(capsys, "rewrite", str(repo), *flags, "--pin-digest")
    assert code == 0
    mirror_app = f"{dest}/{up.replace(':', '__')}/{app}"
    mirror_tool = f"{dest}/{up.replace(':', '__')}/{tool}"
    assert (repo / "Dockerfile").read_text() == (
        f"ARG T=2\nFROM {mirror_app}:1.0@{image.digest}\nFROM {mirror_tool}:${{T}}\n"
    )
    assert (repo / "chart/values.yaml").read_text() == (
        f"image:\n  registry: {down}\n  repository: mirror/{up.replace(':', '__')}/{app}\n  tag: \"1.0\"\n"
        f"  digest: {image.digest}\n"
    )
    assert (repo / "pod.yaml").read_text().endswith(f"- image: {mirror_tool}:3\n")
    assert f"not pinned: {mirror_tool}:3: the mirror does not hold a copy (no such tag in the mirror)" in err


def test_pins_need_only_the_mirror(loopback: Loopback, tmp_path: Path, capsys, monkeypatch) -> None:
    """The source registries are not asked: a source out of reach (here a closed port) is pinned all the
    same to what its copy in the mirror serves."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = loopback.upstream.host, loopback.target.host
    app, gone = unique_repo("pin-app"), f"127.0.0.1:{free_port()}"
    image = images.image((1024,))
    images.push(up, app, image, "1.0")
    dest = f"{down}/mirror"
    copy = f"{dest}/{gone.replace(':', '__')}/{app}:1.0"
    assert run_cli(capsys, "copy", f"{up}/{app}:1.0", copy)[0] == 0
    repo = write_tree(tmp_path / "repo", {"Dockerfile": f"FROM {gone}/{app}:1.0\n"})
    code, _, err = run_cli(capsys, "rewrite", str(repo), "--to", dest, "--pin-digest")
    assert (code, err) == (0, "")
    assert (repo / "Dockerfile").read_text() == f"FROM {copy}@{image.digest}\n"


def test_a_mirror_that_cannot_be_asked_is_not_said_to_lack_the_copy(tmp_path: Path, capsys, monkeypatch) -> None:
    """Running `rehome mirror` again would not help: the warning says the mirror could not be asked, and why."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setattr("bot.registry.client.random.uniform", lambda low, high: 0.0)  # no backoff waits
    dest = f"127.0.0.1:{free_port()}/mirror"
    repo = write_tree(tmp_path / "repo", {"Dockerfile": "FROM alpine:3.19\n"})
    code, _, err = run_cli(capsys, "rewrite", str(repo), "--to", dest, "--pin-digest")
    assert code == 0
    assert err.splitlines()[-1] == (
        f"not pinned: {dest}/docker.io/library/alpine:3.19: the mirror could not be asked whether it holds a copy "
        f"({dest}/docker.io/library/alpine: look up the copy: connection failed after 5 tries (ConnectError: "
        "[Errno 111] Connection refused))")
    assert (repo / "Dockerfile").read_text() == f"FROM {dest}/docker.io/library/alpine:3.19\n"


@pytest.mark.parametrize(("values", "lines"), [
    pytest.param('image:\n  <<: {{registry: {up}, repository: {app}, tag: "1.0"}}\n', (1, 2), id="merged mapping"),
    # `sidecar` stands at the repository of `app`'s mapping, which it merges; `app` itself can be pinned.
    pytest.param('app:\n  image: &base\n    registry: {up}\n    repository: {app}\n    tag: "1.0"\n'
                 'sidecar:\n  image:\n    <<: *base\n', (7, 5), id="anchored entry merged"),
])
def test_a_helm_tag_from_a_merge_key_is_not_pinned_in_the_merged_mapping(loopback: Loopback, tmp_path: Path, capsys,
                                                                         monkeypatch, values: str,
                                                                         lines: tuple[int, int]) -> None:
    """The digest would join the mapping the tag comes from, which other entries may merge too: the file
    stays, naming the line of the entry (its image key) and that of its tag."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = loopback.upstream.host, loopback.target.host
    app = unique_repo("pin-app")
    images.push(up, app, images.image((1024,)), "1.0")
    dest = f"{down}/mirror"
    assert run_cli(capsys, "copy", f"{up}/{app}:1.0", f"{dest}/{up.replace(':', '__')}/{app}:1.0")[0] == 0
    values = values.format(up=up, app=app)
    repo = write_tree(tmp_path / "repo", {"chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\n",
                                          "chart/values.yaml": values})
    code, out, err = run_cli(capsys, "rewrite", str(repo), "--to", dest, "--internal", down, "--pin-digest")
    assert (code, out, err) == (1, "0 files rewritten, 0 references moved\nleft untouched: chart/values.yaml: "
                                   f"line {lines[0]}: the tag at line {lines[1]} comes from a merge key (<<): add the "
                                   "digest by hand\n", "")
    assert (repo / "chart/values.yaml").read_text() == values


@pytest.mark.parametrize("values", [
    pytest.param('image:\n  registry: {up}\n  repository: {app}\n  tag: "1.0"\n  digest: ""  # pinned\n'
                 '  pullPolicy: Always\n', id="block"),
    pytest.param("image: {{registry: {up}, repository: {app}, tag: '1.0', digest: ''}}\n", id="flow"),
])
def test_a_helm_entry_with_an_empty_digest_key_is_pinned_there(loopback: Loopback, tmp_path: Path, capsys,
                                                               monkeypatch, values: str) -> None:
    """Charts such as Bitnami's write `digest: ""` under each image: the digest fills it, no second key joins."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down, app, image, dest = _copied_app(loopback, capsys)
    values = values.format(up=up, app=app)
    repo = write_tree(tmp_path / "repo", {"chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\n",
                                          "chart/values.yaml": values})
    code, _, err = run_cli(capsys, "rewrite", str(repo), "--to", dest, "--internal", down, "--pin-digest")
    assert (code, err) == (0, "")
    assert (repo / "chart/values.yaml").read_text() == (
        values.replace(up, down, 1).replace(app, f"mirror/{up.replace(':', '__')}/{app}", 1)
        .replace('digest: ""', f'digest: "{image.digest}"').replace("digest: ''", f"digest: '{image.digest}'"))


@pytest.mark.parametrize("digest", ["digest:", "digest: ~"])
def test_a_helm_entry_with_a_null_digest_key_is_left_for_a_human(loopback: Loopback, tmp_path: Path, capsys,
                                                                 monkeypatch, digest: str) -> None:
    """A null digest is not an empty string: filled, it would change type; a second `digest:` key would
    duplicate it. The file stays, saying how to write the key."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down, app, _, dest = _copied_app(loopback, capsys)
    values = f'image:\n  registry: {up}\n  repository: {app}\n  tag: "1.0"\n  {digest}\n'
    repo = write_tree(tmp_path / "repo", {"chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\n",
                                          "chart/values.yaml": values})
    code, out, err = run_cli(capsys, "rewrite", str(repo), "--to", dest, "--internal", down, "--pin-digest")
    assert (code, out, err) == (1, "0 files rewritten, 0 references moved\nleft untouched: chart/values.yaml: "
                                   'line 1: the digest at line 5 is null, not an empty string: write it digest: "" '
                                   "or add the digest by hand\n", "")
    assert (repo / "chart/values.yaml").read_text() == values


def test_an_image_a_kustomize_entry_applies_to_is_not_pinned(loopback: Loopback, tmp_path: Path, capsys,
                                                              monkeypatch) -> None:
    """The entry gives the image its own name (here another image's, keeping the tag), tag or digest:
    the digest of the image the manifest names would not be the one deployed."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = loopback.upstream.host, loopback.target.host
    app, tool = unique_repo("pin-app"), unique_repo("pin-tool")
    images.push(up, app, images.image((1024,)), "1.0")
    images.push(up, tool, images.image((512,)), "1.0")
    dest = f"{down}/mirror"
    mirror = f"{dest}/{up.replace(':', '__')}"
    for repo_name in (app, tool):
        assert run_cli(capsys, "copy", f"{up}/{repo_name}:1.0", f"{mirror}/{repo_name}:1.0")[0] == 0
    kustomization = f"resources: [pod.yaml]\nimages:\n- name: {up}/{app}\n  newName: {up}/{tool}\n"
    pod = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - image: {up}/{app}:1.0\n"
    repo = write_tree(tmp_path / "repo", {"kustomization.yaml": kustomization, "pod.yaml": pod})
    code, _, err = run_cli(capsys, "rewrite", str(repo), "--to", dest, "--internal", down, "--pin-digest")
    assert (code, err) == (0, "")
    assert (repo / "pod.yaml").read_text() == pod.replace(f"{up}/{app}", f"{mirror}/{app}")
    assert (repo / "kustomization.yaml").read_text() == kustomization.replace(
        f"{up}/{app}", f"{mirror}/{app}").replace(f"{up}/{tool}", f"{mirror}/{tool}")


def test_a_gitlab_image_named_by_a_variable_is_pinned_at_the_variables_value(loopback: Loopback, tmp_path: Path,
                                                                             capsys, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down, app, image, dest = _copied_app(loopback, capsys)
    copy = f"{dest}/{up.replace(':', '__')}/{app}:1.0"
    before = f"variables:\n  APP: {up}/{app}:1.0\njob:\n  image: $APP\n  script: [x]\n"
    repo = write_tree(tmp_path / "repo", {".gitlab-ci.yml": before})
    code, _, err = run_cli(capsys, "rewrite", str(repo), "--to", dest, "--internal", down, "--pin-digest")
    assert (code, err) == (0, "")
    assert (repo / ".gitlab-ci.yml").read_text() == before.replace(f"{up}/{app}:1.0", f"{copy}@{image.digest}")
