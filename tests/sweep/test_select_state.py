from __future__ import annotations

import argparse
import json

import pytest

from bot.errors import UsageError
from bot.sweep.select import RepoInfo, Selection, Unreadable, parse_shard, select, shard_of
from bot.sweep.state import Outcome, StateJournal, inputs_of
from tests.helpers import logged, run_cli
from tests.sweep.conftest import ORG, TOKEN, TOKEN_ENV


def _repo(name: str, **flags) -> RepoInfo:
    return RepoInfo(full_name=f"acme/{name}", default_branch="main", clone_url=f"file:///{name}.git", **flags)


REPOS = [_repo(f"svc-{i:02d}") for i in range(40)] + [
    _repo("old", archived=True), _repo("copy", fork=True), _repo("blank", empty=True),
    _repo("gone", disabled=True), _repo("tools", topics=("platform", "go")),
]


def test_shards_partition_the_repositories():
    for count in (1, 2, 3, 7):
        shards = [select(REPOS, Selection(shard=(k, count)))[0] for k in range(count)]
        names = [r.full_name for shard in shards for r in shard]
        assert sorted(names) == sorted(r.full_name for r in select(REPOS, Selection())[0])
        assert len(names) == len(set(names))
    # The documented formula, so other tools can compute it too.
    assert shard_of("Acme/Web", 4) == shard_of("acme/web", 4) == int.from_bytes(
        __import__("hashlib").sha256(b"acme/web").digest(), "big") % 4


def test_filters_say_why_a_repository_is_left_out():
    selection = Selection.from_flags([r"svc-0[0-2]$", "tools", "old"], [r"svc-01"], topics=(), limit=None)
    taken, left = select(REPOS, selection)
    assert [r.full_name for r in taken] == ["acme/svc-00", "acme/svc-02", "acme/tools"]
    reasons = dict((r.full_name, why) for r, why in left)
    assert (reasons["acme/old"], reasons["acme/copy"], reasons["acme/blank"], reasons["acme/gone"]) == (
        "archived", "a fork", "empty", "disabled")
    assert reasons["acme/svc-01"] == "matched by --repo-exclude"
    assert reasons["acme/svc-05"] == "not matched by --repo-include"
    everything = Selection(include_archived=True, include_forks=True, include_empty=True, topics=("platform",))
    assert [r.full_name for r in select(REPOS, everything)[0]] == ["acme/tools"]
    assert len(select(REPOS, Selection(limit=5))[0]) == 5


def test_a_repository_github_could_not_read_is_selected_by_its_name_and_counts_for_the_limit():
    gone = Unreadable("acme/svc-00a", "GitHub: read repository acme/svc-00a: 404 Not Found")
    assert select([*REPOS[:3], gone], Selection(limit=2)) == (
        [REPOS[0], gone], [(REPOS[1], "over --limit 2"), (REPOS[2], "over --limit 2")])
    assert select([REPOS[0], gone], Selection.from_flags([], ["00a"], limit=1)) == (
        [REPOS[0]], [(gone, "matched by --repo-exclude")])


@pytest.mark.parametrize("text", ["4/4", "1", "-1/2", "a/b", "\uff10/2", "0/\u0662"])  # full-width 0, Arabic-Indic 2
def test_bad_shards_are_usage_errors(text):
    with pytest.raises(UsageError) as refused:
        parse_shard(text)
    assert str(refused.value) == f"--shard {text!r}: expected K/N with 0 <= K < N, written in the digits 0-9, e.g. 0/4"
    assert parse_shard("3/4") == (3, 4)


