"""`rehome run PATH` with the local forge: the branch is built in a temporary worktree; the user's
checkout, branch and working tree are never touched."""
from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from tests.helpers import folder_bytes, git, run_cli, write_tree
from tests.run.conftest import Project
from tests.run.test_run_github import BRANCH, expected_diff, mirror_digest, mirror_name


def snapshot(work: Path) -> dict:
    files = {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*"))
             if p.is_file() and ".git" not in p.relative_to(work).parts}
    return {"status": git(work, "status", "--porcelain", "--untracked-files=all"),
            "head": git(work, "rev-parse", "HEAD"), "branch": git(work, "symbolic-ref", "HEAD"), "files": files}


def local_diff(work: Path) -> str:
    diff = git(work, "diff", "main", BRANCH)
    return "".join(line + "\n" for line in diff.splitlines() if not line.startswith("index "))


def test_local_forge_builds_the_branch_without_touching_the_checkout(project: Project, tmp_path: Path, capsys) -> None:
    work = project.work
    (work / "Dockerfile").write_text("FROM scratch\n# work in progress\n")  # a dirty tracked file
    (work / "scratch.txt").write_text("untracked\n")
    before = snapshot(work)
    pr_file = tmp_path / "pr.md"
    code, out, err = run_cli(capsys, "run", str(work), "--to", project.destination, "--pr-file", str(pr_file))
    assert code == 1  # gone:1 could not be copied
    assert snapshot(work) == before
    assert local_diff(work) == expected_diff(project)
    assert git(work, "log", "--format=%an|%P", f"main..{BRANCH}").strip() == f"rehome-bot|{before['head'].strip()}"
    assert git(work, "worktree", "list", "--porcelain").count("worktree ") == 1
    text = pr_file.read_text()
    assert text.startswith(f"Move 3 container images to {project.destination}\n\n")
    for source, digest in project.digests.items():
        assert source in text and digest in text
    assert mirror_digest(f"{mirror_name(project, 'app')}:1") == project.digests[f"{project.upstream}/{project.prefix}/app:1"]
    assert f"opened {pr_file}" in out and "Move 3 container images" not in out
    assert git(project.remote, "branch", "--list").strip() == "* main"  # nothing pushed

    head = git(work, "rev-parse", BRANCH)
    code, out, _ = run_cli(capsys, "run", str(work), "--to", project.destination)
    assert code == 1 and git(work, "rev-parse", BRANCH) == head
    assert f"nothing new; the branch {BRANCH} already holds this change" in out
    assert snapshot(work) == before


def test_a_pr_file_with_a_second_name_keeps_it(project: Project, tmp_path: Path, capsys) -> None:
    pr_file, published = tmp_path / "pr.md", tmp_path / "site" / "pr.md"
    pr_file.write_text("an earlier run's pull request\n")
    published.parent.mkdir()
    os.link(pr_file, published)
    code, _, err = run_cli(capsys, "run", str(project.work), "--to", project.destination, "--pr-file", str(pr_file))
    assert code == 1, err  # gone:1 could not be copied
    assert published.read_text() == pr_file.read_text()
    assert pr_file.read_text().startswith(f"Move 3 container images to {project.destination}\n\n")
    assert pr_file.stat().st_ino == published.stat().st_ino


def test_the_pull_request_lists_the_files_the_scan_could_not_read(project: Project, tmp_path: Path, capsys) -> None:
    write_tree(project.work, {"deploy/pod.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{image: redis:7\n"})
    git(project.work, "add", "-A")
    git(project.work, "commit", "-q", "-m", "broken")
    pr_file = tmp_path / "pr.md"
    code, _, err = run_cli(capsys, "run", str(project.work), "--to", project.destination, "--pr-file", str(pr_file))
    assert code == 1, err  # gone:1 could not be copied
    assert pr_file.read_text().split("### Files not read")[1].split("\n## How to verify")[0] == (
        " (1)\n\n1 file could not be read, so it was not searched for images: whatever it names stays as written.\n\n"
        "| File | Why it was not read |\n|---|---|\n"
        "| `deploy/pod.yaml` | not valid YAML\\: expected ',' or '\\}', but got '&lt;stream end&gt;' \\(line 5, column 1\\) |\n"
    )


