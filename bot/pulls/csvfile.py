"""The guide's query results exported as CSV: `imageName,numberOfPulls`, and the tracking query's
`timeOfImagePull,imageName,numberOfPulls` (columns found by name, in any order).

A row is malformed when it is not readable as CSV (a quote left open to the end of the file, text
right after a closing quote), is not UTF-8, has the wrong number of fields, an empty name, a count
that is not a whole number from 0 to MAX_PULLS, or a time that cannot be read. A quoted value may
span lines; when the row it makes is malformed (a quote left open takes in the lines after it), the
row's first line is reported and the lines after it are read again as rows of their own.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from bot.pulls.source import MAX_PULLS, Entry, Malformed, SourceError
from bot.pulls.times import BadTime, parse_time

IMAGE, PULLS, TIME = "imageName", "numberOfPulls", "timeOfImagePull"
_NOT_UTF8_RE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of bytes that are not UTF-8
Line = tuple[int, str]  # (line number, text)


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
        # Bytes that are not UTF-8 become lone surrogates, which UTF-8 text never decodes to: the row
        # holding them is malformed, and the rest of the file still counts.
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
        lines = _Lines(text)
        try:
            yield from _rows(lines, csv.reader(lines, strict=True))
        except csv.Error as exc:  # only the header can get here
            raise SourceError(f"{where}: not readable as CSV: {exc}") from None


class _Lines:
    """The file's lines for the CSV reader, numbered; `taken` holds those of the row being read, and
    lines given back are read again before any new one."""

    def __init__(self, text: Iterable[str]) -> None:
        self._text = iter(text)
        self._read = 0
        self._again: list[Line] = []  # the next one to read again last
        self.taken: list[Line] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._again:
            line = self._again.pop()
        else:
            line = (self._read + 1, next(self._text))
            self._read += 1
        self.taken.append(line)
        return line[1]

    def give_back(self, lines: list[Line]) -> None:
        self._again.extend(reversed(lines))


def _rows(lines: _Lines, reader: csv.reader) -> Iterator[Entry | Malformed]:
    columns = [name.strip() for name in next(reader)]
    image_at, pulls_at = columns.index(IMAGE), columns.index(PULLS)
    time_at = columns.index(TIME) if TIME in columns else None
    while True:
        lines.taken = []
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:  # a value longer than the csv module takes, a quote left open at the end, …
            row = None
        if row == []:
            continue
        first = lines.taken[0][0]
        entry = Malformed(first) if row is None else _row_entry(row, len(columns), image_at, pulls_at, time_at, first)
        if type(entry) is Malformed and len(lines.taken) > 1:
            lines.give_back(lines.taken[1:])
        yield entry


def _row_entry(row: list[str], width: int, image_at: int, pulls_at: int, time_at: int | None,
               line: int) -> Entry | Malformed:
    if len(row) != width or not row[image_at].strip() or any(map(_NOT_UTF8_RE.search, row)):
        return Malformed(line)
    pulls = _count(row[pulls_at].strip())
    if pulls is None:
        return Malformed(line)
    time = None
    if time_at is not None:
        try:
            time = parse_time(row[time_at])
        except BadTime:
            return Malformed(line)
    return Entry(time, row[image_at].strip(), pulls, position=line)


_MAX_PULLS_DIGITS = len(str(MAX_PULLS))


def _count(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > _MAX_PULLS_DIGITS:  # and so never more digits than int() converts
        return None
    pulls = int(digits)
    return pulls if pulls <= MAX_PULLS else None
