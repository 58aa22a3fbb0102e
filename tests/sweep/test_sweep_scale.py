"""Scale-out: a sweep killed halfway resumes from its state; shards cover the org exactly once and
their reports merge into the single run's report; the shared mirror step; the progress bar."""
from __future__ import annotations

import collections
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from bot.mirror import MirrorImage, MirrorOptions
from bot.sweep.mirrorcache import SharedMirror
from bot.sweep.progress import SweepProgress
from bot.sweep.report import RepoEntry
from bot.sweep.select import shard_of
from tests.helpers import run_cli
from tests.oci import images
from tests.sweep.conftest import ORG, OVERLAPPING_MOVES, TOKEN_ENV, GatedMirrorStep, Org
from tests.sweep.test_report import images_table
from tests.sweep.test_sweep import ACCEPT, BRANCH, state_lines, sweep

ROOT = Path(__file__).resolve().parent.parent.parent
GOOD = ("acme/svc-api", "acme/svc-docs", "acme/svc-jobs", "acme/svc-web")


def test_a_sweep_killed_halfway_resumes_and_finishes_each_repository_once(org: Org, tmp_path) -> None:
    state = tmp_path / "state.jsonl"
    # Each repository's API calls are slowed, so the kill lands while the sweep is going on.
    org.github.delays.append(("GET", r"^/repos/acme/svc-[a-z]+(/pulls)?$", 0.4))
    argv = [sys.executable, "-m", "bot", "sweep", "--org", ORG, "--to", org.destination, "--github-url",
            org.github.base_url, "--token-env", TOKEN_ENV, "--repo-include", "^acme/svc-(api|docs|jobs|web)$",
            "--jobs", "1", "--state", str(state), "--no-progress"]
    marker = f"REHOME_TEST_SWEEP={uuid.uuid4()}"  # in the environment of every process the sweep starts
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REHOME_TEST_SWEEP": marker.split("=", 1)[1], "TMPDIR": str(temp)}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if state.exists() and state.read_text().count("\n") >= 1:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the sweep ended before it could be killed"
        running = _processes_with(marker)
        assert process.pid in running and len(running) > 1  # the sweep and its worker (at least)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    first = state_lines(state)
    assert 1 <= len(first) < len(GOOD)
    # Its worker finishes (or fails) the repository it had, and starts no other; then every process
    # of the killed sweep is gone.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _processes_with(marker):
        time.sleep(0.1)
    assert _processes_with(marker) == []
    assert list(temp.glob("rehome-*")) == []  # the last worker out removed the sweep's temporary folder
    started = {r.path.split("/")[3] for r in org.github.requests if r.path.startswith("/repos/acme/")}
    assert started <= {name.split("/")[1] for name in GOOD[:len(first) + 1]}
    org.github.delays.clear()
    # The rerun, with the same state, as a real process too.
    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    lines = state_lines(state)
    finished = sorted((line["repo"], line["status"]) for line in lines)
    assert finished == [("acme/svc-api", "done"), ("acme/svc-docs", "nothing-to-do"), ("acme/svc-jobs", "done"),
                        ("acme/svc-web", "done")]  # each repository journaled exactly once
    assert lines[:len(first)] == first
    assert {name: len(org.pulls(name)) for name in GOOD} == {
        "acme/svc-api": 1, "acme/svc-docs": 0, "acme/svc-jobs": 1, "acme/svc-web": 1}
    assert rerun.stderr.count("already done at this commit; skipped") == len(first)


