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
    """An open pull request (or, for the local forge, where its text was written)."""

    number: int | None
    url: str | None
    title: str
    body: str


class Forge(Protocol):
    name: str
    repository: str  # OWNER/NAME, or a local folder's name

    def checkout(self, dry_run: bool = False) -> AbstractContextManager[Checkout]:
        """A working tree at the tip of the base branch, where the bot's branch is built
        (for a dry run, one that writes nothing outside temporary folders)."""

    def find_pull_request(self, branch: str, base: str) -> PullRequest | None:
        """The open pull request from `branch` into `base`, if there is one."""

    def open_pull_request(self, request: PullRequestRequest, existing: PullRequest | None) -> PullRequest:
        """Create the pull request, or edit `existing` (never a second one)."""
