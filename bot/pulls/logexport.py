"""Cloud Logging exports: `gcloud logging read … --format=json` (a JSON array) and NDJSON (one entry
per line, as a sink to Cloud Storage writes).

An entry is malformed when it is not valid JSON (an NDJSON line that is not UTF-8 counts as such, and
so does an entry nested deeper than JSON can be read), or lacks `timestamp`, `jsonPayload.reason` or
`jsonPayload.message` (or has them in a form that cannot be read, such as a time outside the years 1
to 9999). Entries of other reasons are valid, just not pulls.
"""
from __future__ import annotations

import io
import re
from datetime import datetime
from collections.abc import Iterator
from typing import BinaryIO

import msgspec

from bot.jsontext import loads
from bot.pulls.jsonstream import JsonStream, JsonStreamError
from bot.pulls.message import PULLING, quoted_image
from bot.pulls.source import Entry, Malformed, SourceError
from bot.pulls.times import BadTime, from_datetime


class Payload(msgspec.Struct):
    reason: str
    message: str


class Labels(msgspec.Struct, frozen=True):
    project_id: str = ""
    location: str = ""
    cluster_name: str = ""


class Resource(msgspec.Struct):
    labels: Labels = Labels()


class LogEntry(msgspec.Struct):
    # msgspec reads RFC 3339 itself (nanoseconds rounded to microseconds): most of the speed of counting.
    timestamp: datetime
    jsonPayload: Payload
    resource: Resource | None = None


_DECODE = msgspec.json.Decoder(LogEntry).decode
_IMAGES_KEPT = 10_000
_BOM = b"\xef\xbb\xbf"
_ENTRY_START_RE = re.compile(r'\{.*?"(?:jsonPayload|timestamp)"\s*:', re.DOTALL)


def cluster_of(resource: Resource | None) -> str | None:
    """`PROJECT/LOCATION/CLUSTER` from a `k8s_pod` resource's labels (what Docker Hub's per-address
    limit is closest to: a cluster's nodes share their NAT addresses)."""
    if resource is None or not resource.labels.cluster_name:
        return None
    labels = resource.labels
    if labels.project_id and labels.location:
        return f"{labels.project_id}/{labels.location}/{labels.cluster_name}"
    return "/".join(part for part in (labels.project_id, labels.location, labels.cluster_name) if part)


class EntryReader:
    """Turns decoded log entries into pull entries; remembers the image of each message it has seen
    (an export holds a few distinct messages, many times over)."""

    def __init__(self) -> None:
        self._images: dict[str, str] = {}

    def entry(self, log: LogEntry, position: int) -> Entry | Malformed:
        try:
            time = from_datetime(log.timestamp)
        except BadTime:
            return Malformed(position)
        payload = log.jsonPayload
        if payload.reason != PULLING:
            return Entry(time, None, position=position)
        image = self._images.get(payload.message)
        if image is None:
            if len(self._images) >= _IMAGES_KEPT:
                self._images.clear()
            image = self._images[payload.message] = quoted_image(payload.message) or ""
        return Entry(time, image, 1, cluster_of(log.resource), position) if image else Malformed(position)


class NdjsonExport:
    name = "log-ndjson"
    description = "Cloud Logging export, one JSON entry per line"
    has_times = True

    def sniff(self, head: str) -> bool:
        head = head.lstrip()
        lines = head.splitlines()[:50]
        if len(lines) > 1 and not head.endswith("\n"):
            lines.pop()  # the head may end inside a line
        for line in lines:
            try:
                value = loads(line)
            except ValueError:
                continue
            return isinstance(value, dict) and ("jsonPayload" in value or "timestamp" in value)
        # An entry may be longer than the head: then its start is all there is to go by.
        return "\n" not in head and _ENTRY_START_RE.match(head) is not None

    def entries(self, stream: BinaryIO, where: str) -> Iterator[Entry | Malformed]:
        decode, entry = _DECODE, EntryReader().entry
        for number, line in enumerate(stream, 1):
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM):]
            try:
                log = decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
                if not line.isspace():
                    yield Malformed(number)
                continue
            yield entry(log, number)


class JsonArrayExport:
    name = "log-json"
    description = "Cloud Logging export, a JSON array (gcloud logging read --format=json)"
    has_times = True

    def sniff(self, head: str) -> bool:
        return head.lstrip().startswith("[")

    def entries(self, stream: BinaryIO, where: str) -> Iterator[Entry | Malformed]:
        reader = JsonStream(io.TextIOWrapper(stream, encoding="utf-8-sig"))
        entry = EntryReader().entry
        position = 0
        try:
            for position, item in enumerate(reader.array_items(), 1):
                try:
                    log = msgspec.convert(item, LogEntry)
                except msgspec.ValidationError:
                    yield Malformed(position)
                    continue
                yield entry(log, position)
            reader.end()
        except JsonStreamError as exc:
            raise SourceError(f"{where}: not a valid JSON array after entry {position}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise SourceError(f"{where}: not UTF-8 text: {exc}") from None

