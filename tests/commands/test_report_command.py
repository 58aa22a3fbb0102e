"""`rehome report merge` and `rehome report status`: what they refuse, and how they say it."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.sweep import report as sweep_report
from bot.sweep.report import RepoEntry
from tests.helpers import run_cli

DESTINATION = "mirror.example/acme"
HINT = "hint: the folder for the merged reports comes first: rehome report merge OUT_DIR SHARD_REPORT...\n"


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
