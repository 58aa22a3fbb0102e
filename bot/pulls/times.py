"""Times as integer microseconds since the Unix epoch (UTC), parsed from and printed as ISO 8601."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DURATION_RE = re.compile(r"^([0-9]{1,15})([smhdw])$")  # 15 digits: longer than any window already
_DURATION_UNITS = {"s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY}
# Cloud Logging writes nanoseconds; datetime keeps microseconds (and Python 3.10 wants at most 6 digits).
_FRACTION_RE = re.compile(r"(\.[0-9]{6})[0-9]+")


class BadTime(ValueError):
    """Text that is not a time (or duration) this module understands."""


class OutOfRange(BadTime):
    """A time this module reads, but outside the years it can show."""


# What datetime (and so format_time) can show: the years 1 to 9999.
EARLIEST = (datetime(1, 1, 1, tzinfo=timezone.utc) - _EPOCH) // timedelta(microseconds=1)
LATEST = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc) - _EPOCH) // timedelta(microseconds=1)


def _in_range(micros: int, text: str) -> int:
    if not EARLIEST <= micros <= LATEST:
        raise OutOfRange(f"{text} is outside the years 1 to 9999")
    return micros


# The form Cloud Logging and Kubernetes write, read without datetime: it is most of the work of counting.
_UTC_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]{1,9}))?Z")
_HOURS: dict[str, int] = {}
_HOURS_KEPT = 10_000


def parse_time(text: str) -> int:
    match = _UTC_RE.fullmatch(text)
    if match is None:
        return _parse_iso(text)
    hour_text, minute, second, fraction = match.groups()
    hour = _HOURS.get(hour_text)
    if hour is None:
        if len(_HOURS) >= _HOURS_KEPT:
            _HOURS.clear()
        try:
            hour = _HOURS[hour_text] = _parse_iso(hour_text + ":00:00Z")
        except BadTime:
            raise BadTime(f"{text!r} is not an ISO 8601 time") from None
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    return hour + int(minute) * MINUTE + int(second) * SECOND + micros


def _parse_iso(text: str) -> int:
    """ISO 8601 (`Z`, an offset, or none meaning UTC; a date alone is midnight UTC), and BigQuery's
    CSV form `2024-05-01 10:00:00 UTC`."""
    value = text.strip()
    if value.endswith(" UTC"):
        value = value[:-4]
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    value = _FRACTION_RE.sub(r"\1", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadTime(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return _in_range((moment - _EPOCH) // timedelta(microseconds=1), repr(text))


def parse_duration(text: str) -> int:
    """`90s`, `30m`, `6h`, `7d`, `2w`."""
    match = _DURATION_RE.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise BadTime(f"{text!r} is not a duration (examples: 30m, 6h, 7d, 2w)")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def now() -> int:
    """This machine's clock, to the second."""
    return int(time.time()) * SECOND


def format_time(micros: int) -> str:
    """`2024-05-01T10:00:00Z`, with microseconds only when there are any."""
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.isoformat().replace("+00:00", "Z")


def format_day(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).date().isoformat()


def to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


_NAIVE_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def from_datetime(moment: datetime) -> int:
    """Microseconds since the epoch; a time without zone is UTC."""
    if moment.tzinfo is None:
        return (moment - _NAIVE_EPOCH) // _MICROSECOND
    return _in_range((moment - _EPOCH) // _MICROSECOND, moment.isoformat())


def format_duration(micros: int) -> str:
    for unit, size in sorted(_DURATION_UNITS.items(), key=lambda item: -item[1]):
        if micros % size == 0:
            return f"{micros // size}{unit}"
    return f"{micros / SECOND:g}s"
