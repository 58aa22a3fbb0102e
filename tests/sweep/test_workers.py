"""Repositories in worker processes: the objects of the whole sweep stay shared, a worker's death is
its repository's outcome, its log records reach this process, an interrupt lets running
repositories finish."""
from __future__ import annotations

import contextlib
import datetime
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO

import pytest

from bot.mirror import MirrorOptions
from bot.sweep.mirrorcache import SharedMirror
from bot.sweep.ratelimit import RateLimiter
from bot.sweep.report import RepoEntry
from bot.registry import Secret
from bot.sweep.access import TokenSource
from bot.sweep.shared import LimiterProxy, MirrorProxy, SharedObjects, TokensProxy
from bot.sweep.workers import START_METHOD
from tests.helpers import run_cli
from tests.sweep.conftest import ORG, OVERLAPPING_MOVES, TOKEN_ENV, GatedMirrorStep, Org
from tests.sweep.held import Held
from tests.sweep.test_sweep import state_lines, sweep

ROOT = Path(__file__).resolve().parent.parent.parent


def _ask(mirror: MirrorProxy, limiter: LimiterProxy, tokens: TokensProxy, moves: list[tuple[str, str]],
         out: Connection) -> None:
    """In a worker process: a token, two GitHub requests' worth of the limiter, then the mirror step."""
    token = tokens.current()
    limiter.before()
    limiter.before()
    images = mirror(moves, MirrorOptions(), pulls={"a": 5})
    out.send((token.reveal(), [(image.source, image.pulls) for image in images]))


def test_the_mirror_step_the_rate_limit_and_the_token_are_shared_by_worker_processes() -> None:
    ensure = GatedMirrorStep(timeout=10)
    slept: list[float] = []
    limiter = RateLimiter(reserve=2, clock=lambda: 1000.0, sleep=slept.append)
    limiter.observe(5, 1060)  # three requests to go before the reserve: the fourth of six waits, once
    mirror = SharedMirror(ensure)
    moves = OVERLAPPING_MOVES
    mp = multiprocessing.get_context(START_METHOD)
    with SharedObjects() as shared:
        proxies = (shared.share(mirror, MirrorProxy), shared.share(limiter, LimiterProxy),
                   shared.share(TokenSource(Secret("ghs_shared")), TokensProxy))
        pipes = {name: mp.Pipe(duplex=False) for name in moves}
        processes = [mp.Process(target=_ask, args=(*proxies, moves[name], pipes[name][1])) for name in moves]
        for process in processes:
            process.start()
        time.sleep(0.5)  # all three asking at once
        ensure.gate.set()
        results = {name: pipes[name][0].recv() for name in moves}
        for process in processes:
            process.join(10)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    assert sorted(move for call in ensure.calls for move in call) == [("a", "m/a"), ("b", "m/b"), ("c", "m/c")]
    assert results == {"one": ("ghs_shared", [("a", 5), ("b", None)]), "two": ("ghs_shared", [("b", None), ("c", None)]),
                       "three": ("ghs_shared", [("a", 5)])}
    assert mirror.calls == len(ensure.calls) and [i.source for i in mirror.images] == ["a", "b", "c"]
    assert slept == [61.0]  # one limiter for all: a copy in each process would never have waited


