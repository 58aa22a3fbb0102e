from __future__ import annotations

import pytest

from datetime import datetime

from bot.pulls.times import BadTime, format_duration, format_time, from_datetime, parse_duration, parse_time


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
    ("2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:00.123456Z"),
    ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z"),
    ("2024-05-01 10:00:00 UTC", "2024-05-01T10:00:00Z"),
    ("2024-05-01T10:00:00", "2024-05-01T10:00:00Z"),
    ("2024-05-01", "2024-05-01T00:00:00Z"),
])
def test_parse_and_format_time(text: str, expected: str) -> None:
    assert format_time(parse_time(text)) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-02-30T10:00:00Z", "2024-05-01T24:00:00Z", ""])
def test_bad_times(text: str) -> None:
    with pytest.raises(BadTime):
        parse_time(text)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_times_outside_the_years_1_to_9999_are_bad_times(text: str) -> None:
    # They parse, but no window or day could be printed for them.
    with pytest.raises(BadTime) as caught:
        parse_time(text)
    assert str(caught.value) == f"{text!r} is outside the years 1 to 9999"
    with pytest.raises(BadTime):
        from_datetime(datetime.fromisoformat(text))
    assert format_time(parse_time("0001-01-01T00:00:00Z")) == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(("text", "micros"), [("90s", 90_000_000), ("30m", 1_800_000_000),
                                              ("6h", 21_600_000_000), ("7d", 604_800_000_000),
                                              ("2w", 1_209_600_000_000)])
def test_durations(text: str, micros: int) -> None:
    assert parse_duration(text) == micros
    assert parse_duration(format_duration(micros)) == micros


@pytest.mark.parametrize("text", ["0d", "7", "d", "-1d", "1y", "1.5h",
                                  pytest.param("9" * 5000 + "d", id="5000 digits")])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadTime):
        parse_duration(text)
