"""What one repository's run did: the plain data the pull request, the commit message and the
step summary are rendered from (`bot/render.py`, `templates/`)."""
from __future__ import annotations

import dataclasses
from typing import Any

from bot.plan import Occurrence
from bot.scan.model import Skipped


@dataclasses.dataclass(frozen=True)
class MovedImage:
    """One source image whose references now point at its verified mirror copy."""

    source: str
    target: str
    digest: str | None  # the verified digest both serve (None only in a dry run that could not check)
    platforms: tuple[str, ...]
    status: str  # the mirror step's status: present, copied (missing/unknown in a dry run)
    pulls: int | None
    repository_pulls: int | None
    occurrences: tuple[Occurrence, ...]


@dataclasses.dataclass(frozen=True)
class NotMoved:
    """A reference left as it is, and why: `unresolved`, `failed`, `differs`, `covered`, `untouched`
    (a rewrite safety check), or `internal`."""

    path: str
    line: int
    column: int
    raw: str
    category: str
    reason: str


@dataclasses.dataclass(frozen=True)
class PullWindow:
    source: str  # e.g. "bigquery://acme.logs" or a file name
    since: str | None  # ISO 8601 UTC
    until: str | None


@dataclasses.dataclass(frozen=True)
class RunReport:
    repository: str  # OWNER/NAME, or the local path's name
    destination: str
    base: str  # the base branch
    branch: str  # the bot's branch
    moved: tuple[MovedImage, ...]
    not_moved: tuple[NotMoved, ...]
    files_changed: tuple[str, ...]
    pull_window: PullWindow | None = None
    dry_run: bool = False
    skipped: tuple[Skipped, ...] = ()  # files the scan could not read: whatever they name stays

    @property
    def registries(self) -> tuple[str, ...]:
        """The source registries images moved from, sorted."""
        return tuple(sorted({m.source.split("/", 1)[0] for m in self.moved}))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
