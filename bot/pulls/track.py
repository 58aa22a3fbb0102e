"""The guide's tracking view: per day, pulls from third-party registries versus from the mirror."""
from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import date, timedelta

from bot.errors import UsageError
from bot.imageref import InvalidReference, parse
from bot.policy import Policy
from bot.pulls.model import PullCounts
from bot.pulls.times import to_datetime


@dataclasses.dataclass(frozen=True)
class TrackDay:
    day: str
    third_party: int
    mirror: int
    moved_share: float | None  # mirror / (mirror + third_party); None on a day without either

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def track(counts: PullCounts, policy: Policy, destination: str) -> list[TrackDay]:
    """Every day of the window, in order. Pulls from other internal registries are neither; names
    that are not valid references cannot be placed and are left out."""
    if counts.window is None:
        raise UsageError(f"{counts.source}: --track needs pull times, and this source has none")
    mirror_policy = Policy(internal=(), destination=destination)  # internal = under the destination
    third_party: Counter[str] = Counter()
    mirror: Counter[str] = Counter()
    for row in counts.days:
        try:
            ref = parse(row.image)
        except InvalidReference:
            continue
        if mirror_policy.is_internal(ref):
            mirror[row.day] += row.pulls
        elif not policy.is_internal(ref):
            third_party[row.day] += row.pulls
    return [_day(day, third_party[day], mirror[day]) for day in _days(counts.window.since, counts.window.until)]


def _day(day: str, third_party: int, mirror: int) -> TrackDay:
    total = third_party + mirror
    return TrackDay(day, third_party, mirror, round(mirror / total, 4) if total else None)


def _days(since: int, until: int) -> list[str]:
    first, last = to_datetime(since).date(), to_datetime(until).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def plot(days: list[TrackDay], path: str, destination: str) -> None:
    """A PNG: pulls per day from third-party registries and from the mirror, stacked."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--plot needs matplotlib", hint="pip install 'rehome-bot[plot]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    labels = [date.fromisoformat(d.day).strftime("%m-%d") for d in days]
    figure, axes = pyplot.subplots(figsize=(max(6, len(days) * 0.5), 4))
    try:
        axes.bar(labels, [d.third_party for d in days], label="third-party registries", color="#d95f02")
        axes.bar(labels, [d.mirror for d in days], bottom=[d.third_party for d in days],
                 label=f"mirror ({destination})", color="#1b9e77")
        axes.set_ylabel("pulls per day (UTC)")
        axes.set_title("Image pulls: third-party registries versus the mirror")
        axes.legend()
        figure.autofmt_xdate()
        figure.tight_layout()
        try:
            figure.savefig(path, format="png")
        except OSError as exc:
            raise UsageError(f"{path}: cannot write the plot: {exc}") from None
    finally:
        pyplot.close(figure)
