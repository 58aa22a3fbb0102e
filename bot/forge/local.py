"""The local forge: the branch lives in the local repository; the pull request text goes to a file
(`--pr-file`) or to standard output, for people without GitHub."""
from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from bot import git
from bot.forge.base import PullRequest, PullRequestRequest
from bot.git import Checkout
from bot.output import write_atomically

log = logging.getLogger("rehome")


class LocalForge:
    name = "local"

    def __init__(self, path: Path, pr_file: Path | None = None, stream: TextIO | None = sys.stdout) -> None:
        self.path = path
        self.repository = path.resolve().name
        self.pr_file = pr_file
        self.stream = stream  # where the text goes without --pr-file (None: nowhere)

    @contextlib.contextmanager
    def checkout(self, dry_run: bool = False) -> Iterator[Checkout]:
        """The base commit, as the real run reads it: a dry run previews what would be committed."""
        if not dry_run:
            with git.local_worktree(self.path) as checkout:
                yield checkout
            return
        with git.preview(self.path) as checkout:
            if git.has_uncommitted_changes(self.path):
                log.warning("%s: uncommitted changes are not part of this preview: like the real run, it reads the "
                            "last commit of %s (%s)", self.repository, checkout.base, checkout.base_sha[:12])
            yield checkout

    def find_pull_request(self, branch: str, base: str) -> PullRequest | None:
        return None

    def closed_pull_request(self, branch: str) -> PullRequest | None:
        return None

    @property
    def reads_pull_requests(self) -> bool:
        return False

    def retarget_pull_request(self, existing: PullRequest, base: str) -> PullRequest:
        return existing

    def open_pull_request(self, request: PullRequestRequest, existing: PullRequest | None) -> PullRequest:
        text = f"{request.title}\n\n{request.body}"
        if self.pr_file is not None:
            write_atomically(self.pr_file, text)
            url = str(self.pr_file)
        else:
            if self.stream is not None:
                self.stream.write(text if text.endswith("\n") else text + "\n")
            url = None
        return PullRequest(None, url, request.title, request.body)

    def complete_pull_request(self, request: PullRequestRequest, existing: PullRequest | None) -> PullRequest:
        return self.open_pull_request(request, existing)

    def no_pull_request(self) -> None:
        if self.pr_file is not None:
            write_atomically(self.pr_file, "")
