from __future__ import annotations

import argparse
import hashlib
import json
import os

import pytest

from bot.errors import UsageError
from bot.sweep.select import RepoInfo, Selection, Unreadable, parse_shard, select, shard_of
from bot.sweep.state import Outcome, StateJournal, inputs_of
from tests.helpers import logged, run_cli, write_tree
from tests.sweep.conftest import ORG, TOKEN, TOKEN_ENV


def _repo(name: str, **flags) -> RepoInfo:
    return RepoInfo(full_name=f"acme/{name}", default_branch="main", clone_url=f"file:///{name}.git", **flags)


REPOS = [_repo(f"svc-{i:02d}") for i in range(40)] + [
    _repo("old", archived=True), _repo("copy", fork=True), _repo("blank", empty=True),
    _repo("gone", disabled=True), _repo("tools", topics=("platform", "go")),
]



def _notice(journal: StateJournal, repos: list[str], inputs: dict) -> str | None:
    return journal.run_again_notice(journal.finished_with_other_flags(repos, inputs).values(), inputs)

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
            "draft": None, "templates": None, "config_sha256": None, "rules_sha256": None, "pulls_sha256": None,
            "templates_sha256": None}}


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
    assert _notice(again, ["acme/a", "acme/b", "acme/c", "acme/d", "acme/e", "acme/new"], INPUTS) == (
        f"{path}: 3 repositories finished with other flags run again (--include, --pin-digest; "
        "2 lines of another rehome version, not recording the same flags)")
    assert _notice(again, ["acme/a", "acme/b"], {**INPUTS, "to": "mirror.example/n"}) == (
        f"{path}: 2 repositories finished with other flags run again (--include, --pin-digest, --to)")
    assert _notice(again, ["acme/c"], INPUTS) == (
        f"{path}: 1 repository finished with other flags runs again (1 line of another rehome version, "
        "not recording the same flags)")
    assert _notice(again, ["acme/a", "acme/e"], INPUTS) is None


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


def _sweep_args(**flags) -> argparse.Namespace:
    return argparse.Namespace(**{"to": "mirror.example/m", "rules": [], **flags})


def test_the_journal_records_what_the_files_and_folders_flags_name_hold(tmp_path):
    templates = write_tree(tmp_path / "templates", {"pr_title.j2": "Mirror images\n", "parts/x.j2": "x\n"})
    rules = [str(write_tree(tmp_path / name, {"r.yaml": f"{name}\n"})) for name in ("rules-a", "rules-b")]
    config, pulls = tmp_path / "rehome.yaml", tmp_path / "pulls.csv"
    config.write_text("labels: [images]\n")
    pulls.write_text("imageName,numberOfPulls\nnginx,3\n")
    flags = _sweep_args(templates=str(templates), rules=rules, config=str(config), pulls=str(pulls))
    path = tmp_path / "state.jsonl"
    journal = StateJournal(path)
    before = inputs_of(flags)
    journal.record(Outcome("acme/a", "done", None, "h", None, "2026-11-26T10:00:00Z", before))

    def digest(*entries: tuple[str, bytes]) -> str:
        return hashlib.sha256(b"".join(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode()
                                       for name, data in entries)).hexdigest()

    assert {name: value for name, value in before.items() if name.endswith("_sha256")} == {
        "config_sha256": digest((".", b"labels: [images]\n")),
        "rules_sha256": digest(("r.yaml", b"rules-a\n"), ("r.yaml", b"rules-b\n")),
        "pulls_sha256": digest((".", b"imageName,numberOfPulls\nnginx,3\n")),
        "templates_sha256": digest(("parts/x.j2", b"x\n"), ("pr_title.j2", b"Mirror images\n"))}
    assert StateJournal(path).should_skip("acme/a", "h", inputs_of(flags))
    # Edited in place, under the same names: another input, which the notice names.
    (templates / "parts" / "x.j2").write_text("y\n")
    (tmp_path / "rules-b" / "new.yaml").write_text("more\n")
    after = inputs_of(flags)
    assert not StateJournal(path).should_skip("acme/a", "h", after)
    assert _notice(StateJournal(path), ["acme/a"], after) == (
        f"{path}: 1 repository finished with other flags runs again (the contents of --rules, "
        "the contents of --templates)")
    # What a flag names counts, not where it is: a copy of the templates as they were, elsewhere, is the same
    # input; other rules, named otherwise, are named by their flag alone.
    elsewhere = write_tree(tmp_path / "elsewhere", {"pr_title.j2": "Mirror images\n", "parts/x.j2": "x\n"})
    moved = inputs_of(_sweep_args(templates=str(elsewhere), rules=rules, config=str(config), pulls=str(pulls)))
    assert _notice(StateJournal(path), ["acme/a"], moved) == (
        f"{path}: 1 repository finished with other flags runs again (the contents of --rules)")
    fewer = inputs_of(_sweep_args(templates=str(elsewhere), rules=rules[:1], config=str(config), pulls=str(pulls)))
    assert _notice(StateJournal(path), ["acme/a"], fewer) == (
        f"{path}: 1 repository finished with other flags runs again (--rules)")
    # A BigQuery dataset is recorded by its name.
    assert inputs_of(_sweep_args(pulls="bigquery://acme-logs.image_pulls"))["pulls_sha256"] is None


