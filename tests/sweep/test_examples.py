"""The scale-out examples: their shard counts agree, and every rehome command in them parses."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from bot.cli import build_parser
from bot.sweep import report as sweep_report
from bot.sweep.report import RepoEntry

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples" / "sweep"


def _load(name: str) -> list:
    return list(YAML(typ="safe").load_all((EXAMPLES / name).read_text()))


def _parses(command: str, values: dict[str, str]) -> None:
    text = re.sub(r"\$\{\{[^}]*\}\}", "x", command.replace("\\\n", " "))
    for name, value in values.items():
        text = text.replace(f'"${name}"', value).replace(f"${name}", value)
    words = [w for w in shlex.split(text.split("&&")[-1]) if w not in ("exec",)]
    args = build_parser(words[1:]).parse_args(words[1:])
    assert args.command in ("sweep", "report")


def test_the_workflow_runs_a_matrix_of_shards_then_merges() -> None:
    (workflow,) = _load("github-actions.yml")
    sweep, merge = workflow["jobs"]["sweep"], workflow["jobs"]["merge"]
    assert len(sweep["strategy"]["matrix"]["shard"]) == int(workflow["env"]["SHARDS"])
    assert merge["needs"] == "sweep"
    commands = [step["run"] for job in (sweep, merge) for step in job["steps"] if "rehome " in step.get("run", "")]
    assert len(commands) == 2
    assert commands[0].startswith("mkdir -p state\n")
    _parses(commands[0].split("\n", 1)[1], {"DESTINATION": "us-docker.pkg.dev/acme/mirror", "SHARDS": "4", "INVENTORY": "--inventory"})
    _parses(commands[1].splitlines()[0], {})


def test_the_indexed_job_takes_its_shard_from_the_completion_index() -> None:
    _claim, job, merge = _load("kubernetes-job.yaml")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    container = spec["template"]["spec"]["containers"][0]
    shards = next(e["value"] for e in container["env"] if e["name"] == "SHARDS")
    assert int(shards) == spec["completions"] == spec["parallelism"]
    command = container["args"][0]
    assert '--shard "$JOB_COMPLETION_INDEX/$SHARDS"' in command
    _parses(command, {"JOB_COMPLETION_INDEX": "3", "SHARDS": shards, "GITHUB_APP_ID": "42"})
    _parses(merge["spec"]["template"]["spec"]["containers"][0]["args"][0], {})


def test_the_merge_job_runs_again_after_the_next_sweep(tmp_path) -> None:
    _claim, _job, merge = _load("kubernetes-job.yaml")
    state = tmp_path / "state"
    # The shell command the merge Job runs, on a folder standing for its volume, with this checkout's rehome.
    command = merge["spec"]["template"]["spec"]["containers"][0]["args"][0].replace("/state", str(state)).replace(
        "exec rehome ", f"exec {shlex.quote(sys.executable)} -m bot ")
    for run, status in enumerate(("failed", "done")):  # this week's sweep, then next week's
        for shard, repo in enumerate(("acme/shop", "acme/web")):
            entry = RepoEntry(repo, status if repo == "acme/web" else "done")
            sweep_report.write(sweep_report.make_report("sweep", "mirror.example/acme", [entry]),
                               state / f"report-{shard}")
        done = subprocess.run(["/bin/sh", "-c", command], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              capture_output=True, text=True, timeout=120)
        assert (run, done.returncode, done.stderr) == (run, 0, "")
        merged = sweep_report.load(state / "merged" / "report.json")
        assert [(r.repo, r.status) for r in merged.repositories] == [("acme/shop", "done"), ("acme/web", status)]


def _expand(template: str, **values: str) -> str:
    return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m[1].replace(".", "_")], template)


def test_each_attempt_of_a_shard_saves_its_state_under_a_key_of_its_own() -> None:
    (workflow,) = _load("github-actions.yml")
    steps = workflow["jobs"]["sweep"]["steps"]
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore@"))["with"]
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save@"))["with"]
    assert restore["path"] == save["path"] == "state"
    # A cache is never replaced: an attempt saving under a key already saved saves nothing, and the
    # repositories a rerun of a failed shard finished would run again in the next sweep.
    saved = [_expand(save["key"], matrix_shard="1", github_run_id="7", github_run_attempt=attempt)
             for attempt in ("1", "2")]
    assert saved[0] != saved[1]
    # Each restore finds the shard's latest save (its key, or the prefix), and never another shard's.
    prefix = _expand(restore["restore-keys"], matrix_shard="1")
    assert all(key.startswith(prefix) for key in saved)
    assert not _expand(save["key"], matrix_shard="10", github_run_id="7", github_run_attempt="1").startswith(prefix)
