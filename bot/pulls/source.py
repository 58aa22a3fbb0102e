"""What every pull-count source gives the counter, and the protocol a source implements."""
from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, NamedTuple, Protocol

from bot.errors import RehomeError, UsageError


# The most pulls one entry may say (BigQuery's INT64): the counter keeps each entry's count in 64 bits.
MAX_PULLS = 2**63 - 1


class Entry(NamedTuple):
    """One valid entry. `image` is the name as the log wrote it, or None when the entry is not a pull
    (a `Pulled`, `Failed`, `BackOff` … event still counts for the newest entry's time)."""

    time: int | None  # microseconds since the epoch; None for a source without timestamps
    image: str | None
    pulls: int = 1
    cluster: str | None = None
    position: int = 0  # as in Malformed, to name the entry in a warning


class Malformed(NamedTuple):
    """An entry that could not be read: its line number, or its 1-based position in a JSON array."""

    position: int


class SourceError(RehomeError):
    """A source that cannot be read at all (unknown format, broken JSON document, unreachable service)."""


class SourcePathError(SourceError, UsageError):
    """A SOURCE path that names no regular file: a usage error (exit 2), as every path named on the
    command line is."""


class FileSource(Protocol):
    """A file format. `sniff` sees the first decoded characters of the file."""

    name: str
    description: str
    has_times: bool

    def sniff(self, head: str) -> bool: ...

    def entries(self, stream: BinaryIO, where: str) -> Iterator[Entry | Malformed]: ...