def test_a_worker_that_dies_fails_its_repository_and_the_sweep_goes_on(
        org: Org, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    org.github.delays.append(("GET", r"^/repos/acme/svc-api/pulls$", 1.0))  # svc-api's run is still going on
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    killed: list[int] = []
    clones: list[Path] = []

    def kill_the_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not clones:
            clones.extend(temp.glob("rehome-sweep-*/worker-1-*/rehome-clone-*/repo/.git"))
            time.sleep(0.01)
        workers = [p for p in multiprocessing.active_children() if p.name.startswith("rehome-sweep-worker")]
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-(api|web)$", "--jobs", "1")
    killer.join()
    assert len(killed) == 1  # --jobs 1: one worker
    assert code == 1
    assert [(r["repo"], r["status"], r["error"]) for r in result["repositories"]] == [
        ("acme/svc-api", "failed", "its worker process ended (killed by SIGKILL) before the repository was done; "
                                   "it runs again in the next sweep"),
        ("acme/svc-web", "done", None)]  # in a new worker
    assert len(org.pulls("acme/svc-web")) == 1 and org.pulls("acme/svc-api") == []
    # The clone the dead worker was working in was in the sweep's folder, and went with it.
    assert len(clones) == 1 and not clones[0].exists()
    assert list(temp.glob("rehome-*")) == []


@pytest.mark.parametrize("flag", ["-v", "-q"])
def test_worker_log_records_reach_this_process_at_its_level(org: Org, capsys, flag: str) -> None:
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--workers", "process", flag)
    assert code == 0, err
    # `git push` is run, and logged at debug level, only in the worker, named after its repository.
    pushes = [line for line in err.splitlines() if line.startswith("acme/svc-web: git push ")]
    assert len(pushes) == (1 if flag == "-v" else 0), err
    progress = [line for line in err.splitlines() if line.startswith("[1/1] ")]
    assert progress == ([f"[1/1] acme/svc-web: done: {org.github.origin}/acme/svc-web/pull/1"] if flag == "-v" else [])


def _started(org: Org) -> set[str]:
    return {r.path.split("/")[3] for r in list(org.github.requests) if r.path.startswith("/repos/acme/")}


@contextlib.contextmanager
def killed_in_the_end(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """The sweep's process, killed once the test is done with it (or failed), if it still runs."""
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def wait_until_started(org: Org, names: set[str]) -> None:
    """Once these repositories, and no other, have asked GitHub something (within a minute)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _started(org) != names:
        time.sleep(0.01)
    assert _started(org) == names


def sweep_process(org: Org, *args: str, stderr: IO[str] | int = subprocess.PIPE,
                  temp: Path | None = None, held: Held | None = None) -> subprocess.Popen[str]:
    """`rehome sweep` in a process group of its own: a Ctrl-C goes to the whole group, as a terminal's does.
    `temp`: where its temporary files go; `held`: where it waits for the test."""
    rehome = held.argv() if held is not None else [sys.executable, "-m", "bot"]
    argv = [*rehome, "sweep", "--org", ORG, "--to", org.destination, "--github-url",
            org.github.base_url, "--token-env", TOKEN_ENV, *args, "--no-progress", "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **({"TMPDIR": str(temp)} if temp else {})}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)


def wait_for_line(path: Path, start: str, writer: subprocess.Popen[str] | None = None) -> str:
    """The first line of the file that starts so, once there (within a minute, and while `writer` runs)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (writer is None or writer.poll() is None):
        found = [line for line in path.read_text().splitlines() if line.startswith(start)]
        if found:
            return found[0]
        time.sleep(0.05)
    ended = f" ({writer.args[:3]} ended with exit code {writer.returncode})" if writer is not None else ""
    raise AssertionError(f"no line starting {start!r} in {path}{ended}: {path.read_text()}")


def interrupted_report(org: Org, not_reached: int, totals: dict, repositories: list[dict], images: list[dict]) -> dict:
    """report.json of an interrupted sweep."""
    return {"version": 1, "mode": "sweep", "destination": org.destination, "interrupted": True,
            "not_reached": not_reached, "totals": totals, "repositories": repositories, "images": images}


def copied(org: Org, name: str, *uses: tuple[str, str]) -> dict:
    """An image's entry in a sweep's report: copied, used in each (repository, file)."""
    return {"image": org.image(name), "target": org.target(name), "pulls": None, "status": "copied",
            "repositories": [{"repo": repo, "files": [path]} for repo, path in uses]}


# SIGTERM to the whole group: as timeout(1), systemd stopping a unit or `kill -- -PGID` send it. As the
# fork server starts: while the fork server the worker processes come from starts, before it ignores them;
# as a new one starts: the first killed as it started (as by the OOM killer), the one started in its place.
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sigterm-to-the-group", "ctrl-c-as-the-fork-server-starts",
                                 "sigterm-to-the-group-as-the-fork-server-starts",
                                 "sigterm-to-the-group-as-a-new-fork-server-starts"])
