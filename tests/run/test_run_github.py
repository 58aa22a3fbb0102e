"""`rehome run OWNER/NAME --forge github` end to end: a bare git remote, the GitHub stand-in,
real loopback registries."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.github.server import GitHubServer
from tests.helpers import git, run_cli
from tests.oci import images
from tests.run.conftest import TOKEN_CANARY, TOKEN_ENV, Project

ROOT = Path(__file__).resolve().parent.parent.parent
BRANCH = "rehome/mirror-images"
ACCEPT = ", ".join([images.DOCKER_MANIFEST, images.OCI_MANIFEST, images.OCI_INDEX])


def run_github(capsys, project: Project, github: GitHubServer, *extra: str) -> tuple[int, dict, str]:
    code, out, err = run_cli(capsys, "run", "acme/shop", "--to", project.destination, "--github-url",
                             github.base_url, "--token-env", TOKEN_ENV, "--format", "json", *extra)
    return code, json.loads(out), err


def mirror_name(project: Project, name: str) -> str:
    return f"{project.destination}/{project.upstream.replace(':', '__')}/{project.prefix}/{name}"


def branch_diff(project: Project) -> str:
    diff = project.remote_git("diff", "main", BRANCH)
    return "".join(line + "\n" for line in diff.splitlines() if not line.startswith("index "))


def expected_diff(project: Project) -> str:
    up, p, m = project.upstream, project.prefix, mirror_name
    mirror_host, mirror_path = project.mirror, mirror_name(project, "redis").split("/", 1)[1]
    return f"""\
diff --git a/Dockerfile b/Dockerfile
--- a/Dockerfile
+++ b/Dockerfile
@@ -1,2 +1,2 @@
-FROM {up}/{p}/nginx:1.27
+FROM {m(project, "nginx")}:1.27
 RUN echo hello
diff --git a/chart/values.yaml b/chart/values.yaml
--- a/chart/values.yaml
+++ b/chart/values.yaml
@@ -1,5 +1,5 @@
 cache:
   image:
-    registry: {up}
-    repository: {p}/redis
+    registry: {mirror_host}
+    repository: {mirror_path}
     tag: "7.4"
diff --git a/deploy/app.yaml b/deploy/app.yaml
--- a/deploy/app.yaml
+++ b/deploy/app.yaml
@@ -7,7 +7,7 @@ spec:
     spec:
       containers:
         - name: app
-          image: {up}/{p}/app:1  # the app
+          image: {m(project, "app")}:1  # the app
         - name: sidecar
           image: "{up}/{p}/gone:1"
         - name: job
diff --git a/docker-compose.yml b/docker-compose.yml
--- a/docker-compose.yml
+++ b/docker-compose.yml
@@ -1,3 +1,3 @@
 services:
   cache:
