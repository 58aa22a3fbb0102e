from __future__ import annotations

import io

from bot.pulls.csvfile import CsvCounts
from bot.pulls.source import MAX_PULLS, Entry, Malformed
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
        Entry(None, "nginx:1.14.2", 120, position=2), Entry(None, "docker.io/library/redis:7", 3, position=3),
        Entry(None, "quay.io/prometheus/node-exporter:v1.7.0", 45, position=5),
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
        Entry(parse_time("2024-05-01T10:00:00Z"), "nginx:1.14.2", 2, position=2),
        Entry(parse_time("2024-05-02T00:00:00Z"), "nginx:1.14.2", 1, position=3),
        Entry(parse_time("2024-05-02T00:00:00Z"), "multi\nline", 1, position=4),
        Malformed(6),
    ]


def test_sniff_tells_the_two_shapes_apart() -> None:
    first, tracking = "imageName,numberOfPulls\nx,1\n", "timeOfImagePull,imageName,numberOfPulls\n"
    assert [CsvCounts(False).sniff(first), CsvCounts(True).sniff(first)] == [True, False]
    assert [CsvCounts(False).sniff(tracking), CsvCounts(True).sniff(tracking)] == [False, True]
    assert not CsvCounts(False).sniff("image,pulls\n")


def test_a_quote_left_open_is_its_line_and_the_lines_after_it_still_count() -> None:
    text = (
        "imageName,numberOfPulls\n"
        "nginx:1.14.2,1\n"
        '"redis:7,3\n'                 # 3: the quote is never closed
        "busybox,4\n"
        '"multi\nline",5\n'            # 5-6: a quoted value over two lines is still one row
        'alpine,"6\n'                  # 7: closed only by the quote on line 9
        "ghcr.io/acme/api:2.0,7\n"
        'quay.io/acme/"odd,8\n'        # 9: a quote inside a value is text
    )
    assert rows(text, timed=False) == [
        Entry(None, "nginx:1.14.2", 1, position=2), Malformed(3), Entry(None, "busybox", 4, position=4),
        Entry(None, "multi\nline", 5, position=5), Malformed(7), Entry(None, "ghcr.io/acme/api:2.0", 7, position=8),
        Entry(None, 'quay.io/acme/"odd', 8, position=9),
    ]


def test_a_value_too_long_for_the_csv_module_is_a_malformed_row() -> None:
    text = "imageName,numberOfPulls\n" + '"' + "x" * 200_000 + '",1\nnginx,2\n'
    assert rows(text, timed=False) == [Malformed(2), Entry(None, "nginx", 2, position=3)]


def test_counts_beyond_64_bits_are_malformed() -> None:
    text = (
        "imageName,numberOfPulls\n"
        f"nginx,{MAX_PULLS}\n"
        f"redis,{MAX_PULLS + 1}\n"
        f"busybox,{'9' * 5000}\n"
        f"alpine,{'0' * 30}7\n"
    )
    assert rows(text, timed=False) == [
        Entry(None, "nginx", MAX_PULLS, position=2), Malformed(3), Malformed(4), Entry(None, "alpine", 7, position=5),
    ]


def test_a_quote_left_open_on_the_last_line_is_malformed_too() -> None:
    text = 'imageName,numberOfPulls\nnginx,3\nredis,"4\n'
    assert rows(text, timed=False) == [Entry(None, "nginx", 3, position=2), Malformed(3)]
    assert rows(text.rstrip("\n"), timed=False) == [Entry(None, "nginx", 3, position=2), Malformed(3)]


def test_text_right_after_a_closing_quote_is_malformed() -> None:
    text = 'imageName,numberOfPulls\n"nginx"x,3\nredis,4\n'
    assert rows(text, timed=False) == [Malformed(2), Entry(None, "redis", 4, position=3)]


def test_a_row_that_is_not_utf8_is_malformed_and_the_rest_counts() -> None:
    data = (b'imageName,numberOfPulls\nnginx,3\ncaf\xe9,2\nredis,1\n'
            b'"multi\n\xff line",4\nalpine,5\n')  # 5-6: the row is malformed, and so is line 6 read again
    assert list(CsvCounts(False).entries(io.BytesIO(data), "pulls.csv")) == [
        Entry(None, "nginx", 3, position=2), Malformed(3), Entry(None, "redis", 1, position=4),
        Malformed(5), Malformed(6), Entry(None, "alpine", 5, position=7),
    ]