def test_an_interrupted_sweep_starts_nothing_more_and_lets_running_repositories_finish(
        org: Org, capsys, tmp_path, how: str) -> None:
    state, reports = tmp_path / "state.jsonl", tmp_path / "reports"
    # Each repository's first question to GitHub waits until the signal is sent: both are surely running then.
    hold = threading.Event()
    org.github.gates.append(("GET", r"^/repos/acme/svc-[a-z]+(/pulls)?$", hold))
    which = ("--repo-include", "^acme/svc-(api|docs|jobs|web)$", "--jobs", "2", "--state", str(state))
    fork_server = Held(tmp_path / "held", "fork-server") if how.endswith("-fork-server-starts") else None
    process = sweep_process(org, *which, "--report", str(reports), held=fork_server)
    try:
        if fork_server is not None:  # both repositories handed out at once, each waiting for its worker
            first = fork_server.wait()
            if "-a-new-" in how:
                os.kill(first, signal.SIGKILL)
                fork_server.wait(other_than=first)
        else:
            wait_until_started(org, {"svc-api", "svc-docs"})
            assert not state.exists()
        if how == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:
            os.killpg(process.pid, signal.SIGINT if how.startswith("ctrl-c") else signal.SIGTERM)
        if fork_server is not None:
            fork_server.release()
        hold.set()
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, err
    assert ("SIGINT" if how.startswith("ctrl-c") else "SIGTERM") + ": starting no other repository; waiting" in err
    if fork_server is not None:
        assert len(fork_server.pids()) == (2 if "-a-new-" in how else 1)
    # The two running finished, pushed, opened their pull request, were journaled; no other started.
    assert sorted((line["repo"], line["status"]) for line in state_lines(state)) == [
        ("acme/svc-api", "done"), ("acme/svc-docs", "nothing-to-do")]
    assert len(org.pulls("acme/svc-api")) == 1
    assert _started(org) == {"svc-api", "svc-docs"}
    assert org.remote_git("acme/svc-jobs", "branch", "--list", "rehome/mirror-images") == ""
    assert err.rstrip().endswith("rehome: interrupted")
    # The reports: the two that finished, and that the sweep was interrupted before the other two.
    api, docs = (org.remote_git(name, "rev-parse", "main") for name in ("acme/svc-api", "acme/svc-docs"))
    pr_url = f"{org.github.origin}/acme/svc-api/pull/1"
    report = interrupted_report(
        org, 2, {"repositories": 2, "done": 1, "partial": 0, "nothing-to-do": 1, "declined": 0, "scanned": 0, "failed": 0,
                 "third_party": 2, "internal": 1, "unresolved": 1, "images": 2},
        [RepoEntry("acme/svc-api", "done", pr_url, api, None, 2, 0, 1).to_json(),
         RepoEntry("acme/svc-docs", "nothing-to-do", None, docs, None, 0, 1, 0).to_json()],
        [copied(org, "nginx", ("acme/svc-api", "Dockerfile")), copied(org, "redis", ("acme/svc-api", "compose.yaml"))])
    assert json.loads((reports / "report.json").read_text()) == report
    assert {k: v for k, v in json.loads(out).items() if k != "left_out"} == report
    assert (reports / "report.md").read_text() == f"""# rehome sweep

Destination: `{org.destination}`

Interrupted: the sweep was stopped before it finished; not reached, and not in this report: 2 repositories.

| repositories | done | nothing-to-do | images | third-party references | internal | unresolved |
|---:|---:|---:|---:|---:|---:|---:|
| 2 | 1 | 1 | 2 | 2 | 1 | 1 |

## Images

| image | pulls | repositories | status | target |
|---|---:|---:|---|---|
| `{org.image("nginx")}` | — | 1 | copied | `{org.target("nginx")}` |
| `{org.image("redis")}` | — | 1 | copied | `{org.target("redis")}` |

## Repositories

| repository | status | pull request | third-party | error |
|---|---|---|---:|---|
| `acme/svc-api` | done | <{pr_url}> | 2 |  |
| `acme/svc-docs` | nothing-to-do |  | 0 |  |
"""
    assert (reports / "report.csv").read_text() == (
        "repo,status,pr_url,head,third_party,internal,unresolved,error\n"
        f"acme/svc-api,done,{pr_url},{api},2,0,1,\n"
        f"acme/svc-docs,nothing-to-do,,{docs},0,1,0,\n")
    # `report merge` reads it back as it is.
    code, _, merge_err = run_cli(capsys, "report", "merge", str(tmp_path / "merged"), str(reports))
    assert code == 0, merge_err
    for name in ("report.json", "report.md", "report.csv"):
        assert (tmp_path / "merged" / name).read_text() == (reports / name).read_text()
    # The rerun with the same state skips the two finished and runs the two not reached: a whole report.
    org.github.delays.clear()
    code, again, err = sweep(capsys, org, *which, "--report", str(reports))
    assert code == 0, err
    assert (again["interrupted"], again["not_reached"]) == (False, 0)
    finished = [("acme/svc-api", "done"), ("acme/svc-docs", "nothing-to-do"), ("acme/svc-jobs", "done"),
                ("acme/svc-web", "done")]
    assert [(r["repo"], r["status"]) for r in again["repositories"]] == finished
    assert sorted((line["repo"], line["status"]) for line in state_lines(state)) == finished  # each journaled once
    assert "Interrupted" not in (reports / "report.md").read_text()


