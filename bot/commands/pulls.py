"""`rehome pulls SOURCE`: how often each image is pulled, from Cloud Logging, BigQuery, CSV or
Kubernetes events; `--track --to DEST` shows per day how much already comes from the mirror."""
from __future__ import annotations

import argparse
import csv
import sys

from bot import options
from bot.config import find_config
from bot.errors import UsageError
from bot.output import print_json, render_table
from bot.policy import DEFAULT_INTERNAL, Policy
from bot.pulls import Limit, PullCounts, load_counts, warn_malformed
from bot.pulls.times import BadTime, MINUTE, format_duration, parse_duration
from bot.pulls.track import TrackDay, plot, track

HELP = "how often each image is pulled (log export, BigQuery, CSV, kubectl events)"
CONFIG_HELP = options.CURRENT_FOLDER_CONFIG_HELP


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _period(text: str) -> int:
    try:
        micros = parse_duration(text)
    except BadTime as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if micros < MINUTE:
        raise argparse.ArgumentTypeError(f"{text!r}: the period must be at least a minute")
    return micros


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE",
                        help="a log export (JSON array or NDJSON, may be gzip), kubectl events JSON, "
                             "a CSV of the guide's query, or bigquery://PROJECT.DATASET")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--since", metavar="WHEN",
                        help="start of the window: a duration back from --until (default 7d) or an ISO 8601 time")
    parser.add_argument("--until", metavar="TIME",
                        help="end of the window, ISO 8601 (default: the newest entry; for BigQuery, now)")
    parser.add_argument("--limit", type=_positive_int, default=Limit.pulls, metavar="N",
                        help="pull limit to compare peaks against (default: %(default)s, Docker Hub's anonymous limit)")
    parser.add_argument("--per", type=_period, default=Limit.per, metavar="PERIOD",
                        help="the limit's period (default: 6h)")
    parser.add_argument("--track", action="store_true",
                        help="per day: pulls from third-party registries versus from the mirror (--to)")
    parser.add_argument("--to", metavar="DEST", help="the mirror prefix for --track (default: destination in rehome.yaml)")
    parser.add_argument("--plot", metavar="FILE.png", help="with --track: draw the days into a PNG (needs matplotlib)")


def run(args: argparse.Namespace) -> int:
    if args.plot and not args.track:
        raise UsageError("--plot draws the --track view: add --track")
    mirror = _track_mirror(args) if args.track else None
    counts = load_counts(args.source, since=args.since, until=args.until, limit=Limit(args.limit, args.per))
    if mirror is not None:
        return _run_track(args, counts, *mirror)
    if args.format == "json":
        print_json(counts.to_json())
    elif args.format == "csv":
        warn_malformed(counts)
        _write_csv(["image", "repository", "pulls", "repository_pulls", "peak_6h", "at_risk"],
                   ([r.image, r.repository, r.pulls, r.repository_pulls, r.peak_6h, r.at_risk] for r in counts.images))
    else:
        print(_table(counts))
    return 0


def _track_mirror(args: argparse.Namespace) -> tuple[Policy, str]:
    """The policy and the mirror for --track, the mirror checked as plan and mirror check it: before
    any reading."""
    config = find_config(args.config, None)
    destination = options.require_destination(args, config, "--track needs --to DEST (or `destination` in rehome.yaml)")
    policy = Policy(internal=config.internal if config.internal is not None else DEFAULT_INTERNAL,
                    destination=destination)
    return policy, destination


def _run_track(args: argparse.Namespace, counts: PullCounts, policy: Policy, destination: str) -> int:
    warn_malformed(counts)
    days = track(counts, policy, destination)
    if args.plot:
        plot(days, args.plot, destination)
    if args.format == "json":
        print_json({"version": 1, "days": [d.to_json() for d in days]})
    elif args.format == "csv":
        _write_csv(["day", "third_party", "mirror", "moved_share"],
                   ([d.day, d.third_party, d.mirror, d.moved_share] for d in days))
    else:
        print(_track_table(days))
    return 0


def _write_csv(header: list[str], rows: object) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_csv_cell(cell) for cell in row] for row in rows)  # type: ignore[attr-defined]


def _csv_cell(cell: object) -> object:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    return cell


def _table(counts: PullCounts) -> str:
    rows = [
        [r.image, r.pulls, r.repository_pulls, r.peak_6h, "yes" if r.at_risk else ""] for r in counts.images
    ]
    lines = [render_table(["IMAGE", "PULLS", "REPOSITORY PULLS", "PEAK 6H", "AT LIMIT"], rows), ""]
    lines.append(f"source: {counts.source}")
    if counts.window:
        window = counts.window.to_json()
        lines.append(f"window: {window['since']} to {window['until']}")
    else:
        lines.append("window: none (the source has no times)")
    at_risk = sum(1 for r in counts.images if r.at_risk)
    if at_risk:
        lines.append(f"{at_risk} image(s) reach the limit of {counts.limit.pulls} pulls per "
                     f"{format_duration(counts.limit.per)} in some stretch of the window")
    if counts.malformed:
        lines.append(f"malformed entries: {counts.malformed_summary()}")
    return "\n".join(lines)


def _track_table(days: list[TrackDay]) -> str:
    rows = [[d.day, d.third_party, d.mirror, "" if d.moved_share is None else f"{d.moved_share:.1%}"] for d in days]
    return render_table(["DAY", "THIRD-PARTY", "MIRROR", "MOVED"], rows)