def _processes_with(marker: str) -> list[int]:
    """The live processes whose environment holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # gone, or not ours to read
                continue
    return found


def test_shards_cover_the_org_once_and_their_reports_merge_into_the_single_run(org: Org, capsys, tmp_path) -> None:
    whole = tmp_path / "whole"
    code, single, err = sweep(capsys, org, "--inventory", "--report", str(whole), "--jobs", "4")
    assert code == 1, err  # svc-broken
    everyone = [r["repo"] for r in single["repositories"]]
    assert len(everyone) == len(org.remotes) + 52
    shards: list[list[str]] = []
    for k in range(3):
        code, result, err = sweep(capsys, org, "--inventory", "--shard", f"{k}/3", "--report",
                                  str(tmp_path / f"shard-{k}"), "--jobs", "4")
        shards.append([r["repo"] for r in result["repositories"]])
        others = {entry["reason"] for entry in result["left_out"] if entry["reason"].startswith("in shard")}
        assert others == {f"in shard {j}/3" for j in range(3) if j != k}
    assert all(shards)
    assert sorted(sum(shards, [])) == sorted(everyone)  # together the whole set, none twice
    merged = tmp_path / "merged"
    code, out, err = run_cli(capsys, "report", "merge", str(merged), *(str(tmp_path / f"shard-{k}") for k in range(3)))
    assert code == 0, err
    for name in ("report.json", "report.md", "report.csv", "images.csv"):
        assert (merged / name).read_text() == (whole / name).read_text()
    shard = tmp_path / "shard-0"
    assert run_cli(capsys, "report", "merge", str(tmp_path / "twice"), str(shard), str(shard / "report.json")) == (
        2, "", f"rehome: error: report merge: {shard} and {shard}/report.json are the same report "
               f"({shard}/report.json); nothing was written\nhint: give each shard's report once\n")


MAPPED = "^acme/m-[ac]$"


def _add_mapped_repositories(org: Org) -> dict[str, str]:
    """acme/m-a moves nginx where the sweep's mapping says, acme/m-c where its own rehome.yaml's
    does: one image, two targets, each repository's by name. They fall in different shards of 2."""
    nginx = org.image("nginx")
    org.add_repository("m-a", {"Dockerfile": f"FROM {nginx}\n"})
    org.add_repository("m-c", {"Dockerfile": f"FROM {nginx}\n",
                               "rehome.yaml": 'mapping: "{destination}/flat/{path}"\n'})
    assert shard_of("acme/m-a", 2) != shard_of("acme/m-c", 2)
    return {"acme/m-a": org.target("nginx"), "acme/m-c": f"{org.destination}/flat/{org.prefix}/nginx:1.27"}


def _mapped_sweep(capsys, org: Org, folder: Path, *extra: str, shards: int) -> None:
    """A sweep over acme/m-a and acme/m-c reporting into `folder`: at once, or in `shards` merged there."""
    if shards == 1:
        code, _, err = sweep(capsys, org, "--repo-include", MAPPED, "--report", str(folder), *extra)
        assert code == 0, err
        return
    parts = [folder.with_name(f"{folder.name}-{k}") for k in range(shards)]
    for k, part in enumerate(parts):
        code, _, err = sweep(capsys, org, "--repo-include", MAPPED, "--shard", f"{k}/{shards}", "--report", str(part),
                             *extra)
        assert code == 0, err
    code, _, err = run_cli(capsys, "report", "merge", str(folder), *map(str, parts))
    assert code == 0, err


def _mapped_report(org: Org, targets: dict[str, str], mode: str, image_status: str | None) -> dict:
    """The report of a sweep over acme/m-a and acme/m-c: nginx once per target, each with its repository."""
    status = "scanned" if mode == "inventory" else "done"
    return {
        "version": 1, "mode": mode, "destination": org.destination, "interrupted": False, "not_reached": 0,
        "totals": {"repositories": 2, "done": 0, "partial": 0, "nothing-to-do": 0, "declined": 0, "scanned": 0,
                   "failed": 0, status: 2, "third_party": 2, "internal": 0, "unresolved": 0, "images": 1},
        "repositories": [{"repo": name, "status": status,
                          "pr_url": None if mode == "inventory" else f"{org.github.origin}/{name}/pull/1",
                          "head": org.remote_git(name, "rev-parse", "main"), "error": None, "third_party": 1,
                          "internal": 0, "unresolved": 0} for name in sorted(targets)],
        "images": [{"image": org.image("nginx"), "target": target, "pulls": None, "status": image_status,
                    "repositories": [{"repo": name, "files": ["Dockerfile"]}]}
                   for name, target in sorted(targets.items(), key=lambda item: item[1])]}


def _mapped_images_table(org: Org, targets: dict[str, str], image_status: str | None) -> str:
    rows = [f"| `{org.image('nginx')}` | — | 1 | {image_status or ''} | `{target}` |"
            for target in sorted(targets.values())]
    return "\n".join(["| image | pulls | repositories | status | target |", "|---|---:|---:|---|---|", *rows])


def test_an_inventory_lists_an_image_once_per_target_and_its_shards_merge_into_it(org: Org, capsys, tmp_path) -> None:
    targets = _add_mapped_repositories(org)
    _mapped_sweep(capsys, org, tmp_path / "whole", "--inventory", shards=1)
    _mapped_sweep(capsys, org, tmp_path / "merged", "--inventory", shards=2)
    assert json.loads((tmp_path / "whole" / "report.json").read_text()) == _mapped_report(
        org, targets, "inventory", None)
    assert images_table((tmp_path / "whole" / "report.md").read_text()) == _mapped_images_table(org, targets, None)
    for name in ("report.json", "report.md", "report.csv", "images.csv"):
        assert (tmp_path / "merged" / name).read_text() == (tmp_path / "whole" / name).read_text()