@pytest.mark.parametrize("when", ["as-it-starts", "while-repositories-run"])
def test_a_killed_fork_server_is_replaced_by_one_new_one_and_every_repository_runs_once(
        org: Org, tmp_path: Path, when: str) -> None:
    """Killed as the OOM killer would, while both repositories wait for their worker, or while both run
    in the workers it started (which run on): one new fork server starts; these two, then the next two,
    run once each, none failed for it."""
    hold = threading.Event()  # each repository's first question to GitHub waits for it
    org.github.gates.append(("GET", r"^/repos/acme/svc-[a-z]+(/pulls)?$", hold))
    state, held = tmp_path / "state.jsonl", Held(tmp_path / "held", "fork-server")
    with killed_in_the_end(sweep_process(org, "--repo-include", "^acme/svc-(api|docs|jobs|web)$", "--jobs", "2",
                                         "--state", str(state), held=held)) as process:
        first = held.wait()
        if when == "as-it-starts":
            os.kill(first, signal.SIGKILL)
            held.wait(other_than=first)
            held.release()
        else:
            held.release()
            wait_until_started(org, {"svc-api", "svc-docs"})
            os.kill(first, signal.SIGKILL)
        hold.set()
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert len(held.pids()) == 2  # the one killed and one new one
    names = ("acme/svc-api", "acme/svc-docs", "acme/svc-jobs", "acme/svc-web")
    api, docs, jobs, web = (org.remote_git(name, "rev-parse", "main") for name in names)
    pulls = {name: f"{org.github.origin}/{name}/pull/1" for name in names}
    # The whole of it, but for the order in which the repositories go (the progress counts them as they end).
    assert sorted(re.sub(r"^\[[1-4]/4\] ", "[-/4] ", line) for line in err.splitlines()) == sorted([
        "4 repositories to sweep, 59 left out",
        *(f"{name}: cloning file://{org.remotes[name]} (branch main)" for name in names),
        *(f"{name}: pushing rehome/mirror-images" for name in names if name != "acme/svc-docs"),
        *(f"{name}: opened {pulls[name]}" for name in names if name != "acme/svc-docs"),
        *(f"[-/4] {name}: done: {pulls[name]}" for name in names if name != "acme/svc-docs"),
        "[-/4] acme/svc-docs: nothing-to-do"]), err
    assert {k: v for k, v in json.loads(out).items() if k != "left_out"} == {
        "version": 1, "mode": "sweep", "destination": org.destination, "interrupted": False, "not_reached": 0,
        "totals": {"repositories": 4, "done": 3, "partial": 0, "nothing-to-do": 1, "declined": 0, "scanned": 0,
                   "failed": 0, "third_party": 6, "internal": 1, "unresolved": 1, "images": 3},
        "repositories": [RepoEntry("acme/svc-api", "done", pulls["acme/svc-api"], api, None, 2, 0, 1).to_json(),
                         RepoEntry("acme/svc-docs", "nothing-to-do", None, docs, None, 0, 1, 0).to_json(),
                         RepoEntry("acme/svc-jobs", "done", pulls["acme/svc-jobs"], jobs, None, 2, 0, 0).to_json(),
                         RepoEntry("acme/svc-web", "done", pulls["acme/svc-web"], web, None, 2, 0, 0).to_json()],
        "images": [copied(org, "app", ("acme/svc-jobs", "deploy/jobs.yaml"), ("acme/svc-web", "deploy/web.yaml")),
                   copied(org, "nginx", ("acme/svc-api", "Dockerfile"), ("acme/svc-web", "Dockerfile")),
                   copied(org, "redis", ("acme/svc-api", "compose.yaml"), ("acme/svc-jobs", "docker-compose.yml"))]}
    # Each journaled once; each pull request opened once.
    assert sorted((line["repo"], line["status"], line["error"]) for line in state_lines(state)) == [
        ("acme/svc-api", "done", None), ("acme/svc-docs", "nothing-to-do", None), ("acme/svc-jobs", "done", None),
        ("acme/svc-web", "done", None)]
    assert [len(org.pulls(name)) for name in names] == [1, 0, 1, 1]


