"""Which repositories a sweep takes: filters, and the shard a repository belongs to."""
from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from bot import render
from bot.errors import UsageError


@dataclasses.dataclass(frozen=True)
class RepoInfo:
    full_name: str  # owner/name
    default_branch: str
    clone_url: str
    archived: bool = False
    disabled: bool = False
    fork: bool = False
    empty: bool = False
    topics: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> RepoInfo:
        """From a repository object of GitHub's REST API (PyGithub's `raw_data`)."""
        return cls(
            full_name=data["full_name"],
            default_branch=data.get("default_branch") or "main",
            clone_url=data.get("clone_url") or "",
            archived=bool(data.get("archived")),
            disabled=bool(data.get("disabled")),
            fork=bool(data.get("fork")),
            # GitHub reports size 0 (KB) for a repository without any commit.
            empty=data.get("size") == 0,
            topics=tuple(data.get("topics") or ()),
        )


@dataclasses.dataclass(frozen=True)
class Unreadable:
    """A repository named in `--repos-file` that GitHub could not give: only its name is known."""

    full_name: str
    error: str


def shard_of(full_name: str, count: int) -> int:
    """The shard (0..count-1) a repository belongs to: stable across machines and runs."""
    return int.from_bytes(hashlib.sha256(full_name.lower().encode()).digest(), "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` with 0 <= K < N, in the digits 0-9."""
    match = re.fullmatch(r"([0-9]+)/([0-9]+)", text.strip())  # not \d: it matches other scripts' digits too
    try:
        shard = (int(match[1]), int(match[2])) if match is not None else None
    except ValueError:  # more digits than int() converts
        shard = None
    if shard is None or not 0 <= shard[0] < shard[1]:
        raise UsageError(f"--shard {render.clip(repr(text), 80)}: expected K/N with 0 <= K < N, written in the "
                         "digits 0-9, e.g. 0/4")
    return shard


def _regexes(patterns: Iterable[str], flag: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise UsageError(f"{flag} {pattern!r}: invalid regular expression: {exc}") from None
    return tuple(compiled)


@dataclasses.dataclass(frozen=True)
class Selection:
    include: tuple[re.Pattern[str], ...] = ()  # searched in owner/name
    exclude: tuple[re.Pattern[str], ...] = ()
    topics: tuple[str, ...] = ()  # a repository needs at least one of them
    include_archived: bool = False
    include_forks: bool = False
    include_empty: bool = False
    limit: int | None = None
    shard: tuple[int, int] | None = None

    @classmethod
    def from_flags(cls, include: Iterable[str], exclude: Iterable[str], **flags: Any) -> Selection:
        return cls(_regexes(include, "--repo-include"), _regexes(exclude, "--repo-exclude"), **flags)

    def why_not(self, repo: RepoInfo | Unreadable) -> str | None:
        """Why the sweep leaves `repo` out, or None when it takes it. Of one GitHub could not read,
        only the tests on the name apply."""
        if (reason := self._other_shard(repo.full_name)) is not None:
            return reason
        if isinstance(repo, Unreadable):
            return self._name_filtered(repo.full_name)
        if repo.disabled:
            return "disabled"
        if repo.archived and not self.include_archived:
            return "archived"
        if repo.fork and not self.include_forks:
            return "a fork"
        if repo.empty and not self.include_empty:
            return "empty"
        if (reason := self._name_filtered(repo.full_name)) is not None:
            return reason
        if self.topics and not set(self.topics) & set(repo.topics):
            return f"has none of the topics {', '.join(self.topics)}"
        return None

    def _other_shard(self, full_name: str) -> str | None:
        if self.shard is not None and shard_of(full_name, self.shard[1]) != self.shard[0]:
            return f"in shard {shard_of(full_name, self.shard[1])}/{self.shard[1]}"
        return None

    def _name_filtered(self, full_name: str) -> str | None:
        if self.include and not any(p.search(full_name) for p in self.include):
            return "not matched by --repo-include"
        if any(p.search(full_name) for p in self.exclude):
            return "matched by --repo-exclude"
        return None


def over_limit(limit: int) -> str:
    """Why a repository past the first `limit` is left out."""
    return f"over --limit {limit}"


def select(repos: Iterable[RepoInfo | Unreadable],
           selection: Selection) -> tuple[list[RepoInfo | Unreadable], list[tuple[RepoInfo | Unreadable, str]]]:
    """(taken, [(left out, why)]), each sorted by name; `limit` cuts the taken list, where a
    repository GitHub could not read counts as any other."""
    taken: list[RepoInfo | Unreadable] = []
    left: list[tuple[RepoInfo | Unreadable, str]] = []
    for repo in sorted(repos, key=lambda r: r.full_name.lower()):
        reason = selection.why_not(repo)
        if reason is None and selection.limit is not None and len(taken) >= selection.limit:
            reason = over_limit(selection.limit)
        if reason is None:
            taken.append(repo)
        else:
            left.append((repo, reason))
    return taken, left
