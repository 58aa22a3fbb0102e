"""Count pulls from a stream of entries: window, normalised join, sliding-window peaks.

Reading the entries is the slow part, and the window's end (the newest entry) is known only at the
end, so entries are read once: each pull goes to a temporary file as three integers (time, name id,
count); counting then reads those back. Memory does not grow with the number of entries: counts are
kept per distinct (name, cluster) and per day, and the times for peaks in per-minute buckets of the
window (wider for a window over 31 days, so at most MAX_BUCKETS). A (name, cluster) keeps only its
buckets with pulls, in a dict, until a list of all of them takes less room (DENSE_SHARE).
"""
from __future__ import annotations

import bisect
import dataclasses
import itertools
import logging
import operator
import tempfile
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, TypeVar

from bot.errors import UsageError
from bot.pulls.model import ClusterCount, DayCount, ImageCount, Limit, PullCounts, Window
from bot.pulls.model import display_name, join_key, repository_of
from bot.pulls.source import Entry, Malformed
from bot.pulls.times import DAY, EARLIEST, HOUR, MINUTE, BadTime, format_day, format_time, now
from bot.pulls.times import OutOfRange, parse_duration, parse_time

log = logging.getLogger("rehome")

DEFAULT_SINCE = "7d"
MALFORMED_SHOWN = 10
PEAK_PERIOD = 6 * HOUR
# Bucket widths (minutes) that divide 6 hours; the narrowest that keeps a window within MAX_BUCKETS.
_BUCKET_MINUTES = (1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 18, 20, 24, 30, 36, 40, 45, 60, 72, 90, 120, 180, 360)
MAX_BUCKETS = 31 * 24 * 60
MAX_WINDOW = 10950 * DAY  # 30 years: within MAX_BUCKETS buckets of 6 hours
# Clocks disagree a little: an entry this far past this machine's clock is not dated in the future yet.
CLOCK_SLACK = HOUR
_SPILL_ITEMS = 3 * 65536
# A dict entry takes about eight times a list slot: past this share of the buckets, a list is smaller.
DENSE_SHARE = 8

Key = tuple[str, "str | None"]  # (name as logged, cluster)
_Parsed = TypeVar("_Parsed")


@dataclasses.dataclass(frozen=True)
class WindowFlags:
    """--since and --until as given and as read, before any reading: the window itself needs the
    newest entry. --since (default 7d) is a duration back from the window's end, or a time."""

    since: str | None
    until: str | None
    back: int | None  # --since as a duration
    start: int | None  # --since as a time
    end: int | None  # --until

    @property
    def given(self) -> bool:
        return self.since is not None or self.until is not None


def parse_window_flags(since: str | None, until: str | None) -> WindowFlags:
    end = _flag_time("--until", until, parse_time) if until is not None else None
    back, start = _flag_time("--since", DEFAULT_SINCE if since is None else since, _since)
    return WindowFlags(since, until, back, start, end)


def resolve_window(flags: WindowFlags, newest: int | None) -> Window | None:
    """The window from `--until` (default: the newest entry) back to `--since`; at most MAX_WINDOW long."""
    end = newest if flags.end is None else flags.end
    if end is None:
        return None
    start = end - flags.back if flags.back is not None else flags.start
    assert start is not None
    since = DEFAULT_SINCE if flags.since is None else flags.since
    if start > end:
        raise UsageError(f"--since {since} is after --until ({flags.until or 'the newest entry'})")
    if end - start > MAX_WINDOW:
        raise UsageError(f"--since {since}: the window would be {(end - start) // DAY} days long; "
                         f"rehome counts at most {MAX_WINDOW // DAY} days (30 years)")
    if start < EARLIEST:
        raise UsageError(f"--since {since}: the window would start before the year 1")
    return Window(start, end)


def _flag_time(flag: str, text: str, parse: Callable[[str], _Parsed]) -> _Parsed:
    try:
        return parse(text)
    except BadTime as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _since(text: str) -> tuple[int | None, int | None]:
    """(a duration, None) or (None, a time)."""
    try:
        return parse_duration(text), None
    except BadTime:
        pass
    try:
        return None, parse_time(text)
    except OutOfRange:
        raise
    except BadTime:
        raise BadTime(f"{text!r} is neither a duration (30m, 6h, 7d, 2w) nor an ISO 8601 time") from None


NO_FLAGS = parse_window_flags(None, None)


def bucket_width(window: Window) -> int:
    span_minutes = (window.until - window.since) // MINUTE + 1
    for minutes in _BUCKET_MINUTES:
        if span_minutes // minutes < MAX_BUCKETS:
            return minutes * MINUTE
    return _BUCKET_MINUTES[-1] * MINUTE