def test_a_rerun_naming_the_same_files_otherwise_skips_what_is_finished(tmp_path, monkeypatch):
    """A sharded sweep resumed on another machine, or a rerun from another folder, names the files by
    other paths: `./rehome.yaml`, an absolute path. The repositories finished with them are not redone."""
    write_tree(tmp_path, {"rehome.yaml": "labels: [images]\n", "rules/r.yaml": "r\n", "pulls.csv": "imageName\n"})
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "state.jsonl"
    typed = _sweep_args(config="./rehome.yaml", rules=["rules/"], pulls="pulls.csv")
    StateJournal(path).record(Outcome("acme/a", "done", None, "h", None, "2026-11-26T10:00:00Z", inputs_of(typed)))
    absolute = inputs_of(_sweep_args(config=str(tmp_path / "rehome.yaml"), rules=[str(tmp_path / "rules")],
                                     pulls=str(tmp_path / "pulls.csv")))
    assert StateJournal(path).should_skip("acme/a", "h", absolute)
    assert _notice(StateJournal(path), ["acme/a"], absolute) is None
    # A BigQuery dataset names no file: its name is what counts.
    StateJournal(path).record(Outcome("acme/b", "done", None, "h", None, "2026-11-26T10:00:00Z",
                                      inputs_of(_sweep_args(pulls="bigquery://acme-logs.image_pulls"))))
    other = inputs_of(_sweep_args(pulls="bigquery://acme-logs.other_pulls"))
    assert not StateJournal(path).should_skip("acme/b", "h", other)
    assert _notice(StateJournal(path), ["acme/b"], other) == (
        f"{path}: 1 repository finished with other flags runs again (--pulls)")
    assert _notice(StateJournal(path), ["acme/a"], other) == (
        f"{path}: 1 repository finished with other flags runs again (--config, --pulls, --rules)")


def test_a_file_a_flag_names_that_cannot_be_read_for_the_journal_is_a_usage_error_naming_it(tmp_path):
    templates = write_tree(tmp_path / "templates", {"pr_title.j2": "Mirror images\n"})
    (templates / "pr_body.md.j2").symlink_to(tmp_path / "gone.j2")
    with pytest.raises(UsageError) as refused:
        inputs_of(_sweep_args(templates=str(templates)))
    assert str(refused.value) == (f"--templates: {templates / 'pr_body.md.j2'}: cannot read it to record its "
                                  "contents in --state: No such file or directory")
    with pytest.raises(UsageError) as refused:
        inputs_of(_sweep_args(config=str(tmp_path / "missing.yaml")))
    assert str(refused.value) == (f"--config: {tmp_path / 'missing.yaml'}: cannot read it to record its contents in "
                                  "--state: No such file or directory")


def _fingerprints(flags: argparse.Namespace) -> dict[str, str | None]:
    return {name: value for name, value in inputs_of(flags).items() if name.endswith("_sha256")}  # type: ignore[misc]