def test_without_pr_file_the_text_is_printed(project: Project, capsys) -> None:
    code, out, _ = run_cli(capsys, "run", str(project.work), "--to", project.destination, "--labels", "")
    assert code == 1
    assert f"Move 3 container images to {project.destination}\n\n" in out
    assert project.digests[f"{project.upstream}/{project.prefix}/nginx:1.27"] in out


def test_a_local_branch_with_someone_elses_commit_is_left_alone(project: Project, tmp_path: Path, capsys) -> None:
    work, pr_file = project.work, tmp_path / "pr.md"
    pr_file.write_text("an earlier run's pull request\n")
    git(work, "branch", BRANCH)
    git(work, "checkout", "-q", BRANCH)
    (work / "NOTES.md").write_text("mine\n")
    git(work, "add", "NOTES.md")
    git(work, "commit", "-q", "-m", "mine")
    git(work, "checkout", "-q", "main")
    head = git(work, "rev-parse", BRANCH)
    code, out, err = run_cli(capsys, "run", str(work), "--to", project.destination, "--pr-file", str(pr_file))
    assert (code, out) == (1, "\n")
    assert git(work, "rev-parse", BRANCH) == head
    assert pr_file.read_text() == ""  # this run proposes nothing
    assert "holds commits by someone other than rehome-bot <rehome-bot@users.noreply.github.com>" in err


def test_a_run_that_fails_leaves_the_pr_file_empty(project: Project, tmp_path: Path, capsys) -> None:
    pr_file = tmp_path / "pr.md"
    pr_file.write_text("an earlier run's pull request\n")
    git(project.work, "checkout", "-q", "--detach")
    code, out, err = run_cli(capsys, "run", str(project.work), "--to", project.destination, "--pr-file", str(pr_file))
    assert (code, out, pr_file.read_text()) == (2, "", "")
    assert "HEAD is detached" in err


@pytest.mark.parametrize("flags", [(), ("--dry-run",)])
def test_a_detached_head_is_a_usage_error(project: Project, capsys, flags: tuple[str, ...]) -> None:
    git(project.work, "checkout", "-q", "--detach")
    code, out, err = run_cli(capsys, "run", str(project.work), "--to", project.destination, *flags)
    assert (code, out) == (2, "")
    assert "HEAD is detached" in err


def test_dry_run_on_a_local_path_writes_nothing(project: Project, proxies, capsys) -> None:
    before = snapshot(project.work)
    refs = git(project.work, "for-each-ref")
    destination = f"{proxies.target_proxy.host}/mirror"
    code, out, _ = run_cli(capsys, "run", str(project.work), "--to", destination, "--dry-run")
    assert code == 1  # gone:1 is not upstream: it would not be copied
    assert snapshot(project.work) == before and git(project.work, "for-each-ref") == refs
    assert not (project.work / ".git" / "worktrees").exists()
    assert proxies.target_proxy.count("PUT", ".") == proxies.target_proxy.count("POST", ".") == 0
    assert f"+FROM {destination}/" in out


def test_a_dry_run_previews_the_last_commit_as_the_real_run_reads_it(project: Project, capsys) -> None:
    work = project.work
    run = ("run", str(work), "--to", project.destination, "--dry-run")
    committed = run_cli(capsys, *run)
    with (work / "Dockerfile").open("a") as dockerfile:
        dockerfile.write(f"FROM {project.upstream}/{project.prefix}/redis:7.4\n")
    (work / "rehome.yaml").write_text("title: Not this title\ndraft: 5\n")  # uncommitted, and not valid
    before = snapshot(work)
    later = time.time() + 10
    os.utime(work / "chart" / "Chart.yaml", (later, later))  # `git status` would rewrite the index for this
    dot_git = folder_bytes(work / ".git")
    code, out, err = run_cli(capsys, *run)
    assert (code, out) == committed[:2]
    sha = git(work, "rev-parse", "--short=12", "main").strip()
    assert err == (f"work: uncommitted changes are not part of this preview: like the real run, it reads the last "
                   f"commit of main ({sha})\n") + committed[2]
    assert folder_bytes(work / ".git") == dot_git
    assert snapshot(work) == before


