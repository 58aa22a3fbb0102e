"""The forge protocol and the plain data it takes and returns."""
from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from typing import Protocol

from bot.git import Checkout


@dataclasses.dataclass(frozen=True)
class PullRequestRequest:
    """The pull request the bot wants for its branch."""

    branch: str
    base: str
    title: str
    body: str
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    draft: bool = False


@dataclasses.dataclass(frozen=True)
class PullRequest:
    """A pull request of the bot's branch (or, for the local forge, where its text was written)."""

    number: int | None
    url: str | None
    title: str
    body: str
    # What could not be set on it (labels, reviewers, assignees): it is open all the same, and the
    # next run adds what is still missing.
    warnings: tuple[str, ...] = ()
    base: str | None = None  # the branch it would merge into
    head_sha: str | None = None  # its last commit
    head_ref: str | None = None  # where the remote serves that commit, its branch gone or not (refs/pull/N/head)


class Forge(Protocol):
    name: str
    repository: str  # OWNER/NAME, or a local folder's name

    def checkout(self, dry_run: bool = False) -> AbstractContextManager[Checkout]:
        """A working tree at the tip of the base branch, where the bot's branch is built
        (for a dry run, one that writes nothing outside temporary folders)."""

    def find_pull_request(self, branch: str, base: str) -> PullRequest | None:
        """The open pull request from `branch`, if there is one: the one into `base`, else one into
        another branch (the default branch before it changed)."""

    def closed_pull_request(self, branch: str) -> PullRequest | None:
        """The last pull request from `branch`, when it was closed without merging."""

    @property
    def reads_pull_requests(self) -> bool:
        """Whether a dry run may ask about the bot's pull requests (with a token, so a sweep's dry
        run spends no anonymous requests)."""

    def retarget_pull_request(self, existing: PullRequest, base: str) -> PullRequest:
        """`existing`, made to merge into `base` instead."""

    def open_pull_request(self, request: PullRequestRequest, existing: PullRequest | None) -> PullRequest:
        """Create the pull request, or edit `existing` (never a second one)."""

    def complete_pull_request(self, request: PullRequestRequest, existing: PullRequest | None) -> PullRequest | None:
        """The pull request of a branch that already holds this change: the labels, reviewers and
        assignees `request` asks for and `existing` lacks are added, nothing else is edited (the
        local forge writes its text again)."""

    def no_pull_request(self) -> None:
        """This run proposes nothing (nothing to move, or the branch is someone else's): an open
        pull request is left as it is; the local forge empties its pull request file."""
