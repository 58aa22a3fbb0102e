"""`kubectl get events -A -o json`: for teams without a log sink (events live about an hour).

An event is malformed when it is not an object, or lacks `reason`, `message` or any time, or has a
`count` that is not a whole number from 1 to MAX_PULLS. A repeated event counts `count` times
(`series.count` for the newer event series), all at its last time.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from bot.pulls.jsonstream import JsonStream, JsonStreamError
from bot.pulls.message import PULLING, quoted_image
from bot.pulls.source import MAX_PULLS, Entry, Malformed, SourceError
from bot.pulls.times import BadTime, parse_time

_LIST_RE = re.compile(r'^\s*\{\s*"(apiVersion|items|kind|metadata)"\s*:')


class KubectlEvents:
    name = "kubectl-events"
    description = "Kubernetes events (kubectl get events -A -o json)"
    has_times = True

    def sniff(self, head: str) -> bool:
        return _LIST_RE.match(head) is not None and '"items"' in head

    def entries(self, stream: BinaryIO, where: str) -> Iterator[Entry | Malformed]:
        reader = JsonStream(io.TextIOWrapper(stream, encoding="utf-8-sig"))
        position = 0
        try:
            for key in reader.object_members():
                if key != "items":
                    reader.value()
                    continue
                for position, item in enumerate(reader.array_items(), 1):
                    yield _event_entry(item, position)
            reader.end()
        except JsonStreamError as exc:
            raise SourceError(f"{where}: not valid JSON after event {position}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise SourceError(f"{where}: not UTF-8 text: {exc}") from None


def _event_entry(event: Any, position: int) -> Entry | Malformed:
    if not isinstance(event, dict):
        return Malformed(position)
    reason, message = event.get("reason"), event.get("message")
    time = _event_time(event)
    if not isinstance(reason, str) or not isinstance(message, str) or time is None:
        return Malformed(position)
    if reason != PULLING:
        return Entry(time, None, position=position)
    image = quoted_image(message)
    count = _event_count(event)
    if not image or count is None:
        return Malformed(position)
    return Entry(time, image, count, position=position)


def _event_time(event: dict[str, Any]) -> int | None:
    series = event.get("series") if isinstance(event.get("series"), dict) else {}
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    candidates = (
        series.get("lastObservedTime"), event.get("lastTimestamp"), event.get("eventTime"),
        event.get("firstTimestamp"), metadata.get("creationTimestamp"),
    )
    for value in candidates:
        if isinstance(value, str) and value:
            try:
                return parse_time(value)
            except BadTime:
                return None
    return None


def _event_count(event: dict[str, Any]) -> int | None:
    series = event.get("series")
    count = series.get("count") if isinstance(series, dict) else event.get("count", 1)
    if count is None:
        return 1
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PULLS:
        return None
    return count