def test_a_dry_run_refuses_a_plain_folder_as_the_real_run_does(tmp_path: Path, capsys) -> None:
    plain = write_tree(tmp_path / "plain", {"Dockerfile": "FROM nginx:1.27\n"})
    for flags in ((), ("--dry-run",)):
        code, out, err = run_cli(capsys, "run", str(plain), "--to", "127.0.0.1:5999/mirror", *flags)
        assert (code, out, err) == (2, "", f"rehome: error: {plain}: not a git repository\n"
                                           "hint: rehome run builds its branch with git; use rehome rewrite for a "
                                           "plain folder\n")


def test_a_dry_run_renders_the_commit_message_as_the_real_run_does(project: Project, capsys) -> None:
    work = project.work
    write_tree(work, {"rehome.yaml": "templates: ops/templates\n",
                      "ops/templates/commit_message.j2": "Move images\n\n{{ no_such_thing }}\n"})
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "a commit message template with a typo")
    dot_git = folder_bytes(work / ".git")
    for flags in (("--dry-run",), ()):
        code, out, err = run_cli(capsys, "run", str(work), "--to", project.destination, "-q", *flags)
        assert (code, out, err) == (2, "", "rehome: error: work: ops/templates/commit_message.j2:3: template error: "
                                           "'no_such_thing' is undefined\n")
        if flags:
            assert folder_bytes(work / ".git") == dot_git


def test_a_dry_run_fails_an_image_missing_upstream_as_the_real_run_does(project: Project, capsys) -> None:
    work, gone = project.work, f"{project.upstream}/{project.prefix}/gone"
    run = ("run", str(work), "--to", project.destination)
    code, out, _ = run_cli(capsys, *run, "--dry-run", "--format", "json")
    dry = json.loads(out)
    assert (code, {key: value for key, value in dry.items() if key != "images"}) == (1, {
        "version": 1, "status": "dry-run", "pr_url": None, "pr_number": None, "changed": True, "moved": 3,
        "unresolved": 1, "failed": 1, "warnings": []})
    code, out, _ = run_cli(capsys, *run, "--format", "json")
    real = json.loads(out)
    assert (code, real["moved"], real["failed"]) == (1, 3, 1)
    failed = [{"source": f"{gone}:1", "target": f"{mirror_name(project, 'gone')}:1", "digest": None, "platforms": [],
               "status": "failed", "bytes": 0, "pulls": None,
               "error": f"{gone}: resolve tag 1: no such image (manifest unknown)"}]
    assert [i for i in dry["images"] if i["status"] == "failed"] == failed
    assert [i for i in real["images"] if i["status"] == "failed"] == failed
    git(work, "merge", "-q", "--ff-only", BRANCH)  # the others moved: only gone:1 is left
    code, out, _ = run_cli(capsys, *run, "--dry-run")
    assert (code, out.splitlines()[-1]) == (1, "dry run: nothing would change (1 image cannot be copied), so no pull "
                                               "request would be opened; nothing written")


def test_the_readme_example_runs_offline(capsys) -> None:
    shop = Path(__file__).resolve().parent.parent.parent / "examples" / "shop"
    code, out, err = run_cli(capsys, "run", str(shop), "--to", "us-docker.pkg.dev/acme/mirror", "--dry-run",
                             "--jobs", "8")
    assert code == 0, err
    assert "+FROM us-docker.pkg.dev/acme/mirror/docker.io/library/nginx:1.27-alpine" in out
    assert "Move 10 container images to us-docker.pkg.dev/acme/mirror" in out
    assert "nothing written" in out


