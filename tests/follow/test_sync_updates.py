"""`rehome sync` and `rehome updates` against real loopback registries."""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path

import pytest

from bot import follow
from bot.cli import build_parser
from bot.commands.sync import summary
from bot.follow import MirrorUse, newer_tags
from bot.imageref import parse
from bot.mirror import Interrupted, MirrorImage, MirrorOptions, short_digest
from bot.registry import Copier
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP, logged, run_cli, write_tree
from tests.oci import images
from tests.oci.fixtures import FAST_RETRY, Loopback, stuck_download, unique_repo, when_downloading
from tests.oci.proxy import Fault
from tests.oci.servers import free_port


def _pod(*refs: str) -> str:
    containers = "".join(f"    - image: {r}\n" for r in refs)
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{containers}"


def _copy_to_mirror(capsys, up: str, dest: str, repo: str, tag: str) -> None:
    """`up/repo:tag`, copied to its name under the mirror `dest`."""
    assert run_cli(capsys, "copy", f"{up}/{repo}:{tag}", f"{dest}/{up.replace(':', '__')}/{repo}:{tag}")[0] == 0


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
    _copy_to_mirror(capsys, up, dest, held, "1.0")
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


def _not_from_a_fork(monkeypatch) -> None:
    for name in ("GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH"):
        monkeypatch.delenv(name, raising=False)


