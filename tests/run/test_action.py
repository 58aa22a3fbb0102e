"""`action.yml`: validated against GitHub's action metadata schema, and its steps run with bash in a
simulated Actions environment against the GitHub stand-in, a bare remote and real registries."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from bot.action import _parse, annotations, run_arguments
from bot.errors import UsageError
from bot.forge.base import PullRequest
from bot.pipeline import RunResult
from tests.github.server import GitHubServer
from tests.helpers import git, run_cli
from tests.run.conftest import TOKEN_CANARY, TOKEN_ENV, Project

ROOT = Path(__file__).resolve().parent.parent.parent
ACTION = ROOT / "action.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load_action() -> dict:
    return YAML(typ="safe", pure=True).load(ACTION.read_text())


def evaluate(text: str, context: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        assert match.group(1) in context, f"unsupported expression: {match.group(1)}"
        return context[match.group(1)]

    return EXPRESSION.sub(value, text)


def read_outputs(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@dataclasses.dataclass
class ActionRun:
    outputs: dict[str, str]
    codes: list[int]
    stdout: str
    stderr: str
    summary: str


def fake_install(runner_temp: Path) -> str:
    """The install step's stand-in: this interpreter, with the checkout on its path (a venv and a pip
    install per test would be slow; test_the_install_step runs the real one)."""
    return (
        'mkdir -p "$RUNNER_TEMP/rehome-venv/bin"\n'
        "cat > \"$RUNNER_TEMP/rehome-venv/bin/python\" <<'EOF'\n"
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" "$@"\nEOF\n'
        'chmod +x "$RUNNER_TEMP/rehome-venv/bin/python"\n'
    )


def run_action(tmp_path: Path, workspace: Path, inputs: dict[str, str], environ: dict[str, str],
               install: bool = False, only: tuple[str, ...] | None = None, action_path: Path = ROOT) -> ActionRun:
    action = load_action()
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    summary = tmp_path / "summary.md"
    context = {"github.action_path": str(action_path), "github.token": environ.get("TEST_GITHUB_TOKEN", "")}
    for name, spec in action["inputs"].items():
        context[f"inputs.{name}"] = evaluate(inputs.get(name, str(spec.get("default", ""))), context)
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "RUNNER_TEMP": str(runner_temp),
            "GITHUB_WORKSPACE": str(workspace), "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true",
            **environ}
    codes, stdout, stderr = [], "", ""
    for index, step in enumerate(action["runs"]["steps"]):
        if only is not None and step["id"] not in only:
            continue
        output = tmp_path / f"output-{index}"
        env = base | {"GITHUB_OUTPUT": str(output)}
        env |= {k: evaluate(str(v), context) for k, v in step.get("env", {}).items()}
        script = step["run"] if install or step["id"] != "install" else fake_install(runner_temp)
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], env=env,
                              cwd=workspace, capture_output=True, text=True, timeout=240)
        codes.append(proc.returncode)
        stdout, stderr = stdout + proc.stdout, stderr + proc.stderr
        for key, value in read_outputs(output).items():
            context[f"steps.{step['id']}.outputs.{key}"] = value
        if proc.returncode != 0:
            break
    outputs = {name: evaluate(spec["value"], context | {k: "" for k in _output_refs(action) if k not in context})
               for name, spec in action["outputs"].items()}
    return ActionRun(outputs, codes, stdout, stderr, summary.read_text() if summary.exists() else "")


def _output_refs(action: dict) -> list[str]:
    return [m.group(1) for spec in action["outputs"].values() for m in EXPRESSION.finditer(spec["value"])]


def test_action_yml_validates_against_githubs_schema() -> None:
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-actions",
                           str(ACTION)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_inputs_reach_the_steps_only_through_env() -> None:
    action = load_action()
    text = ACTION.read_text()
    referenced = set(re.findall(r"\binputs\.([A-Za-z0-9_-]+)", text))
    assert referenced <= set(action["inputs"]), referenced - set(action["inputs"])
    assert referenced == set(action["inputs"])  # every input is used
    for step in action["runs"]["steps"]:
        assert "${{" not in step["run"], step["id"]
    for name, spec in action["inputs"].items():
        assert isinstance(spec["default"], str) and name == name.lower()


def _workspace(project: Project) -> Path:
    git(project.work, "remote", "set-url", "origin", "https://github.com/acme/shop.git")
    return project.work


def test_the_action_opens_the_pull_request_and_sets_outputs_and_summary(
        project: Project, github: GitHubServer, tmp_path: Path) -> None:
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "TEST_GITHUB_TOKEN": TOKEN_CANARY, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    run = run_action(tmp_path, _workspace(project), {"destination": project.destination, "labels": "rehome,images",
                                                     "reviewers": "alice"}, environ)
    assert run.codes == [0, 1], run.stderr  # gone:1 could not be copied: the step fails, the PR is open
    assert run.outputs == {"pr-url": f"{github.origin}/acme/shop/pull/1", "pr-number": "1", "changed": "true",
                           "moved-count": "3", "unresolved-count": "1", "status": "opened", "findings": ""}
    data = json.loads(run.stdout[run.stdout.index("{"): run.stdout.rindex("}") + 1])
    assert (data["version"], data["moved"], data["failed"]) == (1, 3, 1)
    sidecar = f"{project.upstream}/{project.prefix}/gone:1"
    assert f"::error file=deploy/app.yaml,line=12,col=19::{sidecar} was not moved (failed): " in run.stdout
    assert run.summary.startswith("# rehome: acme/shop\n\n**3 images** from 1 registry")
    assert f"moved to `{project.destination}`" in run.summary
    for digest in project.digests.values():
        assert digest in run.summary
    log = project.remote_git("log", "--format=%an <%ae>", "main..rehome/mirror-images")
    assert log == "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"
    assert [r.body for r in github.writes() if r.path.endswith("/requested_reviewers")] == [{"reviewers": ["alice"]}]
    assert {r.authorization for r in github.requests} == {f"token {TOKEN_CANARY}"}
    for text in (run.stdout, run.stderr, run.summary, json.dumps(run.outputs)):
        assert TOKEN_CANARY not in text


def test_the_action_dry_run_writes_nothing(project: Project, github: GitHubServer, tmp_path: Path) -> None:
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "TEST_GITHUB_TOKEN": TOKEN_CANARY, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    pulls = tmp_path / "pulls.csv"
    pulls.write_text(f"imageName,numberOfPulls\n{project.upstream}/{project.prefix}/app:1,321\n")
    run = run_action(tmp_path, _workspace(project), {"destination": project.destination, "dry-run": "true",
                                                     "pulls": str(pulls)}, environ)
    # gone:1 is not upstream: the dry run fails the step as the real run would, and does not count it as moving.
    assert run.codes == [0, 1], run.stderr
    # A dry run pushes nothing: `changed` is false, though the JSON says files would change.
    assert run.outputs == {"pr-url": "", "pr-number": "", "changed": "false", "moved-count": "3",
                           "unresolved-count": "1", "status": "dry-run", "findings": ""}
    assert '"changed": true' in run.stdout and '"failed": 1' in run.stdout
    gone = f"{project.upstream}/{project.prefix}/gone"
    assert run.stdout.endswith(f"::error file=deploy/app.yaml,line=12,col=19::{gone}:1 was not moved (failed): "
                               "resolve tag 1: no such image (manifest unknown)\n")
    assert run.summary.startswith("# rehome: acme/shop\n\n> **Dry run.**")
    assert "**3 images** from 1 registry" in run.summary
    assert "| 321 |" in run.summary and "Pulls: counted from `pulls.csv" in run.summary
    assert github.writes() == [] and project.remote_git("branch", "--list") == "* main"


def test_a_bot_package_in_the_repository_never_runs_in_rehomes_place(project: Project, github: GitHubServer,
                                                                     tmp_path: Path) -> None:
    workspace = _workspace(project)
    (workspace / "bot").mkdir()
    (workspace / "bot" / "__init__.py").write_text("")
    (workspace / "bot" / "action.py").write_text("print('the repository s own code ran')\n")
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "TEST_GITHUB_TOKEN": TOKEN_CANARY, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    run = run_action(tmp_path, workspace, {"destination": project.destination, "dry-run": "true"}, environ)
    assert run.codes == [0, 1], run.stderr  # gone:1 is not upstream
    assert "own code ran" not in run.stdout + run.stderr
    assert run.outputs["moved-count"] == "3"


@pytest.mark.parametrize("value", ["yes", "1", "on"])
def test_a_dry_run_input_that_is_not_true_or_false_is_refused_not_read_as_false(
        project: Project, github: GitHubServer, tmp_path: Path, value: str) -> None:
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "TEST_GITHUB_TOKEN": TOKEN_CANARY, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    run = run_action(tmp_path, _workspace(project), {"destination": project.destination, "dry-run": value}, environ)
    assert run.codes == [0, 2]
    assert run.stdout.endswith(f"::error::the dry-run input must be true or false, not {value!r}\n")
    assert github.writes() == [] and project.remote_git("branch", "--list") == "* main"


@pytest.mark.slow
def test_the_install_step(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    # The action's checkout: the tracked files, copied (pip builds in the tree it installs from).
    action_path = tmp_path / "action"
    for name in subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True,
                               check=True).stdout.split("\0"):
        if name and (ROOT / name).is_file():
            (action_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, action_path / name)
    run = run_action(tmp_path, workspace, {}, {}, install=True, only=("install",), action_path=action_path)
    assert run.codes == [0], run.stderr
    python = tmp_path / "runner-temp" / "rehome-venv" / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "bot", "--version"], capture_output=True, text=True, timeout=60,
                          cwd=workspace)
    assert proc.returncode == 0 and proc.stdout.startswith("rehome "), proc.stderr


def test_what_could_not_be_set_on_the_pull_request_is_a_warning_annotation() -> None:
    warning = ("https://github.com/acme/shop/pull/1: its reviewers could not be set (GitHub: request reviewers: 422 "
               "Reviews may only be requested from collaborators); the next run tries again")
    pull = PullRequest(1, "https://github.com/acme/shop/pull/1", "title", "body", (warning,))
    assert annotations(RunResult("acme/shop", "opened", "", pull_request=pull)) == [f"::warning::{warning}"]


def test_input_values_starting_with_a_dash_are_values_not_flags(project: Project, github: GitHubServer,
                                                                tmp_path: Path) -> None:
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "TEST_GITHUB_TOKEN": TOKEN_CANARY, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    inputs = {"destination": project.destination, "dry-run": "true", "labels": "-wip,images"}
    run = run_action(tmp_path, _workspace(project), inputs, environ)
    assert run.codes == [0, 1], run.stdout + run.stderr  # gone:1 is not upstream
    run = run_action(tmp_path, _workspace(project), {**inputs, "branch": "--force"}, environ)
    assert run.codes == [0, 2]
    assert run.stdout == ("::error::the branch input: '--force' is not a usable branch name%0Ahint: a name such as "
                          "rehome/mirror-images: no spaces, no '..', not starting with '-' or refs/\n")
    assert "usage:" not in run.stderr


@pytest.mark.parametrize(("inputs", "message"), [
    ({"branch": "main"}, "the branch input: 'main' is the base branch itself; the bot's branch must be another "
                         "one%0Ahint: choose another branch with the branch input, or leave it out (rehome/mirror-images)"),
    ({"pulls": "{tmp}/nonexistent"}, "the pulls input: {tmp}/nonexistent: no such file"),
    ({"pulls": "bigquery://acme-logs"}, "the pulls input: bigquery://acme-logs: expected bigquery://PROJECT.DATASET "
                                        "(for example bigquery://acme-prod.pull_logs)"),
    ({"branch": "a..b"}, "the branch input: 'a..b' is not a usable branch name%0Ahint: a name such as "
                         "rehome/mirror-images: no spaces, no '..', not starting with '-' or refs/"),
    ({"destination": "Bad Dest"}, "the destination input: destination 'Bad Dest' is not a registry path: invalid "
                                  "reference format: path component 'Bad Dest' must be lowercase letters and digits, "
                                  "joined by one '.', one or two '_', or dashes"),
    ({"recreate-closed": "yes"}, "the recreate-closed input must be true or false, not 'yes'"),
])
def test_an_input_rehome_refuses_later_is_named_too(project: Project, github: GitHubServer, tmp_path: Path,
                                                    inputs: dict[str, str], message: str) -> None:
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "TEST_GITHUB_TOKEN": TOKEN_CANARY, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    given = {name: value.format(tmp=tmp_path) for name, value in inputs.items()}
    run = run_action(tmp_path, _workspace(project), {"destination": project.destination, **given}, environ)
    assert (run.codes, run.stdout) == ([0, 2], f"::error::{message.format(tmp=tmp_path)}\n")
    assert github.writes() == []


def test_an_argument_argparse_refuses_names_the_action_input() -> None:
    with pytest.raises(UsageError) as caught:
        _parse(["run", ".", "--labels"])
    assert str(caught.value) == "the labels input: expected one argument"


def test_a_github_api_url_that_is_not_a_url_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        _parse(run_arguments({"GITHUB_WORKSPACE": str(tmp_path), "GITHUB_API_URL": "github.acme.com",
                              "REHOME_DESTINATION": "reg.example.com/mirror"}))
    assert str(caught.value) == ("GITHUB_API_URL (the GitHub API the runner names): 'github.acme.com' is not an "
                                 "http(s) URL, e.g. https://github.example.com")


def test_a_missing_token_names_the_token_input(project: Project, github: GitHubServer, tmp_path: Path) -> None:
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    run = run_action(tmp_path, _workspace(project), {"destination": project.destination, "token": ""}, environ)
    assert run.codes == [0, 2]
    assert run.stdout == ("::error::no GitHub token: the action's token input is empty%0Ahint: leave the token input "
                          "out to use the workflow's GITHUB_TOKEN, or give it a token that may push and open pull "
                          "requests (a secret that is not defined reads as empty)\n")
    assert github.requests == []


def test_a_pull_request_closed_without_merging_is_the_outputs_and_the_summary_says_why(
        project: Project, github: GitHubServer, tmp_path: Path) -> None:
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "TEST_GITHUB_TOKEN": TOKEN_CANARY, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    for each in ("first", "second", "branch-gone", "third"):  # each run its own summary file
        (tmp_path / each).mkdir()
    run_action(tmp_path / "first", _workspace(project), {"destination": project.destination}, environ)
    github.close_pull("acme/shop", 1)
    url = f"{github.origin}/acme/shop/pull/1"
    run = run_action(tmp_path / "second", project.work, {"destination": project.destination}, environ)
    assert run.codes == [0, 1]  # gone:1 could not be copied
    assert run.outputs == {"pr-url": url, "pr-number": "1", "changed": "false", "moved-count": "3",
                           "unresolved-count": "1", "status": "declined", "findings": ""}
    assert run.summary.startswith(
        f"> The pull request <{url}> was closed without merging, and this change is the same: it is not proposed "
        "again. Reopen it, or set the `recreate-closed` input to `true` for a new one.\n\n# rehome: acme/shop\n\n")
    assert [(p["number"], p["state"]) for p in github.repos["acme/shop"].pulls] == [(1, "closed")]
    # GitHub reopens no pull request whose branch is gone.
    project.remote_git("branch", "-D", "rehome/mirror-images")
    run = run_action(tmp_path / "branch-gone", project.work, {"destination": project.destination}, environ)
    assert (run.outputs["status"], run.summary.split("\n\n")[0]) == ("declined", (
        f"> The pull request <{url}> was closed without merging, and this change is the same: it is not proposed "
        "again. Restore its branch and reopen it, or set the `recreate-closed` input to `true` for a new one."))
    run = run_action(tmp_path / "third", project.work, {"destination": project.destination, "recreate-closed": "true"},
                     environ)
    assert (run.outputs["pr-number"], run.outputs["status"]) == ("2", "opened")


def test_a_retargeted_pull_request_is_said_above_the_summary(project: Project, github: GitHubServer,
                                                              tmp_path: Path) -> None:
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "TEST_GITHUB_TOKEN": TOKEN_CANARY, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    for each in ("first", "second"):  # each run its own summary file
        (tmp_path / each).mkdir()
    run_action(tmp_path / "first", _workspace(project), {"destination": project.destination}, environ)
    git(project.work, "checkout", "-q", "-b", "trunk")
    git(project.work, "commit", "-q", "--allow-empty", "-m", "trunk")
    git(project.work, "push", "-q", str(project.remote), "trunk")  # origin is github.com now
    github.repos["acme/shop"].default_branch = "trunk"
    run = run_action(tmp_path / "second", project.work, {"destination": project.destination}, environ)
    assert (run.outputs["status"], github.repos["acme/shop"].pulls[0]["base"]) == ("updated", "trunk")
    assert run.summary.startswith(f"> The pull request <{github.origin}/acme/shop/pull/1> now merges into `trunk`, "
                                  "the default branch, not `main`.\n\n# rehome: acme/shop\n\n")


def test_the_branch_rehome_run_made_is_the_actions_to_update_and_a_strangers_commit_names_the_branch_input(
        project: Project, github: GitHubServer, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "run", "acme/shop", "--to", project.destination, "--github-url", github.base_url,
                           "--token-env", TOKEN_ENV)
    assert code == 1, err  # by rehome-bot; gone:1 could not be copied
    (project.work / "README.md").write_text("the shop\n")
    git(project.work, "add", "README.md")
    git(project.work, "commit", "-q", "-m", "readme")
    git(project.work, "push", "-q", "origin", "main")
    environ = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": github.base_url,
               "TEST_GITHUB_TOKEN": TOKEN_CANARY, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    run = run_action(tmp_path, _workspace(project), {"destination": project.destination}, environ)
    assert "stopped" not in run.stdout and run.outputs["changed"] == "true", run.stdout
    assert project.remote_git("log", "-1", "--format=%an", "rehome/mirror-images") == "github-actions[bot]"
    git(project.work, "fetch", "-q", str(project.remote), "rehome/mirror-images:fix")  # origin is github.com now
    git(project.work, "checkout", "-q", "fix")
    (project.work / "NOTES.md").write_text("a reviewer's fix\n")
    git(project.work, "add", "NOTES.md")
    git(project.work, "commit", "-q", "-m", "fix by hand")
    git(project.work, "push", "-q", str(project.remote), "fix:rehome/mirror-images")
    git(project.work, "checkout", "-q", "main")
    run = run_action(tmp_path, project.work, {"destination": project.destination}, environ)
    assert run.codes == [0, 1]
    # Its pull request is still open, left as it is: the outputs name it.
    assert run.outputs == {"pr-url": f"{github.origin}/acme/shop/pull/1", "pr-number": "1", "changed": "false",
                           "moved-count": "0", "unresolved-count": "0", "status": "stopped", "findings": ""}
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("::error::")]
    assert line.startswith("::error::acme/shop: stopped: the branch rehome/mirror-images holds commits by someone "
                           "other than github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com> (")
    assert line.endswith(" by t <t@example.com>); it is not overwritten. Merge or delete that branch, or choose "
                         "another with the branch input")