def test_rehome_yaml_sets_author_branch_and_title(project: Project, tmp_path: Path, capsys) -> None:
    work = project.work
    (work / "rehome.yaml").write_text(
        f"destination: {project.destination}\nauthor: Platform Bot <platform@example.com>\n"
        "branch: platform/images\ntitle: \"Mirror {count} images\"\n")
    git(work, "add", "rehome.yaml")
    git(work, "commit", "-q", "-m", "config")
    pr_file = tmp_path / "pr.md"
    code, out, err = run_cli(capsys, "run", str(work), "--pr-file", str(pr_file))
    assert code == 1, err
    assert git(work, "log", "--format=%an <%ae>", "main..platform/images").strip() == \
        "Platform Bot <platform@example.com>"
    assert pr_file.read_text().startswith("Mirror 3 images\n\n")
    git(work, "checkout", "-q", "platform/images")
    code, out, err = run_cli(capsys, "run", str(work))
    assert (code, err.splitlines()[-2:]) == (2, [
        "rehome: error: work: rehome.yaml: key 'branch': 'platform/images' is the base branch itself; the bot's "
        "branch must be another one",
        "hint: name another branch there, or remove the key (rehome/mirror-images), or check out the branch the "
        "pull request should target"])


def test_target_must_be_a_folder_or_owner_and_name(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "run", str(tmp_path / "no" / "such" / "dir"), "--to", "r.example/m")
    assert code == 2 and "no such folder, and not OWNER/NAME" in err
    code, _, err = run_cli(capsys, "run", "acme/shop", "--forge", "local", "--to", "r.example/m")
    assert code == 2 and "the local forge needs a local checkout" in err
    code, _, err = run_cli(capsys, "run", str(tmp_path), "--to", "r.example/m")
    assert code == 2 and "not a git repository" in err


def test_pull_counts_reach_the_pull_request(project: Project, tmp_path: Path, capsys) -> None:
    pulls = tmp_path / "pulls.csv"
    app = f"{project.upstream}/{project.prefix}/app:1"
    pulls.write_text(f"timeOfImagePull,imageName,numberOfPulls\n2026-11-20T10:00:00Z,{app},7\n"
                     f"2026-11-21T10:00:00Z,{app},5\n")
    pr_file = tmp_path / "pr.md"
    code, _, err = run_cli(capsys, "run", str(project.work), "--to", project.destination, "--pr-file", str(pr_file),
                           "--pulls", str(pulls), "--since", "7d")
    assert code == 1, err
    text = pr_file.read_text()
    [row] = [line for line in text.splitlines() if line.startswith(f"| `{app}`")]
    assert "| linux/amd64 | 12 |" in row
    assert "Pulls: counted from `pulls.csv (CSV of the guide's tracking query" in text
    assert "from 2026\\-11\\-14T10\\:00\\:00Z until 2026\\-11\\-21T10\\:00\\:00Z" in text


def test_a_subfolder_run_reads_the_repositorys_own_config_rules_and_templates(project: Project, tmp_path: Path,
                                                                             capsys) -> None:
    # Nothing is checked out for the run: rehome.yaml and the rules and templates it names are the
    # files written to disk first, and a changed file keeps its mode in the commit.
    work = project.work
    app = f"{project.upstream}/{project.prefix}/app:1"
    write_tree(work, {
        "svc/rehome.yaml": f"destination: {project.destination}\nrules: ops/rules\ntemplates: ops/templates\n",
        "svc/ops/rules/team-jobs.yaml": ("description: the team's own job files\nextractor: yaml\n"
                                         "files: ['**/*.job']\nimages: ['task.runner']\n"),
        "svc/ops/templates/pr_title.j2": "Team mirror: {{ moved_count }} image(s)\n",
        "svc/build.job": f"task:\n  runner: {app}\n",
        "svc/deploy.sh": f"#!/bin/sh\n# {app} is not a reference: shell is not scanned\n",
        "svc/k8s.yaml": f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: app\n      image: {app}\n",
    })
    os.chmod(work / "svc" / "k8s.yaml", 0o755)
    os.symlink("k8s.yaml", work / "svc" / "k8s-alias.yaml")  # its target's second name: stays a link
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "a service with its own rules")
    pr_file = tmp_path / "pr.md"
    code, out, err = run_cli(capsys, "run", str(work / "svc"), "--pr-file", str(pr_file))
    assert code == 0, err
    assert pr_file.read_text().startswith("Team mirror: 1 image(s)\n\n")
    target = f"{mirror_name(project, 'app')}:1"
    assert git(work, "diff", "--stat=200", "main", BRANCH).splitlines()[:-1] == [
        " svc/build.job | 2 +-", " svc/k8s.yaml  | 2 +-"]
    assert git(work, "show", f"{BRANCH}:svc/build.job") == f"task:\n  runner: {target}\n"
    assert git(work, "ls-tree", BRANCH, "svc/k8s.yaml").split()[0] == "100755"
    assert git(work, "ls-tree", BRANCH, "svc/k8s-alias.yaml").split()[0] == "120000"
    assert git(work, "ls-tree", "-r", "--name-only", BRANCH) == git(work, "ls-tree", "-r", "--name-only", "main")


