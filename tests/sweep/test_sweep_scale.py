"""Scale-out: a sweep killed halfway resumes from its state; shards cover the org exactly once and
their reports merge into the single run's report; the shared mirror step; the progress bar."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from rich.console import Console

from bot.mirror import MirrorImage, MirrorOptions
from bot.sweep.mirrorcache import SharedMirror
from bot.sweep.progress import SweepProgress
from bot.sweep.report import RepoEntry
from tests.helpers import run_cli
from tests.sweep.conftest import ORG, OVERLAPPING_MOVES, TOKEN_ENV, GatedMirrorStep, Org
from tests.sweep.test_sweep import state_lines, sweep

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
    for name in ("report.json", "report.md", "report.csv"):
        assert (merged / name).read_text() == (whole / name).read_text()
    shard = tmp_path / "shard-0"
    assert run_cli(capsys, "report", "merge", str(tmp_path / "twice"), str(shard), str(shard / "report.json")) == (
        2, "", f"rehome: error: report merge: {shard} and {shard}/report.json are the same report "
               f"({shard}/report.json); nothing was written\nhint: give each shard's report once\n")


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
