from __future__ import annotations

import io
import json

import pytest

from bot.pulls.kubectl import KubectlEvents
from bot.pulls.source import MAX_PULLS, Entry, Malformed, SourceError
from bot.pulls.times import parse_time
from tests.pulls.logdata import kube_event

T = "2024-05-01T10:00:00Z"


def events(items: list[object], **extra: object) -> list[Entry | Malformed]:
    document = {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}, **extra}
    text = json.dumps(document, indent=4)
    return list(KubectlEvents().entries(io.BytesIO(text.encode()), "events.json"))


def test_pulling_events_count_with_their_repeat_count_and_last_time() -> None:
    repeated = kube_event("2024-05-01T09:00:00Z", "redis:7", count=3)
    repeated["lastTimestamp"] = T
    series = kube_event(T, "busybox", count=1)
    series["series"] = {"count": 4, "lastObservedTime": "2024-05-01T11:00:00.000000Z"}
    event_time_only = kube_event(T, "nginx:1.14.2")
    event_time_only.update(firstTimestamp=None, lastTimestamp=None, eventTime="2024-05-01T12:00:00.000000Z")
    no_reason = kube_event(T, "nginx")
    del no_reason["reason"]
    no_time = kube_event(T, "nginx")
    no_time.update(firstTimestamp=None, lastTimestamp=None, metadata={"name": "x"})
    bad_count = kube_event(T, "nginx", count=0)
    assert events([
        kube_event(T, "nginx:1.14.2"),
        kube_event(T, "nginx:1.14.2", reason="Pulled"),
        kube_event(T, "nginx:1.14.2", reason="BackOff"),
        repeated, series, event_time_only,
        no_reason, no_time, bad_count, "text",
    ]) == [
        Entry(parse_time(T), "nginx:1.14.2", 1, position=1),
        Entry(parse_time(T), None, position=2), Entry(parse_time(T), None, position=3),
        Entry(parse_time(T), "redis:7", 3, position=4),
        Entry(parse_time("2024-05-01T11:00:00Z"), "busybox", 4, position=5),
        Entry(parse_time("2024-05-01T12:00:00Z"), "nginx:1.14.2", 1, position=6),
        Malformed(7), Malformed(8), Malformed(9), Malformed(10),
    ]


def test_items_after_other_members_and_empty_lists() -> None:
    assert events([]) == []
    text = json.dumps({"kind": "List", "metadata": {"a": [1, {"b": "]"}]}, "items": [kube_event(T, "nginx")]})
    assert list(KubectlEvents().entries(io.BytesIO(text.encode()), "e.json")) == [
        Entry(parse_time(T), "nginx", 1, position=1)]


def test_broken_document_is_an_error() -> None:
    text = json.dumps({"apiVersion": "v1", "items": [kube_event(T, "nginx"), kube_event(T, "redis")]})[:-40]
    with pytest.raises(SourceError, match=r"^e\.json: not valid JSON after event 1: "):
        list(KubectlEvents().entries(io.BytesIO(text.encode()), "e.json"))


def test_sniff() -> None:
    assert KubectlEvents().sniff('{\n    "apiVersion": "v1",\n    "items": [\n')
    assert not KubectlEvents().sniff('{"insertId": "x", "jsonPayload": {"items": 1}}\n')
    assert not KubectlEvents().sniff("[]")


def test_a_byte_order_mark_and_counts_beyond_64_bits() -> None:
    huge = kube_event(T, "redis")
    huge["count"] = MAX_PULLS + 1
    text = "\ufeff" + json.dumps({"apiVersion": "v1", "items": [
        kube_event(T, "nginx", count=MAX_PULLS), huge, kube_event(T, "busybox", count=12345)]})
    text = text.replace("12345", "9" * 5000)  # more digits than Python converts to an int
    assert list(KubectlEvents().entries(io.BytesIO(text.encode()), "e.json")) == [
        Entry(parse_time(T), "nginx", MAX_PULLS, position=1), Malformed(2), Malformed(3),
    ]


def test_an_event_nested_deeper_than_json_reads_is_malformed() -> None:
    deep = "[" * 200_000 + "]" * 200_000
    text = (f'{{"apiVersion": "v1", "metadata": {deep}, '
            f'"items": [{json.dumps(kube_event(T, "nginx"))}, {deep}, {json.dumps(kube_event(T, "redis"))}]}}')
    assert list(KubectlEvents().entries(io.BytesIO(text.encode()), "e.json")) == [
        Entry(parse_time(T), "nginx", 1, position=1), Malformed(2), Entry(parse_time(T), "redis", 1, position=3),
    ]