@dataclasses.dataclass
class Reading:
    """What one reading of the entries gives; the pulls themselves are in the spill file."""

    keys: list[Key] = dataclasses.field(default_factory=list)
    newest: int | None = None  # of the entries not dated in the future
    malformed: int = 0
    malformed_lines: list[int] = dataclasses.field(default_factory=list)
    future: int = 0
    first_future: Entry | None = None


def read_entries(entries: Iterable[Entry | Malformed], spill: BinaryIO, latest: int) -> Reading:
    """`latest`: entries dated after it are in the future, and never the newest."""
    reading = Reading()
    ids: dict[Key, int] = {}
    pending = array("q")
    newest = None
    for entry in entries:
        if type(entry) is Malformed:
            reading.malformed += 1
            if len(reading.malformed_lines) < MALFORMED_SHOWN:
                reading.malformed_lines.append(entry.position)
            continue
        time, image, count, cluster, _ = entry
        if time is not None and (newest is None or time > newest):
            if time <= latest:
                newest = time
            else:
                reading.future += 1
                if reading.first_future is None:
                    reading.first_future = entry
        if image is None:
            continue
        key_id = ids.get((image, cluster))
        if key_id is None:
            key_id = ids[image, cluster] = len(ids)
            reading.keys.append((image, cluster))
        pending.extend((0 if time is None else time, key_id, count))
        if len(pending) >= _SPILL_ITEMS:
            pending.tofile(spill)
            del pending[:]
    pending.tofile(spill)
    reading.newest = newest
    return reading


def spilled(spill: BinaryIO) -> Iterator[tuple[int, int, int]]:
    spill.seek(0)
    while True:
        chunk = array("q")
        chunk.frombytes(spill.read(_SPILL_ITEMS * chunk.itemsize))
        if not chunk:
            return
        items = iter(chunk)
        yield from zip(items, items, items)


# A key's pulls per bucket of the window: {bucket: pulls} for the buckets with pulls, or a list of every
# bucket. Python ints: no overflow.
Slots = dict[int, int] | list[int]


@dataclasses.dataclass
class Tally:
    pulls: list[int]  # by key id
    buckets: list[Slots | None]  # by key id
    daily: Counter[tuple[int, int]]  # (day start, key id) -> pulls


def tally(pulls: Iterable[tuple[int, int, int]], keys: int, window: Window | None, *,
          filter_window: bool, peaks: bool) -> Tally:
    """`filter_window=False` for a source that applied the window itself (BigQuery)."""
    result = Tally([0] * keys, [None] * keys, Counter())
    totals, buckets, daily = result.pulls, result.buckets, result.daily
    since, until = (window.since, window.until) if window else (0, 0)
    width = bucket_width(window) if window and peaks else 0
    length = (until - since) // width + 1 if width else 0
    for time, key_id, count in pulls:
        if window is not None and filter_window and not since <= time <= until:
            continue
        totals[key_id] += count
        if window is not None:
            daily[time - time % DAY, key_id] += count
        if width:
            slots = buckets[key_id]
            slot = (time - since) // width
            if slots is None:
                slots = buckets[key_id] = {}
            if type(slots) is dict:
                slots[slot] = slots.get(slot, 0) + count
                if len(slots) * DENSE_SHARE > length:
                    buckets[key_id] = dense_slots(slots, length)
            else:
                slots[slot] += count
    return result


def dense_slots(slots: dict[int, int], length: int) -> list[int]:
    dense = [0] * length
    for slot, count in slots.items():
        dense[slot] = count
    return dense