def test_a_fork_server_that_dies_twice_in_a_row_fails_the_repository_waiting_for_its_worker_not_the_sweep(
        org: Org, tmp_path: Path) -> None:
    fork_server = Held(tmp_path / "held", "fork-server")
    with killed_in_the_end(sweep_process(org, "--repo-include", "^acme/svc-api$", held=fork_server)) as process:
        first = fork_server.wait()
        os.kill(first, signal.SIGKILL)
        os.kill(fork_server.wait(other_than=first), signal.SIGKILL)  # the one started in its place
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert len(fork_server.pids()) == 2
    error = ("its worker process could not be started (the fork server that starts the workers ended); it runs "
             "again in the next sweep")
    assert err.splitlines() == ["1 repository to sweep, 62 left out", f"[1/1] acme/svc-api: failed: {error}",
                                "1 repository needs a look: acme/svc-api"]
    assert {k: v for k, v in json.loads(out).items() if k != "left_out"} == {
        "version": 1, "mode": "sweep", "destination": org.destination, "interrupted": False, "not_reached": 0,
        "totals": {"repositories": 1, "done": 0, "partial": 0, "nothing-to-do": 0, "declined": 0, "scanned": 0,
                   "failed": 1, "third_party": 0, "internal": 0, "unresolved": 0, "images": 0},
        "repositories": [RepoEntry("acme/svc-api", "failed", error=error).to_json()], "images": []}


