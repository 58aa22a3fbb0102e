"""`rehome scan PATH`: list every image reference in a tree (or a cluster's inventory)."""
from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from bot import options
from bot.errors import UsageError
from bot.output import plural, print_json, render_table
from bot.scan import inventory
from bot.scan.core import scan
from bot.scan.model import ScanResult, Skipped

HELP = "list the container image references in a repository, or the images a cluster runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", metavar="PATH", help="the tree to scan (default: the current folder)")
    parser.add_argument(
        "--kubectl-json", metavar="FILE",
        help="read `kubectl get pods,deployments,... -A -o json` output (`-` for stdin) instead of a tree",
    )
    options.add_format(parser)
    options.add_scan_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.kubectl_json is not None:
        if args.path is not None:
            raise UsageError("give either PATH or --kubectl-json, not both")
        config = options.load_config(args, None)
        result = inventory.read(args.kubectl_json, options.policy(args, config))
        if args.format == "json":
            print_json(result.to_json())
        else:
            print(inventory.render(result))
        return 0
    root = Path(args.path or ".")
    config = options.load_config(args, root)
    result = scan(root, options.scan_options(args, config))
    if args.format == "json":
        print_json(result.to_json())
    else:
        print(render(result))
    return 0


def render(result: ScanResult) -> str:
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for ref in result.references:
        groups[(ref.image or ref.raw, ref.status)].append(ref)
    rows = []
    for (image, status), refs in sorted(groups.items(), key=lambda g: (g[0][1] != "third-party", g[0])):
        files = sorted({r.path for r in refs})
        kinds = ",".join(sorted({r.kind for r in refs}))
        where = files[0] if len(files) == 1 else f"{len(files)} files"
        reason = next((r.reason for r in refs if r.reason), "")
        rows.append((image, status, len(refs), where, kinds, reason))
    lines = [render_table(("IMAGE", "STATUS", "REFS", "FILES", "KINDS", "REASON"), rows)] if rows else []
    counts = defaultdict(int)
    for ref in result.references:
        counts[ref.status] += 1
    files = len({r.path for r in result.references})
    lines.append(
        f"{plural(len(result.references), 'reference')} in {plural(files, 'file')}: {counts['third-party']} third-party, "
        f"{counts['internal']} internal, {counts['unresolved']} unresolved; {result.ignored} ignored"
    )
    lines += skipped_lines(result.skipped)
    return "\n".join(lines)


def skipped_lines(skipped: Iterable[Skipped]) -> list[str]:
    """The files the scan could not read (plan and rewrite say so too: nothing moves there)."""
    return [f"skipped {file.path}: {file.reason}" for file in skipped]