def test_sync_reports_a_tag_moved_upstream_without_failing_and_refresh_copies_it(
        loopback: Loopback, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    _not_from_a_fork(monkeypatch)
    up, down = loopback.upstream.host, loopback.target.host
    dest, enc, repo = f"{down}/mirror", up.replace(":", "__"), unique_repo("s-moving")
    first, moved_to = images.image((64,)), images.image((72,))
    images.push(up, repo, first, "1.0")
    images.push(up, repo, first, "stable")
    for tag in ("1.0", "stable"):
        _copy_to_mirror(capsys, up, dest, repo, tag)
    images.push(up, repo, moved_to, "stable")
    tree = write_tree(tmp_path / "repo", {"pod.yaml": _pod(f"{dest}/{enc}/{repo}:1.0", f"{dest}/{enc}/{repo}:stable")})
    code, out, _ = run_cli(capsys, "sync", str(tree), "--to", dest)
    assert code == 0  # the mirror holds every tag the tree names
    held, upstream = short_digest(first.digest), short_digest(moved_to.digest)
    assert [" ".join(line.split()) for line in out.splitlines() if not line.startswith("---")] == [
        "STATUS SOURCE TARGET DIGEST PLATFORMS SENT PULLS",
        f"present {up}/{repo}:1.0 {dest}/{enc}/{repo}:1.0 {held} linux/amd64 0 B",
        f"differs {up}/{repo}:stable {dest}/{enc}/{repo}:stable {held} (upstream {upstream}) 0 B",
        f"differs: {up}/{repo}:stable: {dest}/{enc}/{repo}:stable holds {first.digest}; the source is now "
        f"{moved_to.digest} (left alone; --refresh replaces it)",
        "0 copied, 1 already in the mirror, 1 moved upstream (the mirror keeps its copy; --refresh copies the new "
        "image), 0 refused",
    ]
    code, out, _ = run_cli(capsys, "sync", str(tree), "--to", dest, "--refresh", "--format", "json")
    assert (code, [(i["status"], i["digest"]) for i in json.loads(out)["images"]]) == (
        0, [("present", first.digest), ("copied", moved_to.digest)])


def test_sync_fails_a_digest_pin_the_mirror_does_not_serve_where_its_tag_holds_another_image(
        loopback: Loopback, tmp_path: Path, capsys, monkeypatch):
    # A digest bump of `stable@sha256:…` once the tag moved upstream: pulls go by the digest, not the tag.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    _not_from_a_fork(monkeypatch)
    up, down = loopback.upstream.host, loopback.target.host
    dest, enc, repo = f"{down}/mirror", up.replace(":", "__"), unique_repo("s-pinned")
    first, moved_to, edge = images.image((64,)), images.image((80,)), images.image((96,))
    for image, tag in ((first, "stable"), (edge, "edge")):
        images.push(up, repo, image, tag)
        _copy_to_mirror(capsys, up, dest, repo, tag)
    images.push(up, repo, moved_to, "stable")
    # The mirror serves the first image (as `stable`): a pull of `edge` pinned to it works.
    pins = f"{dest}/{enc}/{repo}:stable@{moved_to.digest}", f"{dest}/{enc}/{repo}:edge@{first.digest}"
    tree = write_tree(tmp_path / "repo", {"pod.yaml": _pod(*pins)})
    for extra in ((), ("--dry-run",)):
        code, out, _ = run_cli(capsys, "sync", str(tree), "--to", dest, "--format", "json", *extra)
        found = [(i["target"], i["status"], i["error"]) for i in json.loads(out)["images"]]
        assert (code, found) == (1, [
            (pins[1], "differs", f"{dest}/{enc}/{repo}:edge holds {edge.digest}; the source is now {first.digest} "
                                 "(left alone; --refresh replaces it)"),
            (pins[0], "failed", f"{dest}/{enc}/{repo}: check the pinned digest: the mirror does not serve "
                                f"{moved_to.digest}, the digest {pins[0]} pins (its tag stable holds {first.digest}), "
                                f"so pulling it fails (--refresh copies it over the tag)"),
        ])
    code, out, _ = run_cli(capsys, "sync", str(tree), "--to", dest, "--format", "json", "--refresh")
    assert (code, [i["status"] for i in json.loads(out)["images"]]) == (0, ["copied", "copied"])


def test_the_summary_counts_every_status_that_occurred() -> None:
    found = [MirrorImage(f"a.example/x:{status}", f"m.example/x:{status}", None, (), status, 0, None, None)
             for status in ("missing", "unknown", "unknown", "failed")]
    refused = [follow.Refused("m.example/y:1", "not listed")]
    assert summary(found, refused) == "0 copied, 0 already in the mirror, 1 to copy, 2 not checked, 1 failed, 1 refused"


def test_ctrl_c_during_sync_prints_what_was_done(proxies: Loopback, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    _not_from_a_fork(monkeypatch)
    stuck, _, _ = stuck_download(proxies)
    stuck_layer = proxies.upstream_proxy.faults[-1].path
    quick, proxy = unique_repo("s-quick"), proxies.upstream_proxy.host
    images.push(proxies.upstream.host, quick, images.image((100,)), "v1")
    dest, enc = f"{proxies.target.host}/mirror", proxy.replace(":", "__")
    quick_mirror, stuck_mirror = f"{dest}/{enc}/{quick}:v1", f"{dest}/{enc}/{stuck.split('/', 1)[1]}"
    tree = write_tree(tmp_path / "repo", {
        "pod.yaml": _pod(stuck_mirror, quick_mirror),
        "rehome.yaml": f"destination: {dest}\nsync_upstreams: ['{proxy}']\n",
    })
    # Ctrl-C once s-quick is copied and the other one's layer is stuck (both images are under way at once).
    quick_copied, ensure = threading.Event(), Copier.ensure

    def noting_the_quick_one(copier: Copier, source: str, target: str) -> object:
        result = ensure(copier, source, target)
        if target == quick_mirror:
            quick_copied.set()
        return result

    monkeypatch.setattr(Copier, "ensure", noting_the_quick_one)
    argv = ["sync", str(tree), "--jobs", "2", "--format", "json"]  # a blob copy for each: the stuck one holds one
    args = build_parser(argv).parse_args(argv)
    when_downloading(proxies, lambda: quick_copied.wait(30) and os.kill(os.getpid(), signal.SIGINT), stuck_layer)
    with pytest.raises(Interrupted):  # which the CLI says, exiting 130
        args.run(args)
    result = json.loads(capsys.readouterr().out)
    assert [(i["target"], i["status"]) for i in result["images"]] == [(quick_mirror, "copied"), (stuck_mirror, "failed")]
    assert result["images"][1]["error"].endswith("interrupted before it finished")
    assert result["refused"] == []


def test_sync_asks_a_mirror_that_gave_no_answer_once(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    dead = f"127.0.0.1:{free_port()}"
    uses = [MirrorUse(parse(f"{dead}/m/up.example/{name}"), parse(f"up.example/{name}"), ())
            for name in ("lib/app:1", "lib/app:2", "lib/other:1")]
    with logged(logging.INFO) as messages:
        found, refused = follow.sync(uses, MirrorOptions(retry=FAST_RETRY, destination=dead), ())
    failure = f"list tags: connection failed after {FAST_RETRY.tries} tries (ConnectError: [Errno 111] Connection refused)"
    app, other = f"{dead}/m/up.example/lib/app", f"{dead}/m/up.example/lib/other"
    assert (found, refused) == ([], [
        follow.Refused(f"{app}:1", f"cannot tell whether the mirror holds {app}: {app}: {failure}"),
        follow.Refused(f"{app}:2", f"cannot tell whether the mirror holds {app}: {app}: {failure}"),
        follow.Refused(f"{other}:1", f"cannot tell whether the mirror holds {other}: {other}: list tags: not asked: "
                                     f"the registry gave no answer earlier in this run: {failure.split(': ', 1)[1]}"),
    ])
    assert len(messages) == FAST_RETRY.tries - 1


def test_updates_ask_an_upstream_gone_silent_once(proxies: Loopback, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = proxies.upstream_proxy.host, proxies.target.host
    app, other = unique_repo("u-silent"), unique_repo("u-silent")
    for repo in (app, other):
        images.push(proxies.upstream.host, repo, images.image((16,)), "1.0.0")
    proxies.upstream_proxy.faults.append(Fault("GET", "/tags/list", "hang", times=99))
    uses = [MirrorUse(parse(f"{down}/m/{name}"), parse(f"{up}/{name}"), ())
            for name in (f"{app}:1.0.0", f"{app}:1.0.1", f"{other}:1.0.0")]
    found = follow.updates(uses, MirrorOptions(retry=FAST_RETRY, timeout=1.0, destination=down))
    failure = "no answer within the timeout after 2 tries (ReadTimeout: timed out)"  # a timeout gets one more try
    assert [u.error for u in found] == [
        f"{up}/{app}: list tags: {failure}",
        f"{up}/{app}: list tags: {failure}",
        f"{up}/{other}: list tags: not asked: the registry gave no answer earlier in this run: {failure}",
    ]
    assert proxies.upstream_proxy.count("GET", "/tags/list") == 2


def test_sync_and_updates_say_when_no_reference_points_into_the_mirror(tmp_path: Path, capsys, monkeypatch):
    _not_from_a_fork(monkeypatch)
    tree = write_tree(tmp_path, {"Dockerfile": "FROM nginx:1\n"})
    said = f"no reference in {tree} points into 127.0.0.1:1/mirror\n"
    assert run_cli(capsys, "sync", str(tree), "--to", "127.0.0.1:1/mirror") == (
        0, "0 copied, 0 already in the mirror, 0 refused\n", said)
    assert run_cli(capsys, "updates", str(tree), "--to", "127.0.0.1:1/mirror") == (0, "", said)


def test_sync_never_runs_for_a_pull_request_from_a_fork(tmp_path: Path, capsys, monkeypatch):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"repo": {"full_name": "mallory/shop"}},
                                                  "base": {"repo": {"full_name": "acme/shop"}}}}))
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    write_tree(tmp_path / "repo", {"pod.yaml": _pod("127.0.0.1:1/mirror/docker.io/library/nginx:1")})
    assert run_cli(capsys, "sync", str(tmp_path / "repo"), "--to", "127.0.0.1:1/mirror") == (
        0, "rehome sync does not run for pull requests from forks: the mirror is left as it is\n", "")


