"""The bot's branch is built from git's objects: no working tree, no index."""
from __future__ import annotations

import os
import subprocess

import pytest

from bot import git
from bot.errors import UsageError
from bot.git import check_branch_name
from tests.helpers import folder_bytes, git as run, write_tree

ODD_NAME = 'odd "name"\nwith a newline.yaml'


def _repository(tmp_path):
    repo = write_tree(tmp_path / "repo", {
        "svc/k8s.yaml": "image: redis:7\n",
        "svc/bin/deploy": "#!/bin/sh\necho redis:7\n",
        "svc/rehome.yaml": "destination: x\n",
        f"svc/{ODD_NAME}": "image: redis:7\n",
        "top.txt": "outside the subfolder\n",
    })
    (repo / "svc" / "bin" / "deploy").chmod(0o755)
    os.symlink("k8s.yaml", repo / "svc" / "link.yaml")
    run(repo, "init", "-q", "-b", "main")
    run(repo, "add", "-A")
    run(repo, "commit", "-q", "-m", "base")
    return repo


def test_a_commit_from_objects_keeps_modes_and_odd_names_and_cleans_the_message(tmp_path):
    repo = _repository(tmp_path)
    with git.local_worktree(repo / "svc") as checkout:
        assert list(checkout.root.iterdir()) == []  # nothing is checked out
        sha = git.commit_files(checkout, {
            "k8s.yaml": "image: mirror/redis:7\n",
            "bin/deploy": "#!/bin/sh\necho mirror/redis:7\n",
            ODD_NAME: "image: mirror/redis:7\n",
        }, "\n\nMove redis   \n\n\n\nto the mirror\n\n", git.Identity("Bot", "bot@example.com"))
        assert list(checkout.root.iterdir()) == []  # the commit wrote no file either
    header, message = run(repo, "cat-file", "-p", sha).split("\n\n", 1)
    assert message == "Move redis\n\nto the mirror\n"
    lines = header.splitlines()
    assert lines[1:2] + [line.rsplit(" ", 2)[0] for line in lines[2:]] == [
        f"parent {run(repo, 'rev-parse', 'main').strip()}",
        "author Bot <bot@example.com>", "committer Bot <bot@example.com>"]
    changed = run(repo, "diff", "--name-only", "-z", "main", sha).split("\0")[:-1]
    assert sorted(changed) == sorted(["svc/bin/deploy", "svc/k8s.yaml", f"svc/{ODD_NAME}"])
    assert run(repo, "show", f"{sha}:svc/k8s.yaml") == "image: mirror/redis:7\n"
    assert run(repo, "show", f"{sha}:svc/{ODD_NAME}") == "image: mirror/redis:7\n"
    modes = {line.split("\t")[1]: line.split()[0]
             for line in run(repo, "ls-tree", "-r", sha, "svc/bin", "svc/link.yaml").splitlines()}
    assert modes == {"svc/bin/deploy": "100755", "svc/link.yaml": "120000"}
    # The commit is not published: no branch of the repository moved, no ref was left behind.
    assert run(repo, "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]


def test_materialize_writes_files_links_and_modes_as_a_checkout_would(tmp_path):
    repo = _repository(tmp_path)
    with git.local_worktree(repo / "svc") as checkout:
        checkout.materialize(["rehome.yaml", "bin", "link.yaml", "not-there.yaml"])
        root = checkout.root
        written = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())
        assert written == ["bin/deploy", "link.yaml", "rehome.yaml"]
        assert (root / "rehome.yaml").read_text() == "destination: x\n"
        assert os.access(root / "bin" / "deploy", os.X_OK)
        assert os.readlink(root / "link.yaml") == "k8s.yaml"


def test_a_preview_is_the_worktrees_base_commit_and_writes_nothing_in_the_repository(tmp_path):
    repo = _repository(tmp_path)
    (repo / "svc" / "k8s.yaml").write_text("image: uncommitted:1\n")
    (repo / "svc" / "new.yaml").write_text("image: untracked:1\n")
    dot_git = folder_bytes(repo / ".git")
    with git.local_worktree(repo / "svc") as worktree:
        expected = (worktree.base, worktree.base_sha, worktree.prefix, worktree.objects.paths())
    with git.preview(repo / "svc") as checkout:
        assert (checkout.base, checkout.base_sha, checkout.prefix, checkout.objects.paths()) == expected
        checkout.materialize(["k8s.yaml"])
        assert (checkout.root / "k8s.yaml").read_text() == "image: redis:7\n"
        assert git.branch_head(checkout, "main") == checkout.base_sha
        folder = checkout.root.parent
    assert not folder.exists()
    assert folder_bytes(repo / ".git") == dot_git