def test_the_bots_branch_checked_out_in_another_worktree_is_not_moved(project: Project, tmp_path: Path, capsys) -> None:
    work = project.work
    assert run_cli(capsys, "run", str(work), "--to", project.destination)[0] == 1  # gone:1 could not be copied
    other = tmp_path / "review"
    git(work, "worktree", "add", "-q", str(other), BRANCH)
    (work / "README.md").write_text("new on main\n")
    git(work, "add", "README.md")
    git(work, "commit", "-q", "-m", "main moves on")
    head = git(work, "rev-parse", BRANCH)
    code, out, err = run_cli(capsys, "run", str(work), "--to", project.destination)
    assert (code, out) == (2, "")
    assert err == (f"rehome: error: the branch {BRANCH} is checked out in {other}; it is not moved under that checkout\n"
                   "hint: check out another branch there (or remove that worktree), then run again\n")
    assert git(work, "rev-parse", BRANCH) == head
    assert git(other, "status", "--porcelain") == ""


def test_a_dry_run_refuses_to_move_a_branch_checked_out_elsewhere_as_the_real_run_does(
        project: Project, tmp_path: Path, capsys) -> None:
    work = project.work
    run = ("run", str(work), "--to", project.destination)
    assert run_cli(capsys, *run)[0] == 1  # gone:1 could not be copied
    other = tmp_path / "review"
    git(work, "worktree", "add", "-q", str(other), BRANCH)
    # The branch already holds this change: the real run would not move it, so neither refuses.
    code, out, err = run_cli(capsys, *run, "--dry-run")
    assert (code, err) == (1, "")
    (work / "README.md").write_text("new on main\n")
    git(work, "add", "README.md")
    git(work, "commit", "-q", "-m", "main moves on")
    dot_git = folder_bytes(work / ".git")
    refused = (2, "", f"rehome: error: the branch {BRANCH} is checked out in {other}; it is not moved under that "
                      "checkout\nhint: check out another branch there (or remove that worktree), then run again\n")
    assert run_cli(capsys, *run, "--dry-run") == refused
    assert folder_bytes(work / ".git") == dot_git
    assert run_cli(capsys, *run) == refused


@pytest.mark.parametrize("flags", [(), ("--dry-run",)])
def test_a_repository_without_commits_is_a_usage_error(tmp_path: Path, capsys, flags: tuple[str, ...]) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "Dockerfile").write_text("FROM nginx:1.27\n")
    code, out, err = run_cli(capsys, "run", str(tmp_path), "--to", "127.0.0.1:5999/mirror", *flags)
    assert (code, out) == (2, "")
    assert err == (f"rehome: error: {tmp_path}: the branch main has no commits yet\n"
                   "hint: commit the files first: the pull request's branch starts from the last commit\n")


def test_a_bad_rules_file_in_the_repository_is_named_by_its_path_there(project: Project, capsys) -> None:
    work = project.work
    write_tree(work, {"svc/rehome.yaml": f"destination: {project.destination}\nrules: ops/rules\n",
                      "svc/ops/rules/jobs.yaml": "extractor: yaml\nfiles: ['**/*.job']\nimage: ['task.runner']\n"})
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "a rules file with a typo")
    code, out, err = run_cli(capsys, "run", str(work / "svc"))
    assert (code, out) == (2, "")
    assert err == "rehome: error: svc: ops/rules/jobs.yaml: unknown field 'image'\n"


