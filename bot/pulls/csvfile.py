"""The guide's query results exported as CSV: `imageName,numberOfPulls`, and the tracking query's
`timeOfImagePull,imageName,numberOfPulls` (columns found by name, in any order).

A row is malformed when it has the wrong number of fields, an empty name, a count that is not a
non-negative integer, or a time that cannot be read.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import BinaryIO

from bot.pulls.source import Entry, Malformed, SourceError
from bot.pulls.times import BadTime, parse_time

IMAGE, PULLS, TIME = "imageName", "numberOfPulls", "timeOfImagePull"


def _header(line: str) -> list[str]:
    return [name.strip() for name in next(csv.reader([line]), [])]


class CsvCounts:
    """`timed`: the tracking query's shape, with `timeOfImagePull`."""

    def __init__(self, timed: bool) -> None:
        self.timed = timed
        self.has_times = timed
        self.name = "csv-times" if timed else "csv"
        self.description = (
            "CSV of the guide's tracking query (timeOfImagePull,imageName,numberOfPulls)" if timed
            else "CSV of the guide's query (imageName,numberOfPulls)"
        )

    def sniff(self, head: str) -> bool:
        columns = _header(head.lstrip("\ufeff").splitlines()[0]) if head.strip() else []
        return IMAGE in columns and PULLS in columns and (TIME in columns) == self.timed

    def entries(self, stream: BinaryIO, where: str) -> Iterator[Entry | Malformed]:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        try:
            yield from _rows(csv.reader(text))
        except UnicodeDecodeError as exc:
            raise SourceError(f"{where}: not UTF-8 text: {exc}") from None
        except csv.Error as exc:
            raise SourceError(f"{where}: not readable as CSV: {exc}") from None


def _rows(reader: csv.reader) -> Iterator[Entry | Malformed]:
    columns = [name.strip() for name in next(reader)]
    image_at, pulls_at = columns.index(IMAGE), columns.index(PULLS)
    time_at = columns.index(TIME) if TIME in columns else None
    line = reader.line_num + 1
    for row in reader:
        if row:
            yield _row_entry(row, len(columns), image_at, pulls_at, time_at, line)
        line = reader.line_num + 1


def _row_entry(row: list[str], width: int, image_at: int, pulls_at: int, time_at: int | None,
               line: int) -> Entry | Malformed:
    if len(row) != width or not row[image_at].strip():
        return Malformed(line)
    pulls = row[pulls_at].strip()
    if not (pulls.isascii() and pulls.isdigit()):
        return Malformed(line)
    time = None
    if time_at is not None:
        try:
            time = parse_time(row[time_at])
        except BadTime:
            return Malformed(line)
    return Entry(time, row[image_at].strip(), int(pulls))