def test_a_shard_of_more_digits_than_python_converts_is_a_usage_error_naming_it_clipped(capsys, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    count = "9" * 5000  # int() refuses more than 4300 digits
    code, out, err = run_cli(capsys, "sweep", "--org", ORG, "--to", "127.0.0.1:5999/mirror", "--token-env", TOKEN_ENV,
                             "--shard", f"0/{count}")
    assert (code, out) == (2, "")
    assert err == (f"rehome: error: --shard '0/{count[:76]}…: expected K/N with 0 <= K < N, written in the digits 0-9, "
                   "e.g. 0/4\n")


INPUTS = inputs_of(argparse.Namespace(to="mirror.example/m", rules=[]))


def test_journal_resumes_and_skips_finished_repositories_at_the_same_head(tmp_path):
    path = tmp_path / "state.jsonl"
    journal = StateJournal(path)
    journal.record(Outcome("acme/a", "done", "https://x/pull/1", "aaa", None, "2026-11-26T10:00:00Z", INPUTS))
    journal.record(Outcome("acme/b", "failed", None, "bbb", "push rejected", "2026-11-26T10:01:00Z", INPUTS))
    journal.record(Outcome("acme/c", "nothing-to-do", None, "ccc", None, "2026-11-26T10:02:00Z", INPUTS))
    with path.open("a") as f:
        f.write('{"repo": "acme/d", "status": "do')  # killed mid-line
    again = StateJournal(path)
    assert sorted(again.last) == ["acme/a", "acme/b", "acme/c"]
    assert [again.should_skip(r, h, INPUTS) for r, h in [("acme/a", "aaa"), ("acme/a", "new"), ("acme/b", "bbb"),
                                                          ("acme/c", "ccc"), ("acme/d", "ddd")]] == [
        True, False, False, True, False]
    again.record(Outcome("acme/d", "done", None, "ddd", None, "2026-11-26T10:05:00Z", INPUTS))
    assert StateJournal(path).should_skip("acme/d", "ddd", INPUTS)
    assert not StateJournal(path).should_skip("acme/d", "ddd", {**INPUTS, "to": "elsewhere"})
    assert json.loads(path.read_text().splitlines()[-1]) == {
        "repo": "acme/d", "status": "done", "pr_url": None, "head": "ddd", "error": None,
        "finished_at": "2026-11-26T10:05:00Z", "inputs": {
            "to": "mirror.example/m", "mapping": None, "pin_digest": None, "refresh": None, "config": None, "rules": [],
            "internal": None, "include": None, "exclude": None, "max_file_size": None, "pulls": None, "since": None,
            "until": None, "branch": None, "title": None, "labels": None, "reviewers": None, "assignees": None,
            "draft": None, "templates": None}}


def test_a_finished_repository_whose_line_records_other_flags_or_not_all_of_them_runs_again(tmp_path):
    path = tmp_path / "state.jsonl"
    pinned = {**INPUTS, "pin_digest": True, "include": ["deploy/**"]}
    older = {name: INPUTS[name] for name in ("to", "branch", "mapping")}  # the flags a version before recorded
    journal = StateJournal(path)
    for repo, inputs in [("acme/a", INPUTS), ("acme/b", pinned), ("acme/c", older), ("acme/d", None)]:
        journal.record(Outcome(repo, "done", None, "h", None, "2026-11-26T10:00:00Z", inputs))
    journal.record(Outcome("acme/e", "failed", None, "h", "push rejected", "2026-11-26T10:00:00Z", pinned))
    again = StateJournal(path)
    assert [again.should_skip(repo, "h", INPUTS) for repo in ("acme/a", "acme/b", "acme/c", "acme/d")] == [
        True, False, False, False]
    assert again.should_skip("acme/b", "h", pinned)
    assert again.run_again_notice(["acme/a", "acme/b", "acme/c", "acme/d", "acme/e", "acme/new"], INPUTS) == (
        f"{path}: 3 repositories finished with other flags run again (--include, --pin-digest; "
        "2 lines of another rehome version, not recording the same flags)")
    assert again.run_again_notice(["acme/a", "acme/b"], {**INPUTS, "to": "mirror.example/n"}) == (
        f"{path}: 2 repositories finished with other flags run again (--include, --pin-digest, --to)")
    assert again.run_again_notice(["acme/c"], INPUTS) == (
        f"{path}: 1 repository finished with other flags runs again (1 line of another rehome version, "
        "not recording the same flags)")
    assert again.run_again_notice(["acme/a", "acme/e"], INPUTS) is None


def test_journal_lines_that_are_json_but_not_outcomes_are_ignored_by_line(tmp_path):
    path = tmp_path / "state.jsonl"
    path.write_text("\n".join([
        '[1, 2]', '"hello"', 'null', '{"repo": ["acme/x"], "status": "done"}',
        '{"repo": "acme/y", "status": "done", "pr_url": 12}', '{"repo": "acme/z", "status": "weird"}',
        '{"repo": "acme/w", "status": "done", "inputs": ["to"]}',
        '{"repo": "acme/u", "status": "done", "inputs": {"include": [1]}}',
        '{"repo": "acme/v", "status": "done", "x": ' + "[" * 200_000 + "]" * 200_000 + "}",
        '{"repo": "acme/a", "status": "done", "pr_url": null, "head": "aaa", "error": null, "finished_at": "t"}',
    ]) + "\n")
    with logged() as warnings:
        journal = StateJournal(path)
    assert list(journal.last) == ["acme/a"]
    assert warnings == [f"{path}:{n}: not a state line; ignored" for n in range(1, 10)]
