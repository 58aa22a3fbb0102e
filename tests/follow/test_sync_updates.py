"""`rehome sync` and `rehome updates` against real loopback registries."""
from __future__ import annotations

import json
from pathlib import Path

from bot.follow import newer_tags
from tests.helpers import run_cli, write_tree
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo


def _pod(*refs: str) -> str:
    containers = "".join(f"    - image: {r}\n" for r in refs)
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{containers}"


def test_sync_copies_new_tags_of_mirrored_repositories_only(loopback: Loopback, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for name in ("GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH"):
        monkeypatch.delenv(name, raising=False)
    up, down = loopback.upstream.host, loopback.target.host
    dest, enc = f"{down}/mirror", up.replace(":", "__")
    held, stranger, listed = unique_repo("s-held"), unique_repo("s-stranger"), unique_repo("s-listed")
    one, two = images.image((256,)), images.image((300,))
    images.push(up, held, one, "1.0")
    images.push(up, held, two, "1.1")
    images.push(up, stranger, images.image((128,)), "5")
    images.push(up, listed, images.image((64,)), "2")
    assert run_cli(capsys, "copy", f"{up}/{held}:1.0", f"{dest}/{enc}/{held}:1.0")[0] == 0
    repo = write_tree(tmp_path / "repo", {
        "pod.yaml": _pod(*(f"{dest}/{enc}/{r}" for r in (f"{held}:1.0", f"{held}:1.1", f"{stranger}:5", f"{listed}:2"))),
        "rehome.yaml": f"destination: {dest}\nsync_upstreams: ['{up}/{listed}']\n",
    })
    code, out, _ = run_cli(capsys, "sync", str(repo), "--format", "json")
    result = json.loads(out)
    assert code == 1  # a reference was refused: a human decides
    assert [(i["source"], i["status"]) for i in result["images"]] == [
        (f"{up}/{held}:1.0", "present"),
        (f"{up}/{held}:1.1", "copied"),
        (f"{up}/{listed}:2", "copied"),
    ]
    assert result["images"][1]["digest"] == two.digest
    assert result["refused"] == [{
        "image": f"{dest}/{enc}/{stranger}:5",
        "reason": f"the mirror holds no copy of {up}/{stranger} yet and it is not listed under sync_upstreams",
    }]
    # Everything the tree allows is now there: a second sync copies nothing.
    code, out, _ = run_cli(capsys, "sync", str(repo), "--format", "json")
    assert [i["status"] for i in json.loads(out)["images"]] == ["present", "present", "present"]


def test_sync_never_runs_for_a_pull_request_from_a_fork(tmp_path: Path, capsys, monkeypatch):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"repo": {"full_name": "mallory/shop"}},
                                                  "base": {"repo": {"full_name": "acme/shop"}}}}))
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    write_tree(tmp_path / "repo", {"pod.yaml": _pod("127.0.0.1:1/mirror/docker.io/library/nginx:1")})
    assert run_cli(capsys, "sync", str(tmp_path / "repo"), "--to", "127.0.0.1:1/mirror") == (
        0, "rehome sync does not run for pull requests from forks: the mirror is left as it is\n", "")


def test_updates_lists_newer_versions_and_moved_tags(loopback: Loopback, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = loopback.upstream.host, loopback.target.host
    dest, enc = f"{down}/mirror", up.replace(":", "__")
    versions, moving = unique_repo("u-versions"), unique_repo("u-moving")
    for tag in ("1.0.0", "1.0.1", "1.1.0", "2.0.0", "1.0.0-alpine", "1.2.0-alpine", "latest", "0.9.0"):
        images.push(up, versions, images.image((32,)), tag)
    images.push(up, moving, images.image((40,)), "stable")
    for tag in ("1.0.0", "1.0.0-alpine"):
        assert run_cli(capsys, "copy", f"{up}/{versions}:{tag}", f"{dest}/{enc}/{versions}:{tag}")[0] == 0
    assert run_cli(capsys, "copy", f"{up}/{moving}:stable", f"{dest}/{enc}/{moving}:stable")[0] == 0
    moved_to = images.image((48,))
    images.push(up, moving, moved_to, "stable")
    repo = write_tree(tmp_path / "repo", {"pod.yaml": _pod(
        f"{dest}/{enc}/{versions}:1.0.0", f"{dest}/{enc}/{versions}:1.0.0-alpine", f"{dest}/{enc}/{moving}:stable")})
    code, out, _ = run_cli(capsys, "updates", str(repo), "--to", dest, "--format", "json")
    found = {i["image"]: (i["newer"], i["moved"], i["upstream_digest"] == moved_to.digest) for i in json.loads(out)["images"]}
    assert code == 0
    assert found == {
        f"{dest}/{enc}/{versions}:1.0.0": (["1.0.1", "1.1.0", "2.0.0"], False, False),
        f"{dest}/{enc}/{versions}:1.0.0-alpine": (["1.2.0-alpine"], False, False),
        f"{dest}/{enc}/{moving}:stable": ([], True, True),
    }


def test_updates_reports_an_upstream_repository_that_does_not_exist_as_an_error(loopback: Loopback, tmp_path: Path,
                                                                              capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = loopback.upstream.host, loopback.target.host
    dest, gone = f"{down}/mirror", unique_repo("u-gone")
    mirror_image = f"{dest}/{up.replace(':', '__')}/{gone}:1.0"
    repo = write_tree(tmp_path / "repo", {"pod.yaml": _pod(mirror_image)})
    code, out, err = run_cli(capsys, "updates", str(repo), "--to", dest, "--format", "json")
    error = f"{up}/{gone}: list tags: HTTP 404 (NAME_UNKNOWN: repository name not known to registry)"
    assert (code, err, json.loads(out)) == (1, "", {"version": 1, "refused": [], "images": [{
        "image": mirror_image, "upstream": f"{up}/{gone}:1.0", "tag": "1.0", "newer": [], "upstream_digest": None,
        "mirror_digest": None, "moved": False, "error": error}]})


def test_newer_tags_compare_versions_of_the_same_shape():
    tags = ["1.9", "1.10", "1.27.4", "1.27.5", "1.28.0", "1.27.5-alpine", "v1.28.0", "latest", "2.0.0-rc1", "1.27.10"]
    assert newer_tags("1.27.4", tags) == ["1.27.5", "1.27.10", "1.28.0"]
    assert newer_tags("1.9", tags) == ["1.10"]
    assert newer_tags("1.27.4-alpine", tags) == ["1.27.5-alpine"]
    assert newer_tags("latest", tags) == []