def test_a_rules_folder_is_fingerprinted_by_its_rule_files_alone(tmp_path):
    """What rehome reads of a --rules folder is its own *.yaml and *.yml files: a README, a folder, an
    editor's lock file (a link to nowhere) or a file that cannot be read beside them changes no input."""
    rules = write_tree(tmp_path / "rules", {"a.yaml": "a\n", "b.yml": "b\n"})
    flags = _sweep_args(rules=[str(rules)])
    before = _fingerprints(flags)
    write_tree(rules, {"README.md": "our rules\n", "old/c.yaml": "c\n", "notes.txt": "x\n"})
    (rules / ".#a.yaml").symlink_to("root@host.1234:1700000000")
    (rules / "drafts").mkdir()
    (rules / "drafts" / "gone.yaml").symlink_to(tmp_path / "gone.yaml")
    assert _fingerprints(flags) == before
    (rules / "b.yml").write_text("b2\n")
    path = tmp_path / "state.jsonl"
    StateJournal(path).record(Outcome("acme/a", "done", None, "h", None, "2026-11-26T10:00:00Z", inputs_of(flags)))
    (rules / "a.yaml").write_text("a2\n")
    assert _notice(StateJournal(path), ["acme/a"], inputs_of(flags)) == (
        f"{path}: 1 repository finished with other flags runs again (the contents of --rules)")


def test_the_rules_and_templates_folders_a_config_file_names_are_part_of_its_contents(tmp_path):
    config = tmp_path / "ci" / "rehome.yaml"
    write_tree(tmp_path / "ci", {"rehome.yaml": "rules: rules\ntemplates: ../tpl\n", "rules/a.yaml": "a\n"})
    write_tree(tmp_path / "tpl", {"pr_title.j2": "Mirror images\n"})
    flags = _sweep_args(config=str(config))
    before = _fingerprints(flags)["config_sha256"]
    (tmp_path / "tpl" / "pr_title.j2").write_text("Mirror our images\n")
    edited = _fingerprints(flags)["config_sha256"]
    (tmp_path / "ci" / "rules" / "a.yaml").write_text("a2\n")
    assert len({before, edited, _fingerprints(flags)["config_sha256"]}) == 3
    # Folders that --rules and --templates replace are not read, so they are no input.
    rules, templates = write_tree(tmp_path / "r", {"r.yaml": "r\n"}), write_tree(tmp_path / "t", {"x.j2": "x\n"})
    replaced = _sweep_args(config=str(config), rules=[str(rules)], templates=str(templates))
    alone = _fingerprints(replaced)["config_sha256"]
    (tmp_path / "tpl" / "pr_title.j2").write_text("Mirror images again\n")
    (tmp_path / "ci" / "rules" / "a.yaml").write_text("a3\n")
    assert _fingerprints(replaced)["config_sha256"] == alone == hashlib.sha256(
        b".\0" + hashlib.sha256(config.read_bytes()).hexdigest().encode() + b"\n").hexdigest()


def test_a_templates_folder_is_fingerprinted_through_its_links_whatever_its_file_names(tmp_path):
    """A linked folder's files are templates too (edited there, they change the input); a link back up
    the tree is read once, a name that is not UTF-8 is a name, and a pipe is not waited on."""
    shared = write_tree(tmp_path / "shared", {"footer.j2": "-- the platform team\n"})
    templates = write_tree(tmp_path / "templates", {"pr_title.j2": "Mirror images\n"})
    (templates / "parts").symlink_to(shared)
    (templates / "parts" / "loop").symlink_to(templates)
    (templates / os.fsdecode(b"caf\xe9.j2")).write_text("latin-1\n")
    os.mkfifo(templates / "pipe")
    flags = _sweep_args(templates=str(templates))
    before = _fingerprints(flags)["templates_sha256"]
    assert before == hashlib.sha256(b"".join(
        name + b"\0" + hashlib.sha256(data).hexdigest().encode() + b"\n" for name, data in (
            (b"caf\xe9.j2", b"latin-1\n"), (b"parts/footer.j2", b"-- the platform team\n"),
            (b"pr_title.j2", b"Mirror images\n")))).hexdigest()
    (shared / "footer.j2").write_text("-- the mirror team\n")
    assert _fingerprints(flags)["templates_sha256"] != before