@pytest.mark.parametrize("workers", ["process", "thread"])
def test_ctrl_c_ends_the_wait_for_the_rate_limit_reset(org: Org, tmp_path: Path, workers: str) -> None:
    """GitHub says no request is left until a reset an hour away: Ctrl-C ends the wait (in the sweep's
    process, where the limiter is, whichever process asks). The repositories waiting are not done: each
    fails, is journaled and reported; the clones go."""
    state, reports, log, temp = (tmp_path / name for name in ("state.jsonl", "reports", "stderr", "temp"))
    temp.mkdir()
    reset = int(time.time()) + 3600
    spent = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    for name in ("svc-api", "svc-jobs"):  # each one's look for its pull request: the next request waits
        org.github.faults.append(("GET", f"^/repos/acme/{name}/pulls$", 200, spent, []))
    hold = threading.Event()  # until both have asked: each then pushes its branch before it waits
    org.github.gates.append(("GET", r"^/repos/acme/svc-[a-z]+/pulls$", hold))
    with log.open("w") as stderr:
        process = sweep_process(org, "--repo-include", "^acme/svc-(api|jobs|web)$", "--jobs", "2", "--state",
                                str(state), "--report", str(reports), "--workers", workers, stderr=stderr, temp=temp)
        try:
            wait_until_started(org, {"svc-api", "svc-jobs"})
            hold.set()
            waiting = wait_for_line(log, "GitHub rate limit: ")
            os.killpg(process.pid, signal.SIGINT)
            out, _ = process.communicate(timeout=60)
        finally:
            process.kill()
            process.wait()
    err = log.read_text()
    assert process.returncode == 130, err
    at = datetime.datetime.fromtimestamp(reset, datetime.timezone.utc).strftime("%H:%M:%S")
    assert re.fullmatch(rf"GitHub rate limit: 0 requests left; waiting 3[56]\d\ds until the reset at {at} UTC", waiting)
    error = f"interrupted while waiting for GitHub's rate limit to reset at {at} UTC; it runs again in the next sweep"
    # The whole of it, but for the order in which the two repositories go (the progress counts them as they end).
    assert sorted(re.sub(r"^\[[12]/3\] ", "[-/3] ", line) for line in err.splitlines()) == sorted([
        "3 repositories to sweep, 60 left out", waiting,
        *(f"{name}: cloning file://{org.remotes[name]} (branch main)" for name in ("acme/svc-api", "acme/svc-jobs")),
        "acme/svc-api: pushing rehome/mirror-images", "acme/svc-jobs: pushing rehome/mirror-images",
        "SIGINT: starting no other repository; waiting for those running to finish (a push is never cut short)",
        f"[-/3] acme/svc-api: failed: {error}", f"[-/3] acme/svc-jobs: failed: {error}",
        "2 repositories need a look: acme/svc-api, acme/svc-jobs", "rehome: interrupted"]), err
    assert sorted((line["repo"], line["status"], line["error"]) for line in state_lines(state)) == [
        ("acme/svc-api", "failed", error), ("acme/svc-jobs", "failed", error)]
    assert org.pulls("acme/svc-api") == org.pulls("acme/svc-jobs") == []
    api, jobs = (org.remote_git(name, "rev-parse", "main") for name in ("acme/svc-api", "acme/svc-jobs"))
    report = interrupted_report(
        org, 1, {"repositories": 2, "done": 0, "partial": 0, "nothing-to-do": 0, "declined": 0, "scanned": 0, "failed": 2,
                 "third_party": 4, "internal": 0, "unresolved": 1, "images": 3},
        [RepoEntry("acme/svc-api", "failed", None, api, error, 2, 0, 1).to_json(),
         RepoEntry("acme/svc-jobs", "failed", None, jobs, error, 2, 0, 0).to_json()],
        [copied(org, "app", ("acme/svc-jobs", "deploy/jobs.yaml")), copied(org, "nginx", ("acme/svc-api", "Dockerfile")),
         copied(org, "redis", ("acme/svc-api", "compose.yaml"), ("acme/svc-jobs", "docker-compose.yml"))])
    assert json.loads((reports / "report.json").read_text()) == report
    assert {k: v for k, v in json.loads(out).items() if k != "left_out"} == report
    assert list(temp.glob("rehome-*")) == []  # the clones, and in worker processes the sweep's folder


def test_ctrl_c_does_not_cut_short_a_push_in_a_sweep_in_threads(org: Org, tmp_path: Path) -> None:
    """`--workers thread`: git runs out of the process group the Ctrl-C reaches, so the push under way
    (held up for a second by the remote's hook) finishes, and its pull request opens."""
    state, receiving = tmp_path / "state.jsonl", tmp_path / "receiving"
    hook = org.remotes[f"{ORG}/svc-api"] / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\ntouch '{receiving}'\nsleep 1\n")
    hook.chmod(0o755)
    process = sweep_process(org, "--repo-include", "^acme/svc-api$", "--workers", "thread", "--state", str(state))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not receiving.exists():
            time.sleep(0.01)
        assert receiving.exists()
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, err
    assert "SIGINT: starting no other repository; waiting" in err
    assert [(line["repo"], line["status"]) for line in state_lines(state)] == [(f"{ORG}/svc-api", "done")], err
    assert len(org.pulls(f"{ORG}/svc-api")) == 1
    assert org.remote_git(f"{ORG}/svc-api", "branch", "--list", "rehome/mirror-images") == "rehome/mirror-images"
