"""The scale-out examples: their shard counts agree, every rehome command in them parses, and their
merge steps, run as the examples run them, merge each shard's report of this sweep."""
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
    assert "${{" not in commands[0]  # expressions reach the script through env:
    _parses(commands[0].split("\n", 1)[1], {"DESTINATION": "us-docker.pkg.dev/acme/mirror", "SHARDS": "4",
                                           "SHARD_INDEX": "1", "INVENTORY": "--inventory", "ORG": "acme",
                                           "APP_ID": "12345"})
    _parses(next(line for line in commands[1].splitlines() if line.startswith("rehome ")), {"SHARDS": "4"})


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
    merging = merge["spec"]["template"]["spec"]["containers"][0]
    assert next(e["value"] for e in merging["env"] if e["name"] == "SHARDS") == shards
    _parses(merging["args"][0], {"SHARDS": shards})


def _shell(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A command of an example run in `tmp_path` as the example runs it, with this checkout's rehome
    first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    (folder / "rehome").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m bot "$@"\n')
    (folder / "rehome").chmod(0o755)
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(argv, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)


def _write_shard_reports(folders: list[Path], status: str) -> None:
    """A report per shard folder, shard K sweeping acme/repo-K, whose status is `status`."""
    for shard, folder in enumerate(folders):
        entry = RepoEntry(f"acme/repo-{shard}", status)
        sweep_report.write(sweep_report.make_report("sweep", "mirror.example/acme", [entry]), folder)


def _container_command(job: dict, state: Path, **env: str) -> tuple[list[str], dict[str, str]]:
    """A Job's container command, on the folder `state` standing for its volume, and the environment it sets."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    argv = [*container["command"], *(arg.replace("/state", str(state)) for arg in container["args"])]
    return argv, {e["name"]: e["value"] for e in container.get("env", ()) if "value" in e} | env


def test_the_merge_job_runs_again_after_the_next_sweep(tmp_path) -> None:
    _claim, job, merge = _load("kubernetes-job.yaml")
    state = tmp_path / "state"
    argv, env = _container_command(merge, state)
    folders = [state / f"report-{shard}" for shard in range(job["spec"]["completions"])]
    for run, status in enumerate(("failed", "done")):  # this week's sweep, then next week's
        _write_shard_reports(folders, status)
        done = _shell(argv, tmp_path, **env)
        assert (run, done.returncode, done.stderr) == (run, 0, "")
        merged = sweep_report.load(state / "merged" / "report.json")
        assert {r.status for r in merged.repositories} == {status}
        assert len(merged.repositories) == len(folders)


def test_a_shard_pod_that_writes_no_report_fails_the_merge_job_instead_of_leaving_its_last_report(tmp_path) -> None:
    _claim, job, merge = _load("kubernetes-job.yaml")
    state = tmp_path / "state"
    folders = [state / f"report-{shard}" for shard in range(job["spec"]["completions"])]
    _write_shard_reports(folders, "done")  # last week's sweep
    # This week shard 1's pod stops before listing the repositories (here: the App's key is missing), writing
    # no report.
    argv, env = _container_command(job, state, JOB_COMPLETION_INDEX="1", GITHUB_APP_ID="42", GITHUB_APP_PRIVATE_KEY="")
    stopped = _shell(argv, tmp_path, **env)
    assert (stopped.returncode, stopped.stdout) == (2, "")
    assert not (folders[1] / "report.json").exists()
    argv, env = _container_command(merge, state)
    merged = _shell(argv, tmp_path, **env)
    assert (merged.returncode, merged.stdout) == (2, "")
    assert merged.stderr.startswith(f"rehome: error: {folders[1] / 'report.json'}: cannot read the report: ")
    assert not (state / "merged").exists()


def test_a_shard_that_wrote_no_report_fails_the_merge_step_instead_of_going_unnoticed(tmp_path) -> None:
    (workflow,) = _load("github-actions.yml")
    shards = int(workflow["env"]["SHARDS"])
    # What the merge job downloads: each shard's artifact in shards/report-K; shard 2 stopped before writing its
    # report, and uploaded its state alone.
    folders = [tmp_path / "shards" / f"report-{k}" / f"report-{k}" for k in range(shards)]
    _write_shard_reports(folders, "done")
    for leftover in folders[2].iterdir():
        leftover.unlink()
    folders[2].rmdir()
    (folders[2].parent / "state").mkdir()
    (script,) = [step["run"] for step in workflow["jobs"]["merge"]["steps"] if "rehome " in step.get("run", "")]
    done = _shell(["bash", "-e", "-c", script], tmp_path, SHARDS=str(shards),
                  GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("rehome: error: shards/report-2/report-2: cannot read the report: ")
    assert not (tmp_path / "merged").exists()


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
