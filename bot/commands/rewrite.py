"""`rehome rewrite PATH --to DEST`: point the tree's third-party references at the mirror."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bot import mirror
from bot.commands import plan as plan_command
from bot.output import file_identity, plural, print_json, render_table, write_together
from bot.plan import Plan
from bot.rewrite import FileRewrite, rewrite_tree, unified_diff

log = logging.getLogger("rehome")

HELP = "rewrite the third-party image references in a tree to their mirror names"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    plan_command.add_arguments(parser, pulls=False, path_help="the tree to rewrite")
    parser.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")
    mirror.add_registry_arguments(parser)


def verified_digests(planned: plan_command.Planned, args: argparse.Namespace) -> dict[str, str]:
    """For --pin-digest: the digest each mirror copy serves, looked up (read-only) in the mirror alone.
    Images the mirror does not hold yet, or could not be asked about, are not pinned, and said so."""
    host = mirror.registry_host(planned.plan.destination, "destination")
    options = mirror.MirrorOptions(
        dry_run=True,
        insecure_registries=tuple(planned.config.insecure_registries) + tuple(args.insecure_registry),
        credentials=mirror.credentials_from_args(args, host),
        destination=host,
    )
    served = mirror.mirror_digests([m.target for m in planned.plan.moves], options)
    pins = {}
    for move in planned.plan.moves:
        digest, problem = served[move.target]
        if digest is not None:
            pins[move.source] = digest
        elif problem is None:
            log.warning("not pinned: %s: the mirror does not hold a copy (no such tag in the mirror); "
                        "run `rehome mirror` first", move.target)
        else:
            log.warning("not pinned: %s: the mirror could not be asked whether it holds a copy (%s)",
                        move.target, problem)
    return pins


def run(args: argparse.Namespace) -> int:
    planned = plan_command.build(args)
    rules = {rule.kind: rule for rule in planned.scan_options.rules}
    pins = verified_digests(planned, args) if planned.plan.pin_digest and planned.plan.moves else None
    results = rewrite_tree(
        planned.tree, planned.plan, rules, planned.scan_options.policy, planned.scanned.references, pins
    )
    if not args.dry_run:
        # All or none: the files of one rewrite may depend on each other (a kustomization and its manifests).
        write_together([(planned.root / r.path, r.old_text, r.new_text) for r in results if r.changed])
    if args.format == "json":
        print_json(to_json(results, args.dry_run, planned.plan))
    else:
        if args.dry_run:
            sys.stdout.write("".join(unified_diff(r) for r in results if r.changed))
        counted = one_name_per_file(results, planned.root)
        print("\n".join([render(results, args.dry_run, counted), *plan_command.left_in_place_lines(planned.plan)]))
    return 1 if any(r.new_text is None for r in results) else 0


def to_json(results: list[FileRewrite], dry_run: bool, plan: Plan) -> dict:
    return {
        "version": 1,
        "dry_run": dry_run,
        "files": [
            {"path": r.path, "status": "untouched" if r.new_text is None else "rewritten",
             "references": r.moved, "reason": r.reason}
            for r in results
        ],
        **plan.stays_json(),
    }


def one_name_per_file(results: list[FileRewrite], root: Path) -> list[FileRewrite]:
    """The rewritten results, each file once: further names of a file (hard links) are left out."""
    seen: set[tuple[int, int]] = set()
    counted = []
    for result in results:
        if result.new_text is None:
            continue
        identity = file_identity(root / result.path)
        if identity is None or identity not in seen:
            counted.append(result)
        if identity is not None:
            seen.add(identity)
    return counted


def render(results: list[FileRewrite], dry_run: bool, counted: list[FileRewrite]) -> str:
    """The table lists every name; the summary counts `counted` (each file once)."""
    rows = [(r.path, r.moved) for r in results if r.new_text is not None]
    lines = [render_table(("FILE", "REFERENCES"), rows)] if rows else []
    files, references = plural(len(counted), "file"), plural(sum(r.moved for r in counted), "reference")
    if dry_run:
        lines.append(f"{files} would be rewritten, {references} would move; nothing written")
    else:
        lines.append(f"{files} rewritten, {references} moved")
    lines += [f"left untouched: {r.path}: {r.reason}" for r in results if r.new_text is None]
    return "\n".join(lines)
