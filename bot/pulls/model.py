"""Pull counts as plain data: the window, the limit, one row per image, and the join used by plan/mirror."""
from __future__ import annotations

import dataclasses
import re
from functools import cached_property
from typing import Any

from bot.imageref import parse_or_none
from bot.pulls.times import HOUR, SECOND, format_duration, format_time

_RATELIMIT_RE = re.compile(r"^\s*([0-9]+)\s*;\s*w=([0-9]+)\s*$")


@dataclasses.dataclass(frozen=True)
class Window:
    """Entries count when since ≤ time ≤ until (microseconds since the epoch)."""

    since: int
    until: int

    def to_json(self) -> dict[str, str]:
        return {"since": format_time(self.since), "until": format_time(self.until)}


@dataclasses.dataclass(frozen=True)
class Limit:
    """The registry's pull limit: Docker Hub documents 100 pulls per 6 hours for anonymous users."""

    pulls: int = 100
    per: int = 6 * HOUR

    @classmethod
    def from_header(cls, value: str) -> Limit | None:
        """Docker Hub's `ratelimit-limit` header, `100;w=21600` (pulls; window in seconds); None when
        it does not read as that."""
        match = _RATELIMIT_RE.match(value)
        if match is None or int(match.group(1)) == 0 or int(match.group(2)) == 0:
            return None
        return cls(int(match.group(1)), int(match.group(2)) * SECOND)

    def to_json(self) -> dict[str, Any]:
        return {"pulls": self.pulls, "per": format_duration(self.per)}


@dataclasses.dataclass(frozen=True)
class ClusterCount:
    cluster: str
    pulls: int
    peak_6h: int | None
    at_risk: bool | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ImageCount:
    image: str
    repository: str
    pulls: int
    repository_pulls: int
    peak_6h: int | None
    at_risk: bool | None
    clusters: tuple[ClusterCount, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image, "repository": self.repository, "pulls": self.pulls,
            "repository_pulls": self.repository_pulls, "peak_6h": self.peak_6h, "at_risk": self.at_risk,
            "clusters": [c.to_json() for c in self.clusters],
        }


@dataclasses.dataclass(frozen=True)
class DayCount:
    day: str  # YYYY-MM-DD, UTC
    image: str
    pulls: int


@dataclasses.dataclass(frozen=True)
class PullCounts:
    source: str  # what was read, for a pull request's text
    window: Window | None  # None for a source without timestamps
    limit: Limit
    images: tuple[ImageCount, ...]
    days: tuple[DayCount, ...] = ()
    malformed: int = 0
    malformed_lines: tuple[int, ...] = ()

    @cached_property
    def _by_key(self) -> dict[str, int]:
        return {join_key(row.image): row.pulls for row in self.images}

    @cached_property
    def _by_repository(self) -> dict[str, int]:
        return {row.repository: row.repository_pulls for row in self.images}

    def lookup(self, image: str) -> tuple[int | None, int | None]:
        """Pulls of this exact reference, and of its repository across tags; None (never 0) where the
        source has no data. A reference without tag or digest is the same image as `:latest`."""
        return self._by_key.get(join_key(image)), self._by_repository.get(repository_of(image))

    def malformed_summary(self) -> str | None:
        """`2 (at 1877, 90211)`: how many entries could not be read, and where the first ones are;
        None when there were none."""
        if not self.malformed:
            return None
        more = ", …" if self.malformed > len(self.malformed_lines) else ""
        return f"{self.malformed} (at {', '.join(map(str, self.malformed_lines))}{more})"

    def describe(self) -> str:
        """One line for a pull request: where the counts come from and over which window."""
        if self.window is None:
            return f"pull counts from {self.source}"
        window = self.window.to_json()
        return f"pull counts from {self.source}, {window['since']} to {window['until']}"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "source": self.source,
            "window": self.window.to_json() if self.window else None,
            "limit": self.limit.to_json(),
            "malformed": self.malformed,
            "malformed_lines": list(self.malformed_lines),
            "images": [row.to_json() for row in self.images],
        }


def join_key(image: str) -> str:
    """The normalised reference, with `:latest` where there is neither tag nor digest (what Docker
    pulls). A name that is not a valid reference joins only with the same text."""
    ref = parse_or_none(image)
    if ref is None:
        return image
    if ref.tag is None and ref.digest is None:
        ref = ref.with_tag("latest")
    return str(ref)


def repository_of(image: str) -> str:
    ref = parse_or_none(image)
    return image if ref is None else ref.name


def display_name(image: str) -> str:
    """The normalised reference as written (no `:latest` added)."""
    ref = parse_or_none(image)
    return image if ref is None else str(ref)