# A real sweep copies, so each form runs in an org of its own whose images are not in the mirror yet;
# both forms write the same report.
@pytest.mark.parametrize("shards", [1, 2])
def test_a_sweep_copies_an_image_once_to_each_target_and_reports_each_with_its_repository(
        org: Org, capsys, tmp_path, ensured, shards: int) -> None:
    targets = _add_mapped_repositories(org)
    _mapped_sweep(capsys, org, tmp_path / "report", shards=shards)
    assert json.loads((tmp_path / "report" / "report.json").read_text()) == _mapped_report(
        org, targets, "sweep", "copied")
    assert images_table((tmp_path / "report" / "report.md").read_text()) == _mapped_images_table(
        org, targets, "copied")
    assert collections.Counter(ensured) == {(org.image("nginx"), target): 1 for target in targets.values()}
    for name, target in targets.items():
        assert org.remote_git(name, "show", f"{BRANCH}:Dockerfile") == f"FROM {target}"
        host, rest = target.split("/", 1)
        path, tag = rest.rsplit(":", 1)
        assert httpx.head(f"http://{host}/v2/{path}/manifests/{tag}", headers={"Accept": ACCEPT}).status_code == 200


def test_the_shared_mirror_step_ensures_each_image_once_even_when_asked_at_the_same_time() -> None:
    ensure = GatedMirrorStep(timeout=5)
    shared = SharedMirror(ensure)
    results: dict[str, list[MirrorImage]] = {}
    moves = OVERLAPPING_MOVES
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, shared(moves[n], MirrorOptions(),
                                                                                 pulls={"a": 5})))
               for n in moves]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    ensure.gate.set()
    for thread in threads:
        thread.join(10)
    assert sorted(move for call in ensure.calls for move in call) == [("a", "m/a"), ("b", "m/b"), ("c", "m/c")]
    assert {n: [(i.source, i.pulls) for i in r] for n, r in results.items()} == {
        "one": [("a", 5), ("b", None)], "two": [("b", None), ("c", None)], "three": [("a", 5)]}
    assert [i.source for i in shared.images] == ["a", "b", "c"]


def test_a_source_another_already_sends_to_its_target_fails_naming_both_and_is_not_asked_for() -> None:
    ensure = GatedMirrorStep(timeout=0)
    shared = SharedMirror(ensure)
    assert [(i.source, i.status) for i in shared([("a", "m/x"), ("b", "m/b")], MirrorOptions(), repo="acme/one")] == [
        ("a", "copied"), ("b", "copied")]
    [kept, clash] = shared([("c", "m/x"), ("b", "m/b")], MirrorOptions(), pulls={"c": 7}, repo="acme/two")
    assert (clash, kept.source) == (MirrorImage(
        "c", "m/x", None, (), "failed", 0, 7, "the mappings give c and a (moved by acme/one) one mirror name, m/x; "
        "change one of the mappings to keep them apart"), "b")
    assert ensure.calls == [[("a", "m/x"), ("b", "m/b")]]
    assert [(i.source, i.target) for i in shared.images] == [("a", "m/x"), ("b", "m/b")]


