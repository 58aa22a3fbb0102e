"""Running git: every git process the bot starts goes through `git_output`, so each one logs the
same way, fails with the same `GitError` (git's message, any token removed), and takes its input
and environment the same way."""
from __future__ import annotations

import base64
import contextlib
import logging
import signal
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import RehomeError

if TYPE_CHECKING:
    from bot.registry import Secret

log = logging.getLogger("rehome")

# Set while a sweep runs its repositories in threads of this process: see `out_of_ctrl_c`.
_own_session = False


class GitError(RehomeError):
    """A git command that failed, or git that could not be started: the message is git's, with any
    secret removed."""


def basic_credential(token: Secret) -> str:
    """The token as git sends it over HTTPS (`Authorization: Basic …`)."""
    return base64.b64encode(f"x-access-token:{token.reveal()}".encode()).decode()


def _scrub(text: str, secret: Secret | None) -> str:
    """`text` without the token, raw or as the Basic credential git sends."""
    if secret is None or not secret.reveal():
        return text
    return text.replace(secret.reveal(), "***").replace(basic_credential(secret), "***")


@contextlib.contextmanager
def out_of_ctrl_c() -> Iterator[None]:
    """While this lasts, each git starts in a session of its own, out of the foreground process group a
    terminal's Ctrl-C is sent to: a sweep that lets the running repositories finish on Ctrl-C then does
    not see their pushes cut short. (Elsewhere Ctrl-C stops git with rehome, as it should.)"""
    global _own_session
    _own_session = True
    try:
        yield
    finally:
        _own_session = False


def git_output(cwd: Path | str, args: Sequence[str], *, env: Mapping[str, str] | None = None,
               secret: Secret | None = None, stdin: bytes | None = None) -> bytes:
    """git's standard output, byte for byte (`args` without the leading `git`)."""
    import git as gitpython  # here, not above: a scan that never runs git does not pay for loading it

    log.debug("git %s", _scrub(" ".join(args), secret))
    with contextlib.ExitStack() as stack:
        given = None
        if stdin is not None:  # GitPython takes a file to read, not bytes
            given = stack.enter_context(tempfile.TemporaryFile())
            given.write(stdin)
            given.seek(0)
        try:
            # `-C`, not GitPython's working directory, which it silently swaps for the current one
            # when the folder is missing.
            status, out, err = gitpython.Git().execute(
                ["git", "-C", str(cwd), *args], istream=given, env=dict(env or {}), with_extended_output=True,
                with_exceptions=False, stdout_as_string=False, strip_newline_in_stdout=False,
                start_new_session=_own_session)
        except gitpython.GitCommandNotFound:
            raise GitError("cannot run git: it is not installed, or not on PATH") from None
    if status != 0:
        said = "\n".join(line.rstrip() for line in str(err).strip().splitlines())  # `remote:` lines end padded
        raise GitError(_scrub(f"git {_command(args)} failed: {said or _ended(status)}", secret))
    assert isinstance(out, bytes)
    return out


def _ended(status: int) -> str:
    """How git ended, when it said nothing: its exit status, or the signal that stopped it."""
    if status >= 0:
        return f"exit {status}"
    try:
        return f"stopped by {signal.Signals(-status).name}"
    except ValueError:
        return f"stopped by signal {-status}"


def _command(args: Sequence[str]) -> str:
    """The git command `args` run (`worktree` in `-c core.hooksPath=… worktree add`)."""
    words = iter(args)
    for word in words:
        if word in ("-c", "-C"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return " ".join(args)


def run_git(cwd: Path | str, args: Sequence[str], *, env: Mapping[str, str] | None = None,
            secret: Secret | None = None, stdin: bytes | None = None) -> str:
    """git's standard output as text, without its last newline."""
    out = git_output(cwd, args, env=env, secret=secret, stdin=stdin)
    return out.decode("utf-8", "surrogateescape").removesuffix("\n")