-    image: {up}/{p}/redis:7.4
+    image: {m(project, "redis")}:7.4
"""


def mirror_digest(reference: str) -> str:
    host, rest = reference.split("/", 1)
    repo, tag = rest.rsplit(":", 1)
    response = httpx.head(f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def test_run_opens_one_pull_request_for_the_verified_images(project: Project, github: GitHubServer, capsys) -> None:
    code, result, err = run_github(capsys, project, github)
    up, p = project.upstream, project.prefix
    # gone:1 is not upstream: it could not be copied, so exit 1 although the PR for the others opened.
    assert code == 1
    assert {k: v for k, v in result.items() if k != "images"} == {
        "version": 1, "status": "opened", "pr_url": f"{github.origin}/acme/shop/pull/1", "pr_number": 1,
        "changed": True, "moved": 3, "unresolved": 1, "failed": 1, "warnings": []}
    assert [(i["source"], i["status"]) for i in result["images"]] == [
        (f"{up}/{p}/app:1", "copied"), (f"{up}/{p}/gone:1", "failed"),
        (f"{up}/{p}/nginx:1.27", "copied"), (f"{up}/{p}/redis:7.4", "copied")]
    assert branch_diff(project) == expected_diff(project)
    log = project.remote_git("log", "--format=%an <%ae>|%P", f"main..{BRANCH}").splitlines()
    assert log == [f"rehome-bot <rehome-bot@users.noreply.github.com>|{project.remote_git('rev-parse', 'main')}"]
    writes = [(r.method, r.path) for r in github.writes()]
    assert writes == [("POST", "/repos/acme/shop/pulls"), ("POST", "/repos/acme/shop/labels"),
                      ("POST", "/repos/acme/shop/issues/1/labels")]
    create = github.writes()[0].body
    assert (create["head"], create["base"], create["draft"]) == (BRANCH, "main", False)
    assert create["title"] == f"Move 3 container images to {project.destination}"
    for source, digest in project.digests.items():
        name = source.rsplit("/", 1)[1]
        target = f"{mirror_name(project, name.split(':')[0])}:{name.split(':')[1]}"
        assert source in create["body"] and target in create["body"] and digest in create["body"]
        assert mirror_digest(target) == digest
    assert "no such image" in create["body"] and "contains a variable" in create["body"]
    assert github.writes()[1].body["name"] == "rehome"
    assert TOKEN_CANARY not in err + json.dumps(result) + create["body"]
    assert TOKEN_CANARY not in (project.remote / "config").read_text()


def test_a_second_run_with_nothing_new_changes_nothing(project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    head = project.remote_git("rev-parse", BRANCH)
    writes = len(github.writes())
    code, result, err = run_github(capsys, project, github, "-v")
    assert (code, result["changed"], result["pr_number"], result["moved"]) == (1, False, 1, 3)
    assert [i["status"] for i in result["images"]] == ["present", "failed", "present", "present"]
    assert project.remote_git("rev-parse", BRANCH) == head
    assert len(github.writes()) == writes  # no new PR, no edit
    assert f"nothing new; {github.origin}/acme/shop/pull/1 already holds this change" in err


def test_a_change_on_the_base_rebuilds_the_branch_and_edits_the_same_pull_request(
        project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    (project.work / "README.md").write_text("the shop\n")
    git(project.work, "add", "README.md")
    git(project.work, "commit", "-q", "-m", "readme")
    git(project.work, "push", "-q", "origin", "main")
    before = len(github.writes())
    code, result, _ = run_github(capsys, project, github)
    assert (code, result["changed"], result["pr_number"]) == (1, True, 1)
    assert project.remote_git("rev-parse", f"{BRANCH}^") == project.remote_git("rev-parse", "main")
    assert project.remote_git("rev-list", "--count", f"main..{BRANCH}") == "1"
    assert branch_diff(project) == expected_diff(project)
    assert [(r.method, r.path) for r in github.writes()[before:]] == [("PATCH", "/repos/acme/shop/pulls/1")]
    assert len(github.repos["acme/shop"].pulls) == 1


def test_a_branch_with_someone_elses_commit_is_not_overwritten(project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    git(project.work, "fetch", "-q", "origin")
    git(project.work, "checkout", "-q", "-b", "fix", f"origin/{BRANCH}")
    (project.work / "NOTES.md").write_text("a reviewer's fix\n")
    git(project.work, "add", "NOTES.md")
    git(project.work, "commit", "-q", "-m", "fix by hand")  # by t <t@example.com>
    git(project.work, "push", "-q", "origin", f"fix:{BRANCH}")
    git(project.work, "checkout", "-q", "main")
    (project.work / "README.md").write_text("the shop\n")
    git(project.work, "add", "README.md")
    git(project.work, "commit", "-q", "-m", "readme")
    git(project.work, "push", "-q", "origin", "main")
    head = project.remote_git("rev-parse", BRANCH)
    before = len(github.writes())
    code, result, err = run_github(capsys, project, github)
    # Its pull request is named all the same: still open, left as it is.
    assert (code, {k: v for k, v in result.items() if k != "images"}) == (1, {
        "version": 1, "status": "stopped", "pr_url": f"{github.origin}/acme/shop/pull/1", "pr_number": 1,
        "changed": False, "moved": 0, "unresolved": 0, "failed": 0, "warnings": []})
    assert project.remote_git("rev-parse", BRANCH) == head
    assert github.writes()[before:] == []
    assert f"the branch {BRANCH} holds commits by someone other than rehome-bot" in err
    assert "by t <t@example.com>" in err


def _push_to(project: Project, branch: str, name: str, text: str) -> None:
    """A commit on `branch` of the remote (made from the developer's clone), adding the file `name`."""
    git(project.work, "checkout", "-q", "-B", branch)
    (project.work / name).write_text(text)
    git(project.work, "add", name)
    git(project.work, "commit", "-q", "-m", f"add {name}")
    git(project.work, "push", "-q", "origin", branch)


def test_after_the_default_branch_changes_the_open_pull_request_is_retargeted_before_the_push(
        project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    _push_to(project, "trunk", "README.md", "the shop\n")  # main and one more commit
    github.repos["acme/shop"].default_branch = "trunk"
    pull, url = github.repos["acme/shop"].pulls[0], f"{github.origin}/acme/shop/pull/1"
    before = len(github.writes())
    code, result, err = run_github(capsys, project, github)
    assert (code, {k: v for k, v in result.items() if k != "images"}) == (1, {
        "version": 1, "status": "updated", "pr_url": url, "pr_number": 1, "changed": True, "moved": 3,
        "unresolved": 1, "failed": 1, "warnings": []})
    # The base changed before the branch moved onto trunk: the pull request never showed trunk's commit as the bot's.
    assert [(r.method, r.path, r.body if "base" in r.body else "title and body") for r in github.writes()[before:]] == [
        ("PATCH", "/repos/acme/shop/pulls/1", {"base": "trunk"}),
        ("PATCH", "/repos/acme/shop/pulls/1", "title and body")]
    assert (len(github.repos["acme/shop"].pulls), pull["base"]) == (1, "trunk")
    assert project.remote_git("rev-parse", f"{BRANCH}^") == project.remote_git("rev-parse", "trunk")
    assert err.splitlines()[-1] == (f"acme/shop: updated {url} (3 images moved); its base is now trunk, the default "
                                    "branch, not main")
    # A branch already on trunk whose pull request is still into main (an earlier rehome pushed, then stopped).
    pull["base"] = "main"
    before = len(github.writes())
    code, result, err = run_github(capsys, project, github)
    assert (code, result["status"], result["changed"], pull["base"]) == (1, "unchanged", False, "trunk")
    assert [(r.method, r.path, r.body) for r in github.writes()[before:]] == [
        ("PATCH", "/repos/acme/shop/pulls/1", {"base": "trunk"})]
    assert err.splitlines()[-1] == (f"acme/shop: nothing new; {url} already holds this change; its base is now trunk, "
                                    "the default branch, not main")


def test_the_change_of_a_pull_request_closed_without_merging_is_not_proposed_again(
        project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    github.close_pull("acme/shop", 1)
    head, before = project.remote_git("rev-parse", BRANCH), len(github.writes())
    declined = {"version": 1, "status": "declined", "pr_url": f"{github.origin}/acme/shop/pull/1", "pr_number": 1,
                "changed": False, "moved": 3, "unresolved": 1, "failed": 1, "warnings": []}
    code, result, err = run_github(capsys, project, github)
    assert (code, {k: v for k, v in result.items() if k != "images"}) == (1, declined)  # gone:1: exit 1 as ever
    assert err.splitlines()[-1] == (f"acme/shop: {github.origin}/acme/shop/pull/1 was closed without merging, and this "
                                    "change is the same: it is not proposed again (reopen it, or run with "
                                    "--recreate-closed for a new pull request)")
    assert (github.writes()[before:], project.remote_git("rev-parse", BRANCH)) == ([], head)
    # The branch deleted as the pull request was closed: its last commit is read from GitHub, and the
    # pull request can be reopened only once its branch is restored.
    project.remote_git("branch", "-D", BRANCH)
    code, result, err = run_github(capsys, project, github)
    assert (code, {k: v for k, v in result.items() if k != "images"}) == (1, declined)
    assert (github.writes()[before:], project.remote_git("branch", "--list", BRANCH)) == ([], "")
    assert err.splitlines()[-1] == (f"acme/shop: {github.origin}/acme/shop/pull/1 was closed without merging, and this "
                                    "change is the same: it is not proposed again (restore its branch and reopen it, "
                                    "or run with --recreate-closed for a new pull request)")
    # Asked to, it opens a new one.
    code, result, err = run_github(capsys, project, github, "--recreate-closed")
    assert (code, result["status"], result["pr_number"], result["changed"]) == (1, "opened", 2, True)
    assert [(p["number"], p["state"]) for p in github.repos["acme/shop"].pulls] == [(1, "closed"), (2, "open")]


def test_an_edit_on_the_base_beside_the_lines_of_a_declined_change_leaves_it_declined(
        project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    github.close_pull("acme/shop", 1)
    before = len(github.writes())
    dockerfile = project.remote_git("show", "main:Dockerfile") + "\n"
    _push_to(project, "main", "Dockerfile", "# the shop's image\n" + dockerfile)
    code, result, err = run_github(capsys, project, github)
    assert (code, result["status"], result["pr_number"], github.writes()[before:]) == (1, "declined", 1, [])
    # An edit of a line the change rewrites makes it another change.
    _push_to(project, "main", "Dockerfile", dockerfile.replace(":1.27", ":1.27 AS build"))
    code, result, err = run_github(capsys, project, github)
    assert (code, result["status"], result["pr_number"]) == (1, "opened", 2)


def test_a_closed_pull_request_whose_last_commit_is_gone_does_not_stop_the_change(
        project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    github.close_pull("acme/shop", 1)
    project.remote_git("branch", "-D", BRANCH)
    project.remote_git("update-ref", "-d", "refs/pull/1/head")
    code, result, err = run_github(capsys, project, github)
    assert (code, result["status"], result["pr_url"], result["changed"]) == (
        1, "opened", f"{github.origin}/acme/shop/pull/2", True)
    warnings = [line for line in err.splitlines() if "closed pull request" in line]
    assert warnings == ["acme/shop: cannot read closed pull request #1's last commit: git fetch "
                        "failed: fatal: couldn't find remote ref refs/pull/1/head; proposing the change"]


def test_a_push_refused_after_the_retarget_names_the_repository_and_says_the_base_changed(
        project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    _push_to(project, "trunk", "README.md", "the shop\n")
    github.repos["acme/shop"].default_branch = "trunk"
    hook = project.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    code, out, err = run_cli(capsys, "run", "acme/shop", "--to", project.destination, "--github-url",
                             github.base_url, "--token-env", TOKEN_ENV, "--format", "json")
    url = f"{github.origin}/acme/shop/pull/1"
    assert (code, out, github.repos["acme/shop"].pulls[0]["base"]) == (1, "", "trunk")
    error = re.sub("[0-9a-f]{40}", "SHA", err.split("rehome: error: ", 1)[1])
    assert error == (
        f"acme/shop: {url} was retargeted (its base is now trunk, the default branch, not main), but git push failed: "
        f"remote: pushes are frozen\nTo file://{project.remote}\n ! [remote rejected] SHA -> {BRANCH} "
        f"(pre-receive hook declined)\nerror: failed to push some refs to 'file://{project.remote}'\n")


def test_a_new_change_after_a_pull_request_closed_without_merging_is_proposed(
        project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    github.close_pull("acme/shop", 1)
    _push_to(project, "main", "Dockerfile.cron", f"FROM {project.upstream}/{project.prefix}/app:1\n")
    code, result, err = run_github(capsys, project, github)
    assert (code, result["status"], result["pr_url"], result["changed"], result["moved"]) == (
        1, "opened", f"{github.origin}/acme/shop/pull/2", True, 3)
    assert [(p["number"], p["state"]) for p in github.repos["acme/shop"].pulls] == [(1, "closed"), (2, "open")]
    # One merged is no refusal: merged, then reverted on main (here: main never had it), it is proposed again.
    github.repos["acme/shop"].pulls[1].update(state="closed", merged=True)
    code, result, err = run_github(capsys, project, github)
    assert (code, result["status"], result["pr_number"]) == (1, "opened", 3)


def run_github_process(project: Project, github: GitHubServer, *extra: str) -> subprocess.CompletedProcess[str]:
    """`rehome run` in a process of its own: what it writes to its standard error, whatever writes it."""
    argv = [sys.executable, "-m", "bot", "run", "acme/shop", "--to", project.destination, "--github-url",
            github.base_url, "--token-env", TOKEN_ENV, "--format", "json", *extra]
    return subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)


def test_pygithubs_own_log_lines_show_only_with_verbose(project: Project, github: GitHubServer) -> None:
    refused = ("POST", "^/repos/acme/shop/issues/1/labels$", 403, {}, {"message": "Resource not accessible by integration"})
    github.faults.append(refused)
    url = f"{github.origin}/acme/shop/pull/1"
    warning = (f"acme/shop: {url}: its labels could not be set (GitHub: add labels: 403 Resource not accessible by "
               "integration); the next run tries again")
    run = run_github_process(project, github)
    assert (run.returncode, run.stderr.splitlines()) == (1, [
        f"cloning file://{project.remote} (branch main)", f"pushing {BRANCH}", f"opened {url}", warning,
        f"acme/shop: opened {url} (3 images moved)"])
    github.faults.append(refused)
    run = run_github_process(project, github, "-v")
    assert f"Request POST /api/v3/repos/acme/shop/issues/1/labels failed with 403: Forbidden\n{warning}\n" in run.stderr


@pytest.mark.parametrize("environ, message", [
    ({}, "the environment variable NOPE_ENV is not set"),
    ({"NOPE_ENV": ""}, "the environment variable NOPE_ENV is empty"),
])
def test_a_missing_token_names_the_variable_read(project: Project, github: GitHubServer, capsys, monkeypatch,
                                                 environ: dict[str, str], message: str) -> None:
    monkeypatch.delenv("NOPE_ENV", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, "run", "acme/shop", "--to", project.destination, "--github-url", github.base_url,
                             "--token-env", "NOPE_ENV")
    assert (code, out, err) == (2, "", f"rehome: error: no GitHub token: {message}\n"
                                       "hint: export NOPE_ENV=… or name another variable with --token-env\n")
    assert github.requests == []


def test_labels_reviewers_assignees_and_draft(project: Project, github: GitHubServer, capsys) -> None:
    github.repos["acme/shop"].labels["images"] = github._label_json(github.repos["acme/shop"], "images", "ededed", None)
    code, result, _ = run_github(capsys, project, github, "--labels", "images,deps", "--reviewers", "alice,bob",
                                 "--assignees", "carol", "--draft", "--branch", "bot/images")
    assert (code, result["pr_number"]) == (1, 1)
    assert [(r.method, r.path, r.body) for r in github.writes()[1:]] == [
        ("POST", "/repos/acme/shop/labels",
         {"name": "deps", "color": "0e8a16", "description": "Pull requests that move container images to the team's mirror"}),
        ("POST", "/repos/acme/shop/issues/1/labels", ["images", "deps"]),
        ("POST", "/repos/acme/shop/pulls/1/requested_reviewers", {"reviewers": ["alice", "bob"]}),
        ("POST", "/repos/acme/shop/issues/1/assignees", {"assignees": ["carol"]}),
    ]
    create = github.writes()[0].body
    assert (create["head"], create["draft"]) == ("bot/images", True)
    assert project.remote_git("rev-parse", "--verify", "bot/images")


def test_an_update_asks_only_the_reviewers_and_assignees_still_missing(
        project: Project, github: GitHubServer, capsys) -> None:
    people = ("--reviewers", "alice,bob,dave", "--assignees", "carol,erin")
    run_github(capsys, project, github, *people)
    pull = github.repos["acme/shop"].pulls[0]
    pull["reviewers"].remove("alice")  # she reviewed: GitHub takes her off the requested list
    pull["reviewed_by"].append("alice")
    pull["reviewers"].remove("bob")  # his request was withdrawn by hand; he has not reviewed
    pull["assignees"].remove("erin")
    (project.work / "README.md").write_text("the shop\n")
    git(project.work, "add", "README.md")
    git(project.work, "commit", "-q", "-m", "readme")
    git(project.work, "push", "-q", "origin", "main")
    before = len(github.writes())
    code, result, _ = run_github(capsys, project, github, *people)
    assert (code, result["pr_number"]) == (1, 1)
    assert [(r.method, r.path, r.body) for r in github.writes()[before:]][1:] == [
        ("POST", "/repos/acme/shop/pulls/1/requested_reviewers", {"reviewers": ["bob"]}),
        ("POST", "/repos/acme/shop/issues/1/assignees", {"assignees": ["erin"]}),
    ]
    assert (pull["reviewers"], pull["assignees"]) == (["dave", "bob"], ["carol", "erin"])


def test_the_open_pull_request_is_found_across_pages(project: Project, github: GitHubServer, capsys) -> None:
    repo = github.repos["acme/shop"]
    for n in range(1, 6):  # other open PRs the head filter would not hide from a careless stand-in
        repo.pulls.append({"number": n, "state": "open", "title": f"other {n}", "body": "", "draft": False,
                           "head": f"feature-{n}", "base": "main", "labels": [], "reviewers": [], "assignees": []})
    github.per_page = 2
    run_github(capsys, project, github)
    assert [p["head"] for p in repo.pulls].count(BRANCH) == 1
    pulls = [r for r in github.requests if r.method == "GET" and r.path == "/repos/acme/shop/pulls"]
    assert pulls[0].query == {"state": "all", "head": f"acme:{BRANCH}"}


def test_dry_run_writes_nothing_anywhere(project: Project, github: GitHubServer, proxies, capsys) -> None:
    destination = f"{proxies.target_proxy.host}/mirror"
    code, out, err = run_cli(capsys, "run", "acme/shop", "--to", destination, "--github-url", github.base_url,
                             "--token-env", TOKEN_ENV, "--dry-run")
    # gone:1 is not upstream: the dry run fails it as the real run would, and does not count it as moving.
    assert code == 1
    assert proxies.target_proxy.count("PUT", ".") == proxies.target_proxy.count("POST", ".") == 0
    assert proxies.target_proxy.count("HEAD", "/manifests/") + proxies.target_proxy.count("GET", "/manifests/") > 0
    assert github.writes() == []
    assert project.remote_git("branch", "--list") == "* main"
    assert f"+FROM {destination}/" in out and "Move 3 container images" in out
    gone = f"{project.upstream}/{project.prefix}/gone"
    assert out.splitlines()[-2:] == [
        f"deploy/app.yaml:12: {gone}:1: failed: resolve tag 1: no such image (manifest unknown)",
        "dry run: 3 images would move, in 4 files (1 image cannot be copied); nothing written"]
    assert f"failed   {gone}:1 " in out and f"missing  {project.upstream}/{project.prefix}/app:1" in out


def test_a_dry_run_that_can_read_github_says_what_the_real_run_would_do_to_the_pull_request(
        project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    url, before = f"{github.origin}/acme/shop/pull/1", len(github.writes())
    _push_to(project, "trunk", "README.md", "the shop\n")
    github.repos["acme/shop"].default_branch = "trunk"
    dry_run = ("run", "acme/shop", "--to", project.destination, "--github-url", github.base_url, "--dry-run")
    code, out, err = run_cli(capsys, *dry_run, "--token-env", TOKEN_ENV)
    assert out.splitlines()[-1] == (
        "dry run: 3 images would move, in 4 files (1 image cannot be copied); nothing written; the real run would "
        f"change the base of {url} to trunk, the default branch, not main")
    github.close_pull("acme/shop", 1)
    project.remote_git("branch", "-D", BRANCH)
    code, out, err = run_cli(capsys, *dry_run, "--token-env", TOKEN_ENV)
    assert out.splitlines()[-1] == (
        f"dry run: 3 images would move, in 4 files (1 image cannot be copied); nothing written; {url} was closed "
        "without merging with this same change: the real run would not open a pull request (restore its branch and "
        "reopen it, or run with --recreate-closed for a new one)")
    # GitHub refusing the listing leaves the preview as it is, said once.
    github.faults.append(("GET", r"/pulls$", 404, {}, {"message": "Not Found"}))
    code, out, err = run_cli(capsys, *dry_run, "--token-env", TOKEN_ENV)
    assert out.splitlines()[-1] == "dry run: 3 images would move, in 4 files (1 image cannot be copied); nothing written"
    assert [line for line in err.splitlines() if "cannot tell" in line] == [
        "acme/shop: cannot tell what the real run would do with its pull request: GitHub: list pull requests of "
        "acme/shop: 404 Not Found"]
    # Without a token it asks GitHub nothing about pull requests: it cannot tell.
    requests = len(github.requests)
    code, out, err = run_cli(capsys, *dry_run, "--token-env", "REHOME_TEST_NO_SUCH_TOKEN")
    assert out.splitlines()[-1] == "dry run: 3 images would move, in 4 files (1 image cannot be copied); nothing written"
    assert [r.path for r in github.requests[requests:] if "/pulls" in r.path] == []
    assert (github.writes()[before:], github.repos["acme/shop"].pulls[0]["base"]) == ([], "main")


def test_after_the_merge_it_says_everything_is_already_moved(project: Project, github: GitHubServer, capsys) -> None:
    run_github(capsys, project, github)
    project.remote_git("update-ref", "refs/heads/main", project.remote_git("rev-parse", BRANCH))  # merged
    before = len(github.writes())
    code, result, err = run_github(capsys, project, github)
    assert (code, result["changed"], result["moved"], result["pr_number"]) == (1, False, 0, 1)
    assert f"acme/shop: nothing more can move (1 image could not be copied); the pull request " \
           f"{github.origin}/acme/shop/pull/1 is left as it is" in err
    assert len(github.writes()) == before
    git(project.work, "pull", "-q", "origin", "main")
    app = project.work / "deploy" / "app.yaml"
    app.write_text(app.read_text().replace(f'"{project.upstream}/{project.prefix}/gone:1"', "busybox@sha256:" + "a" * 64)
                   .replace("busybox@", f"{project.mirror}/mirror/x/busybox@"))
    git(project.work, "commit", "-q", "-am", "drop the sidecar image")
    git(project.work, "push", "-q", "origin", "main")
    code, result, err = run_github(capsys, project, github)
    assert (code, result["changed"], result["failed"], result["pr_number"]) == (0, False, 0, 1)
    assert f"acme/shop: everything is already moved; the pull request {github.origin}/acme/shop/pull/1 " \
           "is left as it is" in err
    assert len(github.writes()) == before


def test_a_bad_rehome_yaml_is_named_by_the_repository_and_its_path_there(
        project: Project, github: GitHubServer, capsys) -> None:
    (project.work / "rehome.yaml").write_text("draft: maybe\n")
    git(project.work, "add", "rehome.yaml")
    git(project.work, "commit", "-q", "-m", "configure")
    git(project.work, "push", "-q", "origin", "main")
    code, out, err = run_cli(capsys, "run", "acme/shop", "--to", project.destination, "--github-url",
                             github.base_url, "--token-env", TOKEN_ENV)
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == ("rehome: error: acme/shop: rehome.yaml: key 'draft': 'maybe' is not of type "
                                    "'boolean'")
    assert github.writes() == []


UNCOMMITTED_HINT = "hint: only committed files are read: commit the folder (or correct the key), then run again"


@pytest.mark.parametrize("config, last_lines", [
    ("rules: ../elsewhere\n", ["rehome: error: acme/shop: rehome.yaml: key 'rules': ../elsewhere is outside the "
                               "repository; only the repository's own files are read"]),
    ("templates: ../outside\n", ["rehome: error: acme/shop: rehome.yaml: key 'templates': ../outside is outside "
                                  "the repository; only the repository's own files are read"]),
    ("rules: nope\n", ["rehome: error: acme/shop: rehome.yaml: key 'rules': nope is not in the commit being read "
                       "(the tip of main, {sha})", UNCOMMITTED_HINT]),
    ("templates: tpl\n", ["rehome: error: acme/shop: rehome.yaml: key 'templates': tpl is not in the commit being "
                          "read (the tip of main, {sha})", UNCOMMITTED_HINT]),
    ("templates: Dockerfile\n", ["rehome: error: acme/shop: rehome.yaml: key 'templates': Dockerfile does not exist or "
                                "is not a folder"]),
    ("mapping: '{destination}/{nope}'\n", [
        "rehome: error: acme/shop: rehome.yaml: key 'mapping': mapping template '{destination}/{nope}' uses unknown "
        "placeholder(s) {nope}; known: {destination}, {domain}, {path}"]),
    ("destination: 'not a registry'\n", [
        "rehome: error: acme/shop: rehome.yaml: key 'destination': destination 'not a registry' is not a registry "
        "path: invalid reference format: path component 'not a registry' must be lowercase letters and digits, "
        "joined by one '.', one or two '_', or dashes"]),
    ("branch: a..b\n", ["rehome: error: acme/shop: rehome.yaml: key 'branch': 'a..b' is not a usable branch name",
                        "hint: a name such as rehome/mirror-images: no spaces, no '..', not starting with '-' or refs/"]),
    ("branch: main\n", ["rehome: error: acme/shop: rehome.yaml: key 'branch': 'main' is the base branch itself; "
                        "the bot's branch must be another one",
                        "hint: name another branch there, or remove the key (rehome/mirror-images)"]),
])
def test_each_bad_value_in_the_repositorys_rehome_yaml_is_named_by_the_repository_and_key(
        project: Project, github: GitHubServer, capsys, config: str, last_lines: list[str]) -> None:
    (project.work / "rehome.yaml").write_text(config)
    git(project.work, "add", "rehome.yaml")
    git(project.work, "commit", "-q", "-m", "configure")
    git(project.work, "push", "-q", "origin", "main")
    to = () if config.startswith("destination") else ("--to", project.destination)  # the flag would win
    code, out, err = run_cli(capsys, "run", "acme/shop", *to, "--github-url", github.base_url, "--token-env", TOKEN_ENV)
    assert (code, out) == (2, "")
    sha = git(project.work, "rev-parse", "HEAD")[:12]
    assert err.splitlines()[-len(last_lines):] == [line.replace("{sha}", sha) for line in last_lines]
    assert github.writes() == []


@pytest.mark.parametrize("branch, last_lines", [
    ("main", ["rehome: error: --branch: 'main' is the base branch itself; the bot's branch must be another one",
              "hint: choose another branch with --branch, or leave it out (rehome/mirror-images)"]),
    ("bad name", ["rehome: error: --branch: 'bad name' is not a usable branch name",
                  "hint: a name such as rehome/mirror-images: no spaces, no '..', not starting with '-' or refs/"]),
], ids=["the-base", "not-a-branch-name"])
def test_a_branch_flag_that_cannot_be_the_bots_branch_says_so(project: Project, github: GitHubServer, capsys,
                                                               branch: str, last_lines: list[str]) -> None:
    code, out, err = run_cli(capsys, "run", "acme/shop", "--to", project.destination, "--github-url",
                             github.base_url, "--token-env", TOKEN_ENV, "--branch", branch)
    assert (code, out) == (2, "")
    assert err.splitlines()[-2:] == last_lines
    assert github.writes() == []


def test_labels_or_reviewers_that_fail_warn_and_the_next_run_adds_them(
        project: Project, github: GitHubServer, capsys) -> None:
    github.faults += [("POST", "^/repos/acme/shop/issues/1/labels$", 422, {}, {"message": "Validation Failed"}),
                      ("POST", "^/repos/acme/shop/pulls/1/requested_reviewers$", 422, {},
                       {"message": "Reviews may only be requested from collaborators"})]
    url = f"{github.origin}/acme/shop/pull/1"
    warnings = [f"{url}: its labels could not be set (GitHub: add labels: 422 Validation Failed); the next run "
                "tries again",
                f"{url}: its reviewers could not be set (GitHub: request reviewers: 422 Reviews may only be requested "
                "from collaborators); the next run tries again"]
    code, result, err = run_github(capsys, project, github, "--reviewers", "alice")
    assert code == 1
    assert {k: v for k, v in result.items() if k != "images"} == {
        "version": 1, "status": "opened", "pr_url": url, "pr_number": 1, "changed": True, "moved": 3,
        "unresolved": 1, "failed": 1, "warnings": warnings}
    assert [line for line in err.splitlines() if "could not be set" in line] == [f"acme/shop: {w}" for w in warnings]
    pull = github.repos["acme/shop"].pulls[0]
    assert (pull["labels"], pull["reviewers"]) == ([], [])
    before = len(github.writes())
    code, result, err = run_github(capsys, project, github, "--reviewers", "alice")
    assert (code, result["changed"], result["pr_number"], result["warnings"]) == (1, False, 1, [])
    assert f"nothing new; {url} already holds this change" in err
    assert [(r.method, r.path, r.body) for r in github.writes()[before:]] == [
        ("POST", "/repos/acme/shop/issues/1/labels", ["rehome"]),
        ("POST", "/repos/acme/shop/pulls/1/requested_reviewers", {"reviewers": ["alice"]})]
    assert (pull["labels"], pull["reviewers"]) == (["rehome"], ["alice"])
    before = len(github.writes())
    assert run_github(capsys, project, github, "--reviewers", "alice")[1]["warnings"] == []
    assert github.writes()[before:] == []  # nothing is missing any more


@pytest.mark.parametrize("url", ["github.acme.com", "ftp://x", "http://[::1"])
@pytest.mark.parametrize("command", [["run", "acme/shop", "--to", "reg.example.com/m"],
                                     ["sweep", "--org", "acme", "--to", "reg.example.com/m"],
                                     ["report", "status", "--state", "state.jsonl"]])
def test_a_github_url_that_is_not_one_is_a_usage_error(capsys, command: list[str], url: str) -> None:
    code, out, err = run_cli(capsys, *command, "--github-url", url)
    assert (code, out) == (2, "")
    assert err.endswith(f"error: argument --github-url: {url!r} is not an http(s) URL, e.g. https://github.example.com\n")


def test_a_repository_without_commits_has_nothing_to_do(tmp_path, github: GitHubServer, capsys, monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN_CANARY)
    empty = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(empty))
    github.add_repo("acme/new", f"file://{empty}", git_dir=str(empty))
    code, out, err = run_cli(capsys, "run", "acme/new", "--to", "mirror.example/m", "--github-url", github.base_url,
                             "--token-env", TOKEN_ENV)
    assert (code, out, github.writes()) == (0, "acme/new: no commits yet; nothing to scan\n", [])