def test_a_preview_tells_whether_the_branch_holds_the_commit_it_would_make_without_making_it(tmp_path):
    repo = _repository(tmp_path)
    files = {"k8s.yaml": "image: mirror/redis:7\n", "bin/deploy": "#!/bin/sh\necho mirror/redis:7\n",
             ODD_NAME: "image: mirror/redis:7\n"}
    with git.local_worktree(repo / "svc") as checkout:
        sha = git.commit_files(checkout, files, "Move redis", git.BOT)
    run(repo, "update-ref", "refs/heads/bot", sha)
    dot_git = folder_bytes(repo / ".git")
    with git.preview(repo / "svc") as checkout:
        head = git.branch_head(checkout, "bot")
        assert [git.holds_files(checkout, head, changed) for changed in (
            files, {**files, "k8s.yaml": "image: other/redis:7\n"}, {"k8s.yaml": files["k8s.yaml"]},
        )] == [True, False, False]
        assert not git.holds_files(checkout, None, files)
        assert not git.holds_files(checkout, checkout.base_sha, files)  # not one commit on the base
    assert folder_bytes(repo / ".git") == dot_git


def test_a_change_is_the_same_when_it_rewrites_the_same_lines_whatever_else_the_base_changed(tmp_path):
    repo = _repository(tmp_path)
    with git.local_worktree(repo / "svc") as checkout:
        declined = git.commit_files(checkout, {"k8s.yaml": "image: mirror/redis:7\n"}, "Move redis", git.BOT)
    (repo / "svc" / "k8s.yaml").write_text("# the cache\nimage: redis:7\nreplicas: 2\n")
    run(repo, "commit", "-qam", "unrelated lines")
    with git.local_worktree(repo / "svc") as checkout:
        assert [git.holds_change(checkout, declined, git.commit_files(checkout, files, "Move redis", git.BOT))
                for files in (
                    {"k8s.yaml": "# the cache\nimage: mirror/redis:7\nreplicas: 2\n"},
                    {"k8s.yaml": "# the cache\nimage: other/redis:7\nreplicas: 2\n"},
                    {"k8s.yaml": "# the cache\nimage: mirror/redis:7\nreplicas: 2\n",
                     "bin/deploy": "#!/bin/sh\necho mirror/redis:7\n"},
                )] == [True, False, False]


def test_uncommitted_changes_are_those_in_the_folder_untracked_too_not_ignored(tmp_path):
    repo = _repository(tmp_path)
    write_tree(repo, {".gitignore": "*.log\n", "svc/build.log": "ignored\n"})
    run(repo, "add", ".gitignore")
    run(repo, "commit", "-q", "-m", "ignore logs")
    assert (git.has_uncommitted_changes(repo), git.has_uncommitted_changes(repo / "svc")) == (False, False)
    (repo / "top.txt").write_text("changed outside svc\n")
    assert (git.has_uncommitted_changes(repo), git.has_uncommitted_changes(repo / "svc")) == (True, False)
    (repo / "svc" / "new.yaml").write_text("image: untracked:1\n")
    assert git.has_uncommitted_changes(repo / "svc")


def test_clean_message_is_what_git_commit_dash_m_keeps():
    messages = ["  \ntitle \t\n\n\nbody line  \n  indented\n\n", "one line", "a\r\n\r\n\r\nb\r\n", "\n\n"]
    for message in messages:
        kept = subprocess.run(["git", "stripspace"], input=message, capture_output=True, text=True, check=True).stdout
        assert (message, git.clean_message(message)) == (message, kept or "\n")


def test_the_throwaway_clone_takes_no_template_and_keeps_no_reflog(tmp_path, monkeypatch):
    """A template folder's hooks (here a pre-push hook that refuses) are not the bot's; the clone
    holds only what git needs: no sample hooks, `description`, `info/exclude` or `logs/`."""
    repo = _repository(tmp_path)
    remote = tmp_path / "remote.git"
    run(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    template = write_tree(tmp_path / "template", {"hooks/pre-push": "#!/bin/sh\necho refused >&2\nexit 1\n"})
    (template / "hooks" / "pre-push").chmod(0o755)
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(template))
    with git.clone(f"file://{remote}", "main") as checkout:
        assert sorted(p.name for p in (checkout.root / ".git").iterdir()) == [
            "HEAD", "config", "objects", "packed-refs", "refs", "shallow"]
        sha = git.commit_files(checkout, {"svc/k8s.yaml": "image: mirror/redis:7\n"}, "Move redis",
                               git.Identity("Bot", "bot@example.com"))
        git.publish_branch(checkout, "rehome/mirror-images", sha, None)
    assert run(remote, "rev-parse", "rehome/mirror-images").strip() == sha


@pytest.mark.parametrize("name", ["a..b", "bad name", "-x", "refs/heads/x", "x.lock", "ends/", "a~1"])
def test_a_branch_name_git_would_refuse_or_misread_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError) as refused:
        check_branch_name(name)
    assert refused.value.message == f"{name!r} is not a usable branch name"


def test_a_branch_name_git_takes_as_it_is_is_kept() -> None:
    assert check_branch_name("rehome/mirror-images") == "rehome/mirror-images"