def test_a_target_is_claimed_by_the_tag_its_copy_writes_and_a_source_by_its_name_and_tag_however_spelt() -> None:
    """`redis` is `redis:latest` (the same image, and the same mirror tag); a target host in another case is
    the same host; a copy by digest alone writes no tag, so overwrites nothing; a digest pinning a tag
    is that tag's image, left to the copy's own check."""
    pinned = "sha256:" + "b" * 64
    moves = {"acme/one": [("docker.io/library/redis", "m.example/m/redis"),
                          ("quay.io/x/app", "m.example/m/x/app"),
                          ("quay.io/x/web:1", "M.Example/m/x/web:1"),
                          (f"quay.io/x/db@{pinned}", f"m.example/m/x/db@{pinned}"),
                          ("docker.io/library/nginx:1.27", "m.example/m/nginx:1.27")],
             "acme/two": [("docker.io/library/redis:latest", "m.example/m/redis:latest"),
                          ("docker.io/x/app:latest", "m.example/m/x/app:latest"),
                          ("docker.io/x/web:1", "m.example/m/x/web:1"),
                          (f"docker.io/x/db@{pinned}", f"m.example/m/x/db@{pinned}"),
                          (f"docker.io/library/nginx:1.27@{pinned}", f"m.example/m/nginx:1.27@{pinned}")]}
    shared = SharedMirror(GatedMirrorStep(timeout=0))
    [found] = [[(i.source, i.status, i.error) for i in shared(moves[repo], MirrorOptions(), repo=repo)]
               for repo in moves][1:]
    assert found == [
        (f"docker.io/library/nginx:1.27@{pinned}", "copied", None),
        ("docker.io/library/redis:latest", "copied", None),
        ("docker.io/x/app:latest", "failed", "the mappings give docker.io/x/app:latest and quay.io/x/app (moved by "
         "acme/one) one mirror name, m.example/m/x/app:latest; change one of the mappings to keep them apart"),
        (f"docker.io/x/db@{pinned}", "copied", None),
        ("docker.io/x/web:1", "failed", "the mappings give docker.io/x/web:1 and quay.io/x/web:1 (moved by acme/one) "
         "one mirror name, m.example/m/x/web:1; change one of the mappings to keep them apart")]


def test_two_repositories_whose_mappings_send_two_images_to_one_target_copy_only_the_first(
        org: Org, capsys, tmp_path, loopback, ensured) -> None:
    """acme/m-a moves q/PREFIX/nginx:1.27 to x/q/PREFIX/nginx:1.27; acme/m-b's mapping sends PREFIX/nginx:1.27,
    another image, there too: that one stays, and the rest of acme/m-b moves."""
    other = f"{org.upstream}/q/{org.prefix}/nginx:1.27"
    images.push(org.upstream, f"q/{org.prefix}/nginx", images.image((64,)), "1.27")
    org.add_repository("m-a", {"Dockerfile": f"FROM {other}\n", "rehome.yaml": 'mapping: "{destination}/x/{path}"\n'})
    org.add_repository("m-b", {"Dockerfile": f"FROM {org.image('nginx')}\n",
                               "compose.yaml": f"services:\n  cache:\n    image: {org.image('redis')}\n",
                               "rehome.yaml": 'mapping: "{destination}/x/q/{path}"\n'})
    reports = tmp_path / "reports"
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/m-[ab]$", "--jobs", "1", "--report", str(reports))
    assert code == 1, err
    target = f"{org.destination}/x/q/{org.prefix}/nginx:1.27"
    redis = f"{org.destination}/x/q/{org.prefix}/redis:7.4"
    error = (f"{org.image('nginx')} not moved (failed: the mappings give {org.image('nginx')} and {other} (moved by "
             f"acme/m-a) one mirror name, {target}; change one of the mappings to keep them apart)")
    url = f"{org.github.origin}/acme/m-b/pull/1"
    assert [(r["repo"], r["status"], r["error"]) for r in result["repositories"]] == [
        ("acme/m-a", "done", None), ("acme/m-b", "partial", error)]
    assert [(i["image"], i["target"], i["status"]) for i in result["images"]] == [
        (other, target, "copied"), (org.image("nginx"), target, "failed"), (org.image("redis"), redis, "copied")]
    assert collections.Counter(ensured) == {(other, target): 1, (org.image("redis"), redis): 1}
    assert org.remote_git("acme/m-b", "show", f"{BRANCH}:Dockerfile") == f"FROM {org.image('nginx')}"
    assert json.loads((reports / "report.json").read_text()) == {k: v for k, v in result.items() if k != "left_out"}
    head = org.remote_git("acme/m-b", "rev-parse", "main")
    assert f'acme/m-b,partial,{url},{head},2,0,0,"{error}"\n' in (reports / "report.csv").read_text()
    assert f"`acme/m-b` | partial | <{url}> | 2 |" in (reports / "report.md").read_text()


def test_the_progress_bar_shows_done_failed_and_remaining() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with SweepProgress(3, bar=True, console=console) as progress:
        progress.started("acme/a")
        progress.done(RepoEntry("acme/a", "done", "https://github.com/acme/a/pull/1"))
        progress.started("acme/b")
        progress.done(RepoEntry("acme/b", "failed", error="git clone failed: [red]x[/red]"))
        progress.started("acme/c")
    text = out.getvalue()
    assert "done 1 · failed 1 · left 1" in text and "acme/c" in text
    assert "acme/b: failed: git clone failed: [red]x[/red]" in text  # repository text is not markup