def sliding_max(slots: Slots, width: int, periods: Iterable[int]) -> list[int]:
    """For each period, the largest sum over `period / width` consecutive buckets (a sliding window)."""
    if isinstance(slots, dict):
        return _sparse_sliding_max(slots, width, periods)
    sums = list(itertools.accumulate(slots, initial=0))
    found = []
    for period in periods:
        span = max(1, period // width)
        found.append(sums[-1] if span >= len(slots) else max(map(operator.sub, sums[span:], sums)))
    return found


def _sparse_sliding_max(slots: dict[int, int], width: int, periods: Iterable[int]) -> list[int]:
    """The same from the buckets with pulls: the busiest stretch may as well end at one of them."""
    buckets = sorted(slots)
    sums = list(itertools.accumulate(map(slots.__getitem__, buckets), initial=0))
    found = []
    for period in periods:
        span = max(1, period // width)
        firsts = map(bisect.bisect_right, itertools.repeat(buckets), [bucket - span for bucket in buckets])
        found.append(max(map(operator.sub, sums[1:], map(sums.__getitem__, firsts))))
    return found


def _sum_slots(result: Tally, key_ids: Iterable[int]) -> Slots | None:
    present = [result.buckets[k] for k in key_ids if result.buckets[k] is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    lists = [slots for slots in present if type(slots) is list]
    if not lists:
        summed: Counter[int] = Counter()
        for slots in present:
            summed.update(slots)
        return summed
    length = len(lists[0])
    return list(map(sum, zip(*(slots if type(slots) is list else dense_slots(slots, length)
                               for slots in present))))


def summarise(result: Tally, keys: list[Key], *, source: str, window: Window | None, limit: Limit,
              peaks: bool, reading: Reading) -> PullCounts:
    width = bucket_width(window) if window and peaks else 0

    def peaks_of(key_ids: list[int]) -> tuple[int | None, bool | None]:
        if not width:
            return None, None
        slots = _sum_slots(result, key_ids)
        if slots is None:
            return None, None
        six_hours, per_limit = sliding_max(slots, width, (PEAK_PERIOD, limit.per))
        return six_hours, per_limit >= limit.pulls

    counted = [k for k in range(len(keys)) if result.pulls[k]]
    by_image: dict[str, list[int]] = defaultdict(list)
    for key_id in counted:
        by_image[join_key(keys[key_id][0])].append(key_id)
    repository_pulls: Counter[str] = Counter()
    for joined, key_ids in by_image.items():
        repository_pulls[repository_of(joined)] += sum(result.pulls[k] for k in key_ids)

    rows = []
    for joined, key_ids in by_image.items():
        clusters = []
        for cluster in sorted({keys[k][1] for k in key_ids if keys[k][1] is not None}):
            mine = [k for k in key_ids if keys[k][1] == cluster]
            clusters.append(ClusterCount(cluster, sum(result.pulls[k] for k in mine), *peaks_of(mine)))
        rows.append(ImageCount(
            _shown_name(keys[k][0] for k in key_ids), repository_of(joined),
            sum(result.pulls[k] for k in key_ids), repository_pulls[repository_of(joined)],
            *peaks_of(key_ids), clusters=tuple(clusters),
        ))
    rows.sort(key=lambda row: (-row.pulls, row.image))
    return PullCounts(
        source=source, window=window, limit=limit, images=tuple(rows), days=_days(result.daily, keys),
        malformed=reading.malformed, malformed_lines=tuple(reading.malformed_lines),
    )


def _shown_name(names: Iterable[str]) -> str:
    """A row keeps the name as logged (normalised), preferring the spelling without `:latest`."""
    return min((display_name(n) for n in names), key=lambda shown: (shown.endswith(":latest"), shown))


def _days(daily: Counter[tuple[int, int]], keys: list[Key]) -> tuple[DayCount, ...]:
    joined: Counter[tuple[int, str]] = Counter()
    for (day, key_id), pulls in daily.items():
        joined[day, display_name(keys[key_id][0])] += pulls
    return tuple(DayCount(format_day(day), image, n) for (day, image), n in sorted(joined.items()))


def count_pulls(entries: Callable[[], Iterable[Entry | Malformed]], *, source: str, has_times: bool,
                flags: WindowFlags = NO_FLAGS, limit: Limit = Limit(), peaks: bool = True,
                window: Window | None = None) -> PullCounts:
    """Count `entries()`. A `window` given means the source applied it already; otherwise it is
    resolved from the `flags` and the newest entry not dated in the future."""
    filter_window = window is None
    peaks = peaks and has_times
    if not has_times and flags.given:
        log.warning("%s has no times: --since and --until do not apply to it", source)
    clock = now()
    with tempfile.TemporaryFile(prefix="rehome-pulls-") as spill:
        reading = read_entries(entries(), spill, clock + CLOCK_SLACK)
        if not has_times:
            window = None
        elif window is None:
            if reading.future and flags.until is None:
                _warn_future(source, reading)
            newest = clock if reading.newest is None and reading.future else reading.newest
            window = resolve_window(flags, newest)
        result = tally(spilled(spill), len(reading.keys), window, filter_window=filter_window, peaks=peaks)
    return summarise(result, reading.keys, source=source, window=window, limit=limit, peaks=peaks,
                     reading=reading)


def _warn_future(source: str, reading: Reading) -> None:
    first = reading.first_future
    assert first is not None and first.time is not None
    log.warning("%s: entries dated in the future left out: %d (the first at %d: %s); the window ends at the "
                "newest entry up to now (--until sets another end)",
                source, reading.future, first.position, format_time(first.time))
