"""Rewrite every corpus repository into a temp copy and show that only reference lines changed.

For each repository: files and references rewritten, files left untouched (each with its
reason: nothing may fail silently), lines changed next to the lines that hold a moved
reference (a `git diff --stat`-style count), and a scan of the result: no third-party
reference left outside the untouched files (but those the plan leaves, each with its reason, such
as an image a Kustomize override covers), and no file that no longer parses.

    python benchmarks/rewrite_corpus.py [--corpus DIR] [--to DEST]
"""
from __future__ import annotations

import argparse
import difflib
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.plan import make_plan, renamable_overrides  # noqa: E402
from bot.policy import DEFAULT_INTERNAL, Policy  # noqa: E402
from bot.output import write_atomically  # noqa: E402
from bot.rewrite import kustomize_renames, rewrite_tree  # noqa: E402
from bot.rules import load_rules  # noqa: E402
from bot.scan.core import ScanOptions, scan  # noqa: E402
from bot.scan.files import DiskTree  # noqa: E402

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
MAPPING = "{destination}/{domain}/{path}"


def _lines(text: str) -> list[str]:
    lines = re.split(r"(?<=\n)", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def _changed_lines(old: str, new: str) -> tuple[int, int]:
    removed = added = 0
    for line in difflib.unified_diff(_lines(old), _lines(new), n=0):
        if line.startswith("-") and not line.startswith("---"):
            removed += 1
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
    return removed, added


def rewrite_repository(source: Path, work: Path, destination: str) -> dict:
    shutil.copytree(source, work, symlinks=True)
    options = ScanOptions(rules=tuple(load_rules()), policy=Policy(DEFAULT_INTERNAL, (), destination))
    before = scan(work, options)
    plan = make_plan(before, destination, MAPPING)
    started = time.perf_counter()
    results = rewrite_tree(DiskTree(work), plan, {r.kind: r for r in options.rules}, options.policy, before.references)
    for result in results:
        if result.changed:
            write_atomically(work / result.path, result.new_text)
    elapsed = time.perf_counter() - started
    reference_lines = {(r.path, r.line) for m in plan.moves for r in m.references}
    changed = {r.path for r in results if r.changed}
    moved = {id(ref) for move in plan.moves for ref in move.references if ref.path in changed}
    rename_lines = {
        (path, splice.start) for path, edits in kustomize_renames(plan, renamable_overrides(before.references), moved).items()
        for edit in edits for splice in edit.splices
    }
    untouched = {r.path: r.reason for r in results if r.new_text is None}
    removed = added = 0
    for result in results:
        if result.changed:
            r, a = _changed_lines(result.old_text, result.new_text)
            removed += r
            added += a
    after = scan(work, options)
    # Third-party references the plan did not move (covered by an override it leaves, say) stay, as said.
    planned = {id(ref) for move in plan.moves for ref in move.references}
    staying = Counter((r.path, r.raw) for r in before.references if r.status == "third-party" and id(r) not in planned)
    found = Counter((r.path, r.raw) for r in after.references if r.status == "third-party" and r.path not in untouched)
    left = sorted((found - staying).elements())
    new_skipped = sorted({s.path for s in after.skipped} - {s.path for s in before.skipped})
    return {
        "files": sum(1 for r in results if r.changed),
        "references": sum(r.moved for r in results),
        "untouched": untouched,
        "reference_lines": len({(p, line) for p, line in reference_lines if p not in untouched}),
        "rename_lines": len({(p, at) for p, at in rename_lines if p not in untouched}),
        "removed": removed,
        "added": added,
        "third_party_left": left,
        "no_longer_parse": new_skipped,
        "seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--to", default="us-docker.pkg.dev/acme/mirror")
    args = parser.parse_args(argv)
    repos = sorted(p for p in args.corpus.iterdir() if p.is_dir() and p.name != "peer")
    print(f"{'repository':48} {'files':>5} {'refs':>5} {'ref lines':>9} {'renames':>7} {'-lines':>6} {'+lines':>6} "
          f"{'untouched':>9} {'3rd left':>8} {'broken':>6} {'time s':>6}")
    problems = 0
    totals = [0] * 9
    with tempfile.TemporaryDirectory() as tmp:
        for repo in repos:
            r = rewrite_repository(repo, Path(tmp) / repo.name, args.to)
            row = [r["files"], r["references"], r["reference_lines"], r["rename_lines"], r["removed"], r["added"],
                   len(r["untouched"]), len(r["third_party_left"]), len(r["no_longer_parse"])]
            totals = [t + v for t, v in zip(totals, row)]
            print(f"{repo.name:48} {row[0]:5} {row[1]:5} {row[2]:9} {row[3]:7} {row[4]:6} {row[5]:6} {row[6]:9} "
                  f"{row[7]:8} {row[8]:6} {r['seconds']:6.2f}")
            for path, reason in sorted(r["untouched"].items()):
                print(f"    untouched {path}: {reason}")
            for path, raw in r["third_party_left"]:
                print(f"    third-party left {path}: {raw}")
            for path in r["no_longer_parse"]:
                print(f"    no longer parses: {path}")
            if row[4] != row[2] + row[3]:
                print(f"    lines removed ({row[4]}) differ from reference lines + renamed name lines ({row[2] + row[3]})")
                problems += 1
            problems += row[7] + row[8]
    print(f"{'total':48} {totals[0]:5} {totals[1]:5} {totals[2]:9} {totals[3]:7} {totals[4]:6} {totals[5]:6} "
          f"{totals[6]:9} {totals[7]:8} {totals[8]:6}")
    print("-lines must equal the lines holding a moved reference plus the Kustomize `name:` lines renamed with their")
    print("manifests; +lines are those plus inserted `newName:` (Kustomize) and `alias:` (GitLab services) lines.")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
