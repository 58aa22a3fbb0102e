from __future__ import annotations

import io
import json

import pytest

from bot.pulls.logexport import JsonArrayExport, NdjsonExport
from bot.pulls.source import Entry, Malformed, SourceError
from bot.pulls.times import parse_time
from tests.pulls.logdata import log_entry

T = "2024-05-01T10:00:00Z"
T_US = parse_time(T)


def ndjson_entries(lines: list[object]) -> list[Entry | Malformed]:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    return list(NdjsonExport().entries(io.BytesIO(text.encode()), "pulls.ndjson"))


def test_ndjson_pulls_other_reasons_and_malformed_lines() -> None:
    no_timestamp = log_entry(T, "redis:7")
    del no_timestamp["timestamp"]
    no_reason = log_entry(T, "redis:7")
    del no_reason["jsonPayload"]["reason"]
    no_message = log_entry(T, "redis:7")
    del no_message["jsonPayload"]["message"]
    bad_time = log_entry("last tuesday", "redis:7")
    no_quotes = log_entry(T, "redis:7")
    no_quotes["jsonPayload"]["message"] = "Pulling image redis:7"
    assert ndjson_entries([
        log_entry(T, "nginx:1.14.2"),                        # 1
        log_entry(T, "nginx:1.14.2", reason="Pulled"),       # 2: valid, not a pull
        log_entry(T, "nginx:1.14.2", reason="Failed"),       # 3
        log_entry(T, "nginx:1.14.2", reason="BackOff"),      # 4
        '{"timestamp": "2024-05-01T10:00:00Z", "jsonPay',    # 5: cut short
        "",                                                  # 6: blank, not an entry
        no_timestamp, no_reason, no_message, bad_time,       # 7-10
        no_quotes,                                           # 11: a pull naming no image
        "[1, 2]",                                            # 12
        log_entry(T, "quay.io/jetstack/cert-manager-controller:v1.14.4", cluster=None),  # 13
    ]) == [
        Entry(T_US, "nginx:1.14.2", 1, "acme/us-central1/prod", 1),
        Entry(T_US, None, position=2), Entry(T_US, None, position=3), Entry(T_US, None, position=4),
        Malformed(5), Malformed(7), Malformed(8), Malformed(9), Malformed(10), Malformed(11), Malformed(12),
        Entry(T_US, "quay.io/jetstack/cert-manager-controller:v1.14.4", 1, None, 13),
    ]


def test_json_array_positions_are_entries_not_lines() -> None:
    broken = log_entry(T, "redis:7")
    del broken["jsonPayload"]
    text = json.dumps([log_entry(T, "nginx"), "not an entry", broken, log_entry(T, "nginx", reason="Pulled")], indent=2)
    assert list(JsonArrayExport().entries(io.BytesIO(text.encode()), "pulls.json")) == [
        Entry(T_US, "nginx", 1, "acme/us-central1/prod", 1), Malformed(2), Malformed(3), Entry(T_US, None, position=4),
    ]


def test_json_array_streams_across_chunks() -> None:
    entries = [log_entry(f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z", f"app{i}:v1") for i in range(3000)]
    text = json.dumps(entries, indent=2)
    assert len(text) > 4 * 65536  # several chunks
    read = list(JsonArrayExport().entries(io.BytesIO(text.encode()), "pulls.json"))
    assert [e.image for e in read] == [f"app{i}:v1" for i in range(3000)]


def test_a_json_array_cut_short_is_an_error_naming_the_file() -> None:
    text = json.dumps([log_entry(T, "nginx"), log_entry(T, "redis")])[:-30]
    with pytest.raises(SourceError, match=r"^pulls\.json: not a valid JSON array after entry 1: "):
        list(JsonArrayExport().entries(io.BytesIO(text.encode()), "pulls.json"))


@pytest.mark.parametrize(("head", "ndjson", "array"), [
    (json.dumps(log_entry(T, "nginx")) + "\n", True, False),
    ("garbage\n" + json.dumps(log_entry(T, "nginx")) + "\n", True, False),
    ("[\n  {\n", False, True),
    ("imageName,numberOfPulls\n", False, False),
])
def test_sniff(head: str, ndjson: bool, array: bool) -> None:
    assert (NdjsonExport().sniff(head), JsonArrayExport().sniff(head)) == (ndjson, array)


def test_ndjson_with_a_byte_order_mark_and_crlf_lines() -> None:
    text = "\ufeff" + json.dumps(log_entry(T, "nginx")) + "\r\n" + json.dumps(log_entry(T, "redis")) + "\r\n"
    assert list(NdjsonExport().entries(io.BytesIO(text.encode()), "p.ndjson")) == [
        Entry(T_US, "nginx", 1, "acme/us-central1/prod", 1), Entry(T_US, "redis", 1, "acme/us-central1/prod", 2),
    ]


def test_an_ndjson_line_that_is_not_utf8_is_malformed_and_the_rest_counts() -> None:
    latin1 = json.dumps(log_entry(T, "café:1"), ensure_ascii=False).encode("latin-1")
    out_of_range = log_entry(T, "redis")
    out_of_range["timestamp"] = "0001-01-01T00:00:00+01:00"
    data = b"\n".join([json.dumps(log_entry(T, "nginx")).encode(), latin1, json.dumps(out_of_range).encode(),
                       json.dumps(log_entry(T, "redis")).encode()]) + b"\n"
    assert list(NdjsonExport().entries(io.BytesIO(data), "p.ndjson")) == [
        Entry(T_US, "nginx", 1, "acme/us-central1/prod", 1), Malformed(2), Malformed(3),
        Entry(T_US, "redis", 1, "acme/us-central1/prod", 4),
    ]


def test_a_json_array_with_a_byte_order_mark() -> None:
    text = "\ufeff" + json.dumps([log_entry(T, "nginx")])
    assert list(JsonArrayExport().entries(io.BytesIO(text.encode()), "p.json")) == [
        Entry(T_US, "nginx", 1, "acme/us-central1/prod", 1),
    ]


def test_an_entry_nested_deeper_than_json_reads_is_malformed() -> None:
    deep = "[" * 200_000 + "]" * 200_000
    text = "[" + ", ".join([json.dumps(log_entry(T, "nginx")), deep, json.dumps(log_entry(T, "redis"))]) + "]"
    expected = [Entry(T_US, "nginx", 1, "acme/us-central1/prod", 1), Malformed(2),
                Entry(T_US, "redis", 1, "acme/us-central1/prod", 3)]
    assert list(JsonArrayExport().entries(io.BytesIO(text.encode()), "pulls.json")) == expected
    assert ndjson_entries([log_entry(T, "nginx"), deep, log_entry(T, "redis")]) == expected


def test_sniffing_ndjson_whose_first_line_is_too_deep_to_read() -> None:
    deep_first = '{"a": ' * 5000 + "1" + "}" * 5000 + "\n" + json.dumps(log_entry(T, "nginx")) + "\n"
    assert NdjsonExport().sniff(deep_first)


def test_sniffing_ndjson_whose_first_line_is_longer_than_the_head() -> None:
    long_entry = log_entry(T, "nginx")
    long_entry["jsonPayload"]["pad"] = "x" * 70_000
    head = json.dumps(long_entry)[:65536]  # what detection reads: the start of the first line
    assert NdjsonExport().sniff(head)
    assert not NdjsonExport().sniff('{"kind": "List", "pad": "' + "x" * 70_000)
