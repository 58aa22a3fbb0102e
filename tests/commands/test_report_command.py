"""`rehome report merge` and `rehome report status`: what they refuse, and how they say it."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot import output
from bot.sweep import report as sweep_report
from bot.sweep.report import RepoEntry
from bot.sweep.state import Outcome, StateJournal
from tests.github.server import GitHubServer
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP, run_cli

DESTINATION = "mirror.example/acme"
WITHOUT_PULL_REQUEST = ('{"repo": "acme/b", "status": "nothing-to-do", "pr_url": null, "head": "h", "error": null, '
                        '"finished_at": "2026-11-26T10:00:00Z"}\n')
HINT = "hint: the folder for the merged reports comes first: rehome report merge OUT_DIR SHARD_REPORT...\n"
TOKEN_ENV = "REHOME_REPORT_TOKEN"


def _shards(tmp_path: Path) -> dict[Path, bytes]:
    """Two shards' report folders (acme/a and acme/b), and each file's bytes as written."""
    for number, name in enumerate(("acme/a", "acme/b")):
        report = sweep_report.make_report("sweep", DESTINATION, [RepoEntry(name, "done", None, "h", None, 1, 0, 0)])
        sweep_report.write(report, tmp_path / f"s{number}")
    return {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("out_dir", ["s0", "s0/report.json"])
def test_merge_refuses_an_out_dir_that_is_one_of_the_reports(capsys, tmp_path, monkeypatch, out_dir) -> None:
    monkeypatch.chdir(tmp_path)
    before = _shards(tmp_path)
    assert run_cli(capsys, "report", "merge", out_dir, "s0", "s1") == (
        2, "", f"rehome: error: report merge: OUT_DIR {out_dir} is one of the reports to merge; nothing was "
               f"written\n{HINT}")
    assert run_cli(capsys, "report", "merge", "s1", "s0", "s1/report.json") == (
        2, "", f"rehome: error: report merge: OUT_DIR s1 is one of the reports to merge; nothing was written\n{HINT}")
    assert {path: path.read_bytes() for path in before} == before


def test_merge_refuses_an_out_dir_holding_another_report(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = _shards(tmp_path)
    assert run_cli(capsys, "report", "merge", "s0", "s1") == (
        2, "", "rehome: error: report merge: OUT_DIR s0 already holds a report (s0/report.json) that is not one of "
               "those to merge; nothing was written\nhint: give a new or empty folder\n")
    assert {path: path.read_bytes() for path in before} == before


@pytest.mark.parametrize("again", ["s0/report.json", "./s0"])
def test_merge_refuses_a_report_given_twice_naming_both(capsys, tmp_path, monkeypatch, again) -> None:
    monkeypatch.chdir(tmp_path)
    before = _shards(tmp_path)
    assert run_cli(capsys, "report", "merge", "out", "s0", "s1", again) == (
        2, "", f"rehome: error: report merge: s0 and {again} are the same report (s0/report.json); nothing was "
               "written\nhint: give each shard's report once\n")
    assert {path: path.read_bytes() for path in before} == before and not (tmp_path / "out").exists()


def test_merge_names_the_reports_that_do_not_go_together(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _shards(tmp_path)
    sweep_report.write(sweep_report.make_report("sweep", DESTINATION, [RepoEntry("acme/a", "failed")]), tmp_path / "s2")
    sweep_report.write(sweep_report.make_report("inventory", DESTINATION, []), tmp_path / "s3")
    assert run_cli(capsys, "report", "merge", "out", "s0", "s1", "s2") == (
        2, "", "rehome: error: report merge: acme/a is in two reports, s0/report.json and s2/report.json; shards "
               "never overlap; nothing was written\n")
    assert run_cli(capsys, "report", "merge", "out", "s0", "s3") == (
        2, "", f"rehome: error: report merge: s3/report.json is of another sweep than s0/report.json (inventory to "
               f"{DESTINATION}, not sweep to {DESTINATION}); nothing was written\n")
    assert not (tmp_path / "out").exists()


def test_merge_refuses_a_report_nested_too_deep(capsys, tmp_path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(f'{{"version": 1, "mode": "sweep", "destination": "d", "repositories": [], "images": {DEEP_JSON}}}')
    assert run_cli(capsys, "report", "merge", str(tmp_path / "out"), str(deep)) == (
        2, "", f"rehome: error: {deep}: cannot read the report: {NESTED_TOO_DEEP}\n")
    assert not (tmp_path / "out").exists()


def test_status_ignores_a_state_line_nested_too_deep(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "ghp_report")
    state = tmp_path / "state.jsonl"
    state.write_text(f'{{"repo": "acme/a", "status": "done", "x": {DEEP_JSON}}}\n' + WITHOUT_PULL_REQUEST)
    code, out, err = run_cli(capsys, "report", "status", "--state", str(state), "--github-url", "http://127.0.0.1:9",
                             "--token-env", TOKEN_ENV, "--format", "json")
    assert (code, json.loads(out), err) == (0, {
        "version": 1, "totals": {"open": 0, "merged": 0, "closed": 0, "unknown": 0, "without_pull_request": 1,
                   "latest_run_failed": 0},
        "pull_requests": []}, f"{state}:1: not a state line; ignored\n")


@pytest.mark.parametrize(("make", "what"), [(Path.mkdir, "a folder"), (os.mkfifo, "a named pipe")])
def test_merge_writes_no_report_when_one_cannot_be_written(capsys, tmp_path, monkeypatch, make, what) -> None:
    monkeypatch.chdir(tmp_path)
    _shards(tmp_path)
    (tmp_path / "out").mkdir()
    make(tmp_path / "out" / "report.csv")
    assert run_cli(capsys, "report", "merge", "out", "s0", "s1") == (
        2, "", f"rehome: error: out/report.csv: is {what}, not a file; nothing was written\n")
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["report.csv"]
    assert output.not_a_file((tmp_path / "out" / "report.csv").lstat().st_mode) == what


def test_merge_and_status_say_one_of_each_in_the_singular(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _shards(tmp_path)
    assert run_cli(capsys, "report", "merge", "out", "s0") == (0, "1 report merged into out: 1 repository, 0 images\n", "")
    state = tmp_path / "state.jsonl"
    state.write_text(WITHOUT_PULL_REQUEST)
    monkeypatch.setenv(TOKEN_ENV, "ghp_report")
    assert run_cli(capsys, "report", "status", "--state", str(state), "--github-url", "http://127.0.0.1:9",
                   "--token-env", TOKEN_ENV) == (
        0, "0 open, 0 merged, 0 closed, 0 unknown; 1 repository without a pull request\n", "")


def test_status_refuses_to_run_without_the_token_it_is_told_to_read(capsys, tmp_path, monkeypatch) -> None:
    # Without one, a private repository's pull request would only show as 404, "unknown".
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    state = tmp_path / "state.jsonl"
    state.write_text(WITHOUT_PULL_REQUEST)
    assert run_cli(capsys, "report", "status", "--state", str(state), "--github-url", "http://127.0.0.1:9",
                   "--token-env", TOKEN_ENV) == (
        2, "", f"rehome: error: no GitHub token: the environment variable {TOKEN_ENV} is not set\nhint: export "
               f"{TOKEN_ENV}=… or name another variable with --token-env, or use --app-id\n")


def _pull(state: str, merged: bool = False) -> dict:
    return {"number": 1, "state": state, "merged": merged, "title": "Mirror images", "body": "", "draft": False,
            "head": "rehome/mirror-images", "base": "main", "labels": [], "reviewers": [], "assignees": []}


def test_status_follows_the_last_pull_request_of_each_repository_and_says_when_its_latest_run_failed(
        capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "ghp_report")
    server = GitHubServer()
    try:
        server.add_repo("acme/shop", "file:///shop.git").pulls.append(_pull("open"))
        server.add_repo("acme/web", "file:///web.git").pulls.append(_pull("closed", merged=True))
        shop, web = f"{server.origin}/acme/shop/pull/1", f"{server.origin}/acme/web/pull/1"
        state = tmp_path / "state.jsonl"
        journal = StateJournal(state)
        # shop's next run could not clone it; web's found nothing more to do once its pull request was merged.
        for outcome in [Outcome("acme/shop", "done", shop, "a1", None, "2026-11-26T10:00:00Z"),
                        Outcome("acme/web", "done", web, "b1", None, "2026-11-26T10:01:00Z"),
                        Outcome("acme/docs", "nothing-to-do", None, "c1", None, "2026-11-26T10:02:00Z"),
                        Outcome("acme/shop", "failed", None, None, "git clone failed: transient\nfatal: gone",
                                "2026-11-27T13:50:00Z"),
                        Outcome("acme/web", "nothing-to-do", None, "b2", None, "2026-11-27T13:51:00Z")]:
            journal.record(outcome)
        status = ("report", "status", "--state", str(state), "--github-url", server.base_url, "--token-env", TOKEN_ENV)
        json_run, table_run = run_cli(capsys, *status, "--format", "json"), run_cli(capsys, *status)
    finally:
        server.stop()
    code, out, err = json_run
    assert (code, json.loads(out), err) == (0, {
        "version": 1, "totals": {"open": 1, "merged": 1, "closed": 0, "unknown": 0, "without_pull_request": 1,
                                 "latest_run_failed": 1},
        "pull_requests": [
            {"repo": "acme/shop", "pr_url": shop, "state": "open", "error": None,
             "latest_run": {"status": "failed", "finished_at": "2026-11-27T13:50:00Z",
                            "error": "git clone failed: transient\nfatal: gone"}},
            {"repo": "acme/web", "pr_url": web, "state": "merged", "error": None,
             "latest_run": {"status": "nothing-to-do", "finished_at": "2026-11-27T13:51:00Z", "error": None}}]}, "")
    width = len(shop)
    assert table_run == (0, (
        f"REPOSITORY  STATE   {'PULL REQUEST':{width}}  LATEST RUN     ERROR\n"
        f"----------  ------  {'-' * width}  -------------  ---------------------------------------\n"
        f"acme/shop   open    {shop}  failed         latest run: git clone failed: transient\n"
        f"acme/web    merged  {web:{width}}  nothing-to-do\n"
        "1 open, 1 merged, 0 closed, 0 unknown; 1 repository without a pull request; the latest run of 1 repository "
        "failed\n"), "")
