"""How often each image is pulled: log exports, BigQuery, CSV, Kubernetes events.

`load_counts(source, since=…, until=…)` is what other commands call; `PullCounts.lookup(image)` joins
by normalised reference.
"""
from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from bot.pulls import bigquery
from bot.pulls.count import WindowFlags, count_pulls, parse_window_flags, resolve_window
from bot.pulls.csvfile import CsvCounts
from bot.pulls.kubectl import KubectlEvents
from bot.pulls.logexport import JsonArrayExport, NdjsonExport
from bot.pulls.model import Limit, PullCounts
from bot.pulls.source import Entry, FileSource, Malformed, SourceError, SourcePathError
from bot.pulls.times import now
from bot.textfile import not_a_file

__all__ = ["FORMATS", "Limit", "PullCounts", "SourceError", "detect", "load_counts", "warn_malformed"]

log = logging.getLogger("rehome")

# File formats, in the order auto-detection tries them.
FORMATS: dict[str, FileSource] = {
    "log-json": JsonArrayExport(),
    "kubectl-events": KubectlEvents(),
    "log-ndjson": NdjsonExport(),
    "csv-times": CsvCounts(timed=True),
    "csv": CsvCounts(timed=False),
}

_HEAD_BYTES = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it is gzip."""
    raw = path.open("rb")
    if raw.read(2) == _GZIP_MAGIC:
        raw.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    raw.seek(0)
    return raw


def detect(path: Path) -> FileSource:
    try:
        with open_binary(path) as stream:
            head = stream.read(_HEAD_BYTES).decode("utf-8", errors="replace").lstrip("\ufeff")
    except (OSError, EOFError) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from None
    for source in FORMATS.values():
        if source.sniff(head):
            return source
    raise SourceError(
        f"{path}: not a format rehome reads pull counts from",
        hint="expected a Cloud Logging export (JSON array or NDJSON), `kubectl get events -A -o json` "
             "output, or CSV with imageName,numberOfPulls columns",
    )


def _file_entries(path: Path, source: FileSource) -> Iterator[Entry | Malformed]:
    try:
        with open_binary(path) as stream:
            yield from source.entries(stream, str(path))
    except (OSError, EOFError) as exc:  # includes a truncated or corrupt gzip stream
        raise SourceError(f"{path}: cannot read: {exc}") from None


def load_counts(source: str, *, since: str | None = None, until: str | None = None,
                limit: Limit = Limit()) -> PullCounts:
    """Pull counts from SOURCE: a file (format detected, gzip read directly) or bigquery://PROJECT.DATASET.

    `until` defaults to the newest entry (for BigQuery: now), `since` to 7 days before it; both take
    ISO 8601 times, `since` also a duration such as `7d`.
    """
    flags = parse_window_flags(since, until)
    if bigquery.is_bigquery(source):
        return _load_bigquery(source, flags, limit)
    path = _regular_file(source)
    fmt = detect(path)
    return count_pulls(
        lambda: _file_entries(path, fmt), source=f"{path.name} ({fmt.description})", has_times=fmt.has_times,
        flags=flags, limit=limit,
    )


def _regular_file(source: str) -> Path:
    """The path of SOURCE, a file that can be read twice (to detect its format, then to count)."""
    try:
        mode = os.stat(source).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise SourcePathError(f"{source}: no such file") from None
    except OSError as exc:
        raise SourceError(f"{source}: cannot read: {exc}") from None
    what = not_a_file(mode)
    if what == "a folder":
        raise SourcePathError(f"{source}: a folder, not a file")
    if what is not None:
        raise SourcePathError(f"{source}: {what}, not a file (rehome reads the source twice)",
                              hint="save it to a file first")
    return Path(source)


def _load_bigquery(source: str, flags: WindowFlags, limit: Limit) -> PullCounts:
    project, dataset = bigquery.parse_location(source)
    window = resolve_window(flags, newest=now())
    assert window is not None
    client = bigquery.make_client(project)
    return count_pulls(
        lambda: bigquery.query_entries(client, project, dataset, window), source=source, has_times=True,
        window=window, limit=limit, peaks=False,
    )


def warn_malformed(counts: PullCounts) -> None:
    """For output that has no place for them: the entries that could not be read."""
    summary = counts.malformed_summary()
    if summary:
        log.warning("%s: malformed entries skipped: %s", counts.source, summary)