@pytest.mark.parametrize(("event", "warning"), [
    pytest.param(DEEP_JSON, f"{{path}}: cannot read the GitHub event: {NESTED_TOO_DEEP}; taken for a pull request "
                            "from a fork\n", id="nested-too-deep"),
    ('{"pull_request": ["acme/shop"]}', ""),
])
def test_sync_takes_a_pull_request_it_cannot_inspect_for_one_from_a_fork(tmp_path: Path, capsys, monkeypatch,
                                                                         event: str, warning: str):
    path = tmp_path / "event.json"
    path.write_text(event)
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
    write_tree(tmp_path / "repo", {"pod.yaml": _pod("127.0.0.1:1/mirror/docker.io/library/nginx:1")})
    assert run_cli(capsys, "sync", str(tmp_path / "repo"), "--to", "127.0.0.1:1/mirror") == (
        0, "rehome sync does not run for pull requests from forks: the mirror is left as it is\n",
        warning.format(path=path))


def test_updates_lists_newer_versions_and_moved_tags(loopback: Loopback, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = loopback.upstream.host, loopback.target.host
    dest, enc = f"{down}/mirror", up.replace(":", "__")
    versions, moving = unique_repo("u-versions"), unique_repo("u-moving")
    for tag in ("1.0.0", "1.0.1", "1.1.0", "2.0.0", "1.0.0-alpine", "1.2.0-alpine", "latest", "0.9.0"):
        images.push(up, versions, images.image((32,)), tag)
    images.push(up, moving, images.image((40,)), "stable")
    for tag in ("1.0.0", "1.0.0-alpine"):
        _copy_to_mirror(capsys, up, dest, versions, tag)
    _copy_to_mirror(capsys, up, dest, moving, "stable")
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