@pytest.mark.parametrize(("key", "untracked"), [("templates", "pr_title.j2"), ("rules", "jobs.yaml")])
def test_a_folder_rehome_yaml_names_but_git_does_not_hold_is_said_to_be_uncommitted(
        project: Project, capsys, key: str, untracked: str) -> None:
    work = project.work
    write_tree(work, {"svc/rehome.yaml": f"destination: {project.destination}\n{key}: ops/{key}\n"})
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"{key} named, not committed")
    write_tree(work, {f"svc/ops/{key}/{untracked}": "Team mirror\n"})  # untracked: not the repository's
    sha = git(work, "rev-parse", "HEAD").strip()
    code, out, err = run_cli(capsys, "run", str(work / "svc"))
    assert (code, out) == (2, "")
    assert err == (f"rehome: error: svc: rehome.yaml: key {key!r}: ops/{key} is not in the commit being read "
                   f"(the tip of main, {sha[:12]})\n"
                   "hint: only committed files are read: commit the folder (or correct the key), then run again\n")
    assert git(work, "branch", "--list", BRANCH) == ""


def test_a_templates_flag_replaces_an_uncommitted_folder_rehome_yaml_names(project: Project, tmp_path: Path,
                                                                          capsys) -> None:
    work = project.work
    write_tree(work, {"rehome.yaml": f"destination: {project.destination}\ntemplates: ops/templates\n"})
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "templates named, not committed")
    flag = write_tree(tmp_path / "mine", {"pr_title.j2": "Team mirror\n"})
    code, out, err = run_cli(capsys, "run", str(work), "--templates", str(flag), "--dry-run")
    assert code == 1, err  # gone:1 could not be copied
    assert "Team mirror" in out


def test_the_pr_file_is_written_by_every_run_empty_when_nothing_is_proposed(
        project: Project, tmp_path: Path, capsys) -> None:
    work, pr_file = project.work, tmp_path / "pr.md"
    run = ("run", str(work), "--to", project.destination, "--pr-file", str(pr_file))
    assert run_cli(capsys, *run)[0] == 1  # gone:1 could not be copied
    opened = pr_file.read_text()
    pr_file.unlink()
    code, out, _ = run_cli(capsys, *run)
    assert code == 1 and f"work: nothing new; the branch {BRANCH} already holds this change" in out
    assert pr_file.read_text() == opened.replace("| copied |", "| already there |")  # this run found the copies made
    git(work, "merge", "-q", "--ff-only", BRANCH)  # the change is merged: nothing more to propose
    code, out, _ = run_cli(capsys, *run)
    assert code == 1 and out.endswith("work: nothing more can move (1 image could not be copied)\n")
    assert pr_file.read_text() == ""


def test_a_dry_run_with_nothing_to_move_says_no_pull_request_would_be_opened(tmp_path: Path, capsys) -> None:
    work = write_tree(tmp_path / "work", {"Dockerfile": "FROM scratch\n"})
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "first")
    code, out, err = run_cli(capsys, "run", str(work), "--to", "mirror.example/m", "--dry-run")
    assert (code, out) == (0, "0 images to move to mirror.example/m, in 0 files\n\n"
                              "dry run: nothing would change, so no pull request would be opened; nothing written\n")


def test_a_pr_file_that_is_a_named_pipe_is_refused_and_left_as_it_is(capsys, tmp_path: Path) -> None:
    pipe = tmp_path / "pr.md"
    os.mkfifo(pipe)  # replaced by a regular file, whatever reads from it would never see the text
    code, out, err = run_cli(capsys, "run", str(tmp_path), "--to", "r.example/m", "--pr-file", str(pipe))
    assert (code, out, err) == (2, "", f"rehome: error: --pr-file {pipe}: is a named pipe, not a file\n")
    assert stat.S_ISFIFO(pipe.stat().st_mode)
