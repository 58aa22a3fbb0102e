"""The Action's `mode: check` (with `sync`): the gate on pull requests, run through `action.yml`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.action import pull_request_base
from bot.errors import UsageError
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP, git, write_tree
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo
from tests.run.test_action import run_action


def _pull_request(tmp_path: Path, base: str, head_repo: str = "acme/shop") -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"base": {"sha": base, "repo": {"full_name": "acme/shop"}},
                                                  "head": {"repo": {"full_name": head_repo}}}}))
    return {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/shop"}


def _repository(tmp_path: Path, files: dict[str, str], change: dict[str, str]) -> tuple[Path, str]:
    """A clone whose base commit holds `files` and whose pull request commit adds `change`; the base
    is only on the remote, as in a shallow pull request checkout."""
    origin = write_tree(tmp_path / "origin", files)
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "base")
    base = git(origin, "rev-parse", "HEAD").strip()
    write_tree(origin, change)
    git(origin, "checkout", "-qb", "bump")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "bump")
    workspace = tmp_path / "workspace"
    git(tmp_path, "clone", "-q", "--depth=1", "--branch", "bump", f"file://{origin}", str(workspace))
    return workspace, base


def test_check_mode_fails_only_on_references_the_pull_request_adds(tmp_path: Path) -> None:
    dest = "us-docker.pkg.dev/acme/mirror"
    pod = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: {}\n"
    workspace, base = _repository(
        tmp_path,
        {"old.yaml": pod.format("redis:7"), "rehome.yaml": f"destination: {dest}\n"},
        {"new.yaml": pod.format("nginx:1.27"), "moved.yaml": pod.format(f"{dest}/docker.io/library/nginx:1.27")},
    )
    run = run_action(tmp_path, workspace, {"mode": "check"}, _pull_request(tmp_path, base))
    assert run.codes == [0, 1], run.stderr
    assert (f"::error file=new.yaml,line=5,col=14::third-party image docker.io/library/nginx:1.27: "
            f"use {dest}/docker.io/library/nginx:1.27") in run.stdout
    assert "old.yaml" not in run.stdout.split("::error", 1)[1]  # already there before the pull request
    assert run.outputs["findings"] == "1"
    assert run.summary == (
        "## rehome check\n\n"
        f"1 third-party image reference added since `{base[:12]}`, 0 unresolved.\n"
        "- error: `new.yaml:5` third\\-party image docker\\.io/library/nginx\\:1\\.27\\: use "
        "us\\-docker\\.pkg\\.dev/acme/mirror/docker\\.io/library/nginx\\:1\\.27\n"
    )


def test_check_mode_names_the_files_it_could_not_read_without_failing(tmp_path: Path) -> None:
    workspace, base = _repository(tmp_path, {"rehome.yaml": "destination: us-docker.pkg.dev/acme/mirror\n"},
                                  {"pod.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{image: nginx:1\n"})
    run = run_action(tmp_path, workspace, {"mode": "check"}, _pull_request(tmp_path, base))
    assert run.codes == [0, 0], run.stderr
    reason = "not valid YAML: expected ',' or '}', but got '<stream end>' (line 5, column 1)"
    assert (f"::warning file=pod.yaml::skipped: {reason}; the image references in it are not checked"
            in run.stdout.splitlines())
    assert run.summary == (
        "## rehome check\n\n"
        f"0 third-party image references added since `{base[:12]}`, 0 unresolved, 1 file not read.\n"
        "- warning: `pod.yaml` skipped\\: not valid YAML\\: expected ',' or '\\}', but got '&lt;stream end&gt;' "
        "\\(line 5, column 1\\); the image references in it are not checked\n"
    )


def _moving_to_a_tag_the_mirror_lacks(tmp_path: Path, loopback: Loopback,
                                      name: str) -> tuple[Path, str, str, str, images.Image]:
    """A repository whose pull request moves `app.yaml` from the mirror's copy of `NAME:1.0` to `:1.1`, which only
    the upstream registry has: (its workspace, the pull request's base, the upstream repository, the mirror
    repository, the image `1.1` is)."""
    up, down = loopback.upstream.host, loopback.target.host
    repo, dest = unique_repo(name), f"{down}/mirror"
    source, mirrored = f"{up}/{repo}", f"{dest}/{up.replace(':', '__')}/{repo}"
    images.push(up, repo, images.image((128,)), "1.0")
    new = images.image((256,))
    images.push(up, repo, new, "1.1")
    from bot.cli import main
    assert main(["copy", f"{source}:1.0", f"{mirrored}:1.0", "-q"]) == 0
    pod = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: {}\n"
    workspace, base = _repository(
        tmp_path,
        {"app.yaml": pod.format(f"{mirrored}:1.0"), "rehome.yaml": f"destination: {dest}\n"},
        {"app.yaml": pod.format(f"{mirrored}:1.1")},
    )
    return workspace, base, source, mirrored, new


def test_check_mode_with_sync_copies_the_new_tag_first(tmp_path: Path, loopback: Loopback) -> None:
    environ = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    assert run_action(tmp_path, tmp_path, {}, environ, only=("install",)).codes == [0]
    workspace, base, source, mirrored, new = _moving_to_a_tag_the_mirror_lacks(tmp_path, loopback, "action-sync")
    run = run_action(tmp_path, workspace, {"mode": "check", "sync": "true"}, environ | _pull_request(tmp_path, base))
    assert run.codes == [0, 0], run.stderr
    assert run.summary.startswith(
        "## rehome sync\n\n1 copied, 0 already in the mirror, 0 refused.\n"
        f"- copied `{source}:1.1` to `{mirrored}:1.1`\n"
    )
    from bot.registry import Registries
    from bot.registry.manifests import head_digest
    with Registries() as registries:
        host, repository = mirrored.split("/", 1)
        assert head_digest(registries.get(host), repository, "1.1") == new.digest


def test_check_mode_never_syncs_a_pull_request_from_a_fork(tmp_path: Path) -> None:
    dest = "127.0.0.1:1/mirror"
    pod = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: {}\n"
    workspace, base = _repository(tmp_path, {"rehome.yaml": f"destination: {dest}\n"},
                                  {"app.yaml": pod.format(f"{dest}/docker.io/library/nginx:9")})
    run = run_action(tmp_path, workspace, {"mode": "check", "sync": "true"},
                     _pull_request(tmp_path, base, head_repo="mallory/shop"))
    assert run.codes == [0, 0], run.stderr
    assert run.summary.startswith(
        "## rehome sync\n\nrehome sync does not run for pull requests from forks: the mirror is left as it is.\n")


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    run = run_action(tmp_path, tmp_path, {"mode": "migrat"}, {})
    assert run.codes == [0, 2]
    assert "::error::the mode input must be one of migrate, check, not 'migrat'" in run.stdout


@pytest.mark.parametrize(("event", "problem"), [
    pytest.param(DEEP_JSON, f"{{path}}: cannot read the GitHub event: {NESTED_TOO_DEEP}", id="nested-too-deep"),
    ('{"pull_request": {"base": ["x"]}}', "{path}: the GitHub event names no pull request base (pull_request.base.sha)"),
])
def test_a_pull_request_event_without_a_readable_base_is_refused_naming_the_file(tmp_path: Path, event: str,
                                                                                 problem: str) -> None:
    path = tmp_path / "event.json"
    path.write_text(event)
    with pytest.raises(UsageError) as caught:
        pull_request_base({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(path)})
    assert str(caught.value) == problem.format(path=path)


def test_check_mode_lists_what_sync_copied_when_the_check_then_stops(tmp_path: Path, loopback: Loopback) -> None:
    environ = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    workspace, _, source, mirrored, _ = _moving_to_a_tag_the_mirror_lacks(tmp_path, loopback, "action-sync-stop")
    gone = "0" * 40  # a base the remote does not have: the check cannot run
    run = run_action(tmp_path, workspace, {"mode": "check", "sync": "true"}, environ | _pull_request(tmp_path, gone))
    assert run.codes == [0, 2], run.stderr
    assert f"::error::cannot fetch the pull request's base {gone}: " in run.stdout
    assert run.summary == (
        "## rehome sync\n\n1 copied, 0 already in the mirror, 0 refused.\n"
        f"- copied `{source}:1.1` to `{mirrored}:1.1`\n\n"
    )
