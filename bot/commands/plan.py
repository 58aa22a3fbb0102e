"""`rehome plan PATH --to DEST`: which image moves where, and what a human must look at."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from bot import options
from bot.commands.scan import skipped_lines
from bot.output import plural, print_json, render_table
from bot.plan import Plan, make_plan
from bot.config import Config
from bot.errors import UsageError
from bot.pulls import PullCounts, SourceError, load_counts, warn_malformed
from bot.pulls.bigquery import BadLocation
from bot.scan.core import ScanOptions, scan
from bot.scan.files import DiskTree, Tree
from bot.scan.model import ScanResult

HELP = "show which third-party images would move to the mirror, and which references need a human"


def add_arguments(parser: argparse.ArgumentParser, *, pin_digest: bool = True, pulls: bool = True,
                  path_help: str = "the tree to plan for") -> None:
    """plan's flags, which rewrite and mirror share but for what they do not use: rewrite shows no pull
    counts, and mirror writes no reference to pin."""
    parser.add_argument("path", nargs="?", default=".", metavar="PATH", help=f"{path_help} (default: .)")
    options.add_destination(parser)
    if pin_digest:
        add_pin_digest(parser)
    if pulls:
        add_pull_options(parser)
    options.add_format(parser)
    options.add_scan_options(parser)


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """Digest pinning and pull counts: run and sweep take both."""
    add_pin_digest(parser)
    add_pull_options(parser)


def add_pin_digest(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pin-digest", action="store_true", default=None,
                        help="pin moved references to the mirror's verified digest")


def add_pull_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pulls", metavar="SOURCE",
                        help="pull counts to show next to each move: a log export, kubectl events, CSV or bigquery://PROJECT.DATASET")
    parser.add_argument("--since", metavar="WHEN", help="with --pulls: start of the window (default 7d before --until)")
    parser.add_argument("--until", metavar="WHEN", help="with --pulls: end of the window (default the newest entry)")


@dataclasses.dataclass
class Planned:
    root: Path
    tree: Tree  # the files scanned (a rewrite reads them again)
    config: Config
    scan_options: ScanOptions
    scanned: ScanResult
    plan: Plan
    pulls: PullCounts | None = None


def build(args: argparse.Namespace, tree: Tree | None = None, config: Config | None = None) -> Planned:
    """Scan and plan as the flags and rehome.yaml say; shared by plan, rewrite and mirror.
    `tree`: a commit's files to read instead of the folder `args.path` (where they belong);
    `config`: the configuration already loaded for these flags and that folder."""
    root = Path(args.path)
    config = config or options.load_config(args, root)
    destination = options.require_destination(args, config)
    template = options.mapping(args, config)
    scan_options = options.scan_options(args, config)
    scanned = scan(root, scan_options, tree)
    tree = tree or DiskTree(root, scan_options.untracked)
    pin = args.pin_digest if getattr(args, "pin_digest", None) is not None else config.pin_digest
    # A sweep loads the counts once and hands them to every repository's plan.
    counts = getattr(args, "pull_counts", None) or load_pull_counts(args)
    plan = make_plan(scanned, destination, template, pin_digest=pin, pulls=counts)
    return Planned(root, tree, config, scan_options, scanned, plan, counts)


def load_pull_counts(args: argparse.Namespace) -> PullCounts | None:
    source = getattr(args, "pulls", None)
    if source is None:
        if getattr(args, "since", None) or getattr(args, "until", None):
            raise UsageError("--since and --until go with --pulls SOURCE")
        return None
    try:
        counts = load_counts(source, since=args.since, until=args.until)
    except (SourceError, BadLocation) as exc:
        raise UsageError(f"{options.flag_name(args, '--pulls')}: {exc.message}", hint=exc.hint) from None
    warn_malformed(counts)
    return counts


def run(args: argparse.Namespace) -> int:
    planned = build(args)
    if args.format == "json":
        print_json(planned.plan.to_json())
    else:
        print(render(planned.plan))
    return 0


def left_in_place_lines(plan: Plan) -> list[str]:
    """The references no move covers (unresolved), those another move's rewrite covers, and the
    files not read."""
    return [f"{title}: {ref.path}:{ref.line}:{ref.column}: {ref.raw}: {ref.reason}"
            for title, refs in (("unresolved", plan.unresolved), ("covered", plan.covered)) for ref in refs
            ] + skipped_lines(plan.skipped)


def render(plan: Plan) -> str:
    lines = []
    if plan.moves:
        rows = [(m.source, m.target, len(m.references), "-" if m.pulls is None else m.pulls) for m in plan.moves]
        lines.append(render_table(("FROM", "TO", "REFS", "PULLS"), rows))
    files = len({r.path for m in plan.moves for r in m.references})
    lines.append(f"{plural(len(plan.moves), 'image')} to move to {plan.destination}, in {plural(files, 'file')}")
    lines += left_in_place_lines(plan)
    if plan.pin_digest:
        lines.append("pin_digest: references will be pinned to the digest the mirror step verifies")
    return "\n".join(lines)
