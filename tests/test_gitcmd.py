"""Every git process the bot starts: its output, its errors, and what never appears in them."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bot.gitcmd import GitError, git_output, run_git
from bot.registry import Secret
from tests.helpers import git as run


def _repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    run(repo, "init", "-q", "-b", "main")
    return repo


def test_output_is_byte_exact_and_text_loses_only_its_last_newline(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    content = b"two lines\n\n"
    name = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    assert git_output(repo, ["hash-object", "-w", "--stdin"], stdin=content) == f"{name}\n".encode()
    assert git_output(repo, ["cat-file", "blob", name]) == content
    assert run_git(repo, ["cat-file", "blob", name]) == "two lines\n"


def test_a_failure_names_the_command_after_its_options_and_never_the_secret(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    with pytest.raises(GitError) as failed:
        run_git(repo, ["-c", "core.quotepath=off", "rev-parse", "--verify", "no-such-ref"])
    assert str(failed.value) == "git rev-parse failed: fatal: Needed a single revision"
    with pytest.raises(GitError) as echoed:
        run_git(repo, ["checkout", "canary-7f3a"], secret=Secret("canary-7f3a"))
    assert "canary-7f3a" not in str(echoed.value)
    assert str(echoed.value) == "git checkout failed: error: pathspec '***' did not match any file(s) known to git"


def test_git_stopped_by_a_signal_says_which(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    with pytest.raises(GitError) as stopped:  # the alias's shell stops the git that runs it
        run_git(repo, ["-c", "alias.halt=!kill -TERM $PPID", "halt"])
    assert str(stopped.value) == "git halt failed: stopped by SIGTERM"
    with pytest.raises(GitError) as failed:
        run_git(repo, ["-c", "alias.quit=!exit 3", "quit"])
    assert str(failed.value) == "git quit failed: exit 3"


def test_a_missing_folder_is_an_error_not_the_current_folder(tmp_path: Path) -> None:
    with pytest.raises(GitError) as failed:
        run_git(tmp_path / "missing", ["rev-parse", "--show-toplevel"])
    missing = tmp_path / "missing"
    assert str(failed.value) == f"git rev-parse failed: fatal: cannot change to '{missing}': No such file or directory"


def test_git_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GitError) as failed:
        run_git(tmp_path, ["status"])
    assert str(failed.value) == "cannot run git: it is not installed, or not on PATH"


def test_a_refusal_keeps_none_of_the_padding_git_writes_after_a_remote_line(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    run(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x")
    remote = tmp_path / "remote.git"
    run(tmp_path, "init", "-q", "--bare", str(remote))
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are not allowed here' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(GitError) as refused:
        git_output(repo, ["push", "--quiet", str(remote), "HEAD:refs/heads/rehome"])
    assert [line for line in str(refused.value).splitlines() if line != line.rstrip()] == []
    assert "remote: pushes are not allowed here\n" in str(refused.value)
