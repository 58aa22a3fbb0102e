from __future__ import annotations

import io

from bot.pulls.csvfile import CsvCounts
from bot.pulls.source import Entry, Malformed
from bot.pulls.times import parse_time


def rows(text: str, timed: bool) -> list[Entry | Malformed]:
    return list(CsvCounts(timed).entries(io.BytesIO(text.encode()), "pulls.csv"))


def test_the_guides_first_query() -> None:
    text = (
        "\ufeffimageName,numberOfPulls\r\n"
        "nginx:1.14.2,120\r\n"
        "docker.io/library/redis:7,3\r\n"
        "\r\n"
        '"quay.io/prometheus/node-exporter:v1.7.0",45\r\n'
        "busybox,many\r\n"
        ",4\r\n"
        "alpine,1,extra\r\n"
        "alpine,-1\r\n"
    )
    assert rows(text, timed=False) == [
        Entry(None, "nginx:1.14.2", 120), Entry(None, "docker.io/library/redis:7", 3),
        Entry(None, "quay.io/prometheus/node-exporter:v1.7.0", 45),
        Malformed(6), Malformed(7), Malformed(8), Malformed(9),
    ]


def test_the_tracking_query_with_columns_in_any_order() -> None:
    text = (
        "imageName,timeOfImagePull,numberOfPulls\n"
        "nginx:1.14.2,2024-05-01 10:00:00 UTC,2\n"
        "nginx:1.14.2,2024-05-02,1\n"
        '"multi\nline",2024-05-02,1\n'
        "nginx:1.14.2,soon,1\n"
    )
    assert rows(text, timed=True) == [
        Entry(parse_time("2024-05-01T10:00:00Z"), "nginx:1.14.2", 2),
        Entry(parse_time("2024-05-02T00:00:00Z"), "nginx:1.14.2", 1),
        Entry(parse_time("2024-05-02T00:00:00Z"), "multi\nline", 1),
        Malformed(6),
    ]


def test_sniff_tells_the_two_shapes_apart() -> None:
    first, tracking = "imageName,numberOfPulls\nx,1\n", "timeOfImagePull,imageName,numberOfPulls\n"
    assert [CsvCounts(False).sniff(first), CsvCounts(True).sniff(first)] == [True, False]
    assert [CsvCounts(False).sniff(tracking), CsvCounts(True).sniff(tracking)] == [False, True]
    assert not CsvCounts(False).sniff("image,pulls\n")
