"""Compare `rehome scan` with Renovate's extraction, repository by repository.

The corpus (`<repo root>/../shared/corpus`, or `--corpus DIR`) holds one folder per
repository and `peer/renovate/<folder>.jsonl`: what Renovate extracts from it. Each
folder is scanned on its own by this checkout's `python -m bot scan DIR --format json`
(the `rehome` command), so paths are relative to the repository, as Renovate's are.

How a rehome reference and a Renovate dependency are matched:

1. Key. Both sides are keyed by (file path, image):
   - rehome: the normalised `image` (`docker.io/library/` added, tag and digest as
     written); an unresolved reference (`image` null) is keyed by its `raw` text.
   - Renovate: `dep`, plus `:value` when the tag is not empty, plus `@digest`,
     normalised the same way (bot.imageref.parse); when that text is not a valid
     reference it is keyed as text. A `skip` entry (a variable or template Renovate
     will not resolve) is keyed by its `replace` text, i.e. the raw value.
2. Counting: per occurrence. Renovate lists one dependency per occurrence (three
   containers with `nginx:1.25` in one file are three entries), and so does rehome,
   so for each (file, key) `matched` = min(rehome's count, Renovate's count) and the
   rest is only-rehome or only-Renovate. Renovate runs several managers over one
   file (kubernetes and tekton both read a Tekton task), which would count one
   occurrence twice: Renovate's count for a (file, key) is the largest count any one
   of its managers reports, not their sum. rehome reports an aliased YAML node once,
   at its anchor; Renovate's line-based managers do not see aliases at all.
3. Loose matches: a rehome reference still unmatched is matched with an unmatched
   Renovate entry of the same file whose `replace` (or dep text) equals rehome's `raw`
   or begins it (Renovate cuts some tags at `_`: `spark:1.5.2_v1` becomes `spark:1.5.2`),
   or, for an unresolved reference, appears inside it (Renovate cuts a value at a
   variable it cannot read). They count as matched; `--details` lists them.

The per-kind table puts a difference under rehome's kind for that file (the kind of
the references rehome found there); a file rehome skipped is `(skipped)`, and a file
where rehome found nothing is listed under Renovate's manager, in parentheses.

Exit status 0 whatever the differences are: this prints figures.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bot import imageref  # noqa: E402

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"
PEER_DIR = Path("peer") / "renovate"


@dataclasses.dataclass(frozen=True)
class Item:
    """One occurrence on one side, with what the report shows about it."""

    side: str  # "rehome" or "renovate"
    file: str
    key: str
    raw: dict[str, Any]

    def describe(self) -> str:
        if self.side == "rehome":
            r = self.raw
            where = f"{self.file}:{r['line']}:{r['column']}"
            text = f"raw={r['raw']!r} image={r['image']} status={r['status']}"
            if r["reason"]:
                text += f" reason={r['reason']!r}"
            return f"{where}  [{r['kind']}] {text}"
        r = self.raw
        text = f"dep={r['dep']} value={r['value']!r} digest={r['digest']} skip={r['skip']}"
        return f"{self.file}  [renovate {r['manager']}] {text} replace={r['replace']!r}"


@dataclasses.dataclass
class Comparison:
    repository: str
    matched: list[tuple[Item, Item]] = dataclasses.field(default_factory=list)
    loose: list[tuple[Item, Item]] = dataclasses.field(default_factory=list)  # also in matched
    only_rehome: list[Item] = dataclasses.field(default_factory=list)
    only_renovate: list[Item] = dataclasses.field(default_factory=list)


def normalised_key(text: str) -> str:
    ref = imageref.parse_or_none(text)
    return str(ref) if ref is not None else f"text:{text}"


def rehome_key(reference: dict[str, Any]) -> str:
    if reference["image"] is not None:
        return reference["image"]
    return f"text:{reference['raw']}"


def renovate_text(entry: dict[str, Any]) -> str:
    text = entry["dep"] or ""
    if entry["value"]:
        text += f":{entry['value']}"
    if entry["digest"]:
        text += f"@{entry['digest']}"
    return text


def renovate_key(entry: dict[str, Any]) -> str:
    if entry["skip"] or not entry["dep"]:
        return f"text:{entry['replace']}"
    return normalised_key(renovate_text(entry))


def run_rehome(repository: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "bot", "scan", str(repository), "--format", "json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"rehome scan {repository} failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)


def read_renovate(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def rehome_items(scan: dict[str, Any]) -> list[Item]:
    return [Item("rehome", r["path"], rehome_key(r), r) for r in scan["references"]]


def renovate_items(entries: Iterable[dict[str, Any]]) -> list[Item]:
    """One item per occurrence; for each (file, key) only the entries of the manager that
    reports it most often (several managers reading one file see the same occurrence)."""
    by_manager: dict[tuple[str, str], dict[str, list[Item]]] = defaultdict(lambda: defaultdict(list))
    for entry in entries:
        item = Item("renovate", entry["file"], renovate_key(entry), entry)
        by_manager[(item.file, item.key)][entry["manager"]].append(item)
    items = []
    for managers in by_manager.values():
        items += max(managers.values(), key=len)
    return items


def _group(items: Iterable[Item]) -> dict[tuple[str, str], list[Item]]:
    groups: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item in items:
        groups[(item.file, item.key)].append(item)
    return groups


def _loosely_equal(ours: Item, theirs: Item) -> bool:
    if ours.file != theirs.file:
        return False
    raw = ours.raw["raw"]
    texts = {t for t in (theirs.raw["replace"], renovate_text(theirs.raw)) if t}
    if ours.raw["status"] == "unresolved":
        return any(t in raw for t in texts)
    return any(raw.startswith(t) for t in texts)


def compare(repository: str, ours: list[Item], theirs: list[Item]) -> Comparison:
    result = Comparison(repository)
    our_groups, their_groups = _group(ours), _group(theirs)
    left_ours: list[Item] = []
    left_theirs: list[Item] = []
    for key in sorted(set(our_groups) | set(their_groups)):
        a, b = our_groups.get(key, []), their_groups.get(key, [])
        n = min(len(a), len(b))
        result.matched += list(zip(a[:n], b[:n]))
        left_ours += a[n:]
        left_theirs += b[n:]
    for item in left_ours:
        partner = next((t for t in left_theirs if _loosely_equal(item, t)), None)
        if partner is None:
            result.only_rehome.append(item)
        else:
            left_theirs.remove(partner)
            result.matched.append((item, partner))
            result.loose.append((item, partner))
    result.only_renovate = left_theirs
    return result


def file_kinds(scan: dict[str, Any]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for reference in scan["references"]:
        kinds.setdefault(reference["path"], reference["kind"])
    for skipped in scan["skipped"]:
        kinds.setdefault(skipped["path"], "(skipped)")
    return kinds


def kind_of(item: Item, kinds: dict[str, str]) -> str:
    if item.side == "rehome":
        return item.raw["kind"]
    return kinds.get(item.file, f"({item.raw['manager']})")


def table(header: Sequence[str], rows: list[Sequence[object]]) -> str:
    cells = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def repositories(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.is_dir() and (corpus / PEER_DIR / f"{p.name}.jsonl").is_file())


def _detail_order(difference: tuple[str, Item]) -> tuple[str, str, str, int, str]:
    label, item = difference
    return item.file, label, item.side, item.raw.get("line", 0), item.key


def print_details(comparison: Comparison) -> None:
    differences = [("only rehome", i) for i in comparison.only_rehome]
    differences += [("only Renovate", i) for i in comparison.only_renovate]
    for ours, theirs in comparison.loose:
        differences += [("loose match", ours), ("loose match", theirs)]
    if not differences:
        return
    print(f"\n## {comparison.repository}")
    for label, item in sorted(differences, key=_detail_order):
        print(f"  {label:13}  {item.describe()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare rehome scan with Renovate's extraction on the corpus.")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the corpus folder (default: %(default)s)")
    parser.add_argument("--details", action="store_true", help="print each difference")
    parser.add_argument("--repo", action="append", default=None, metavar="NAME", help="only this repository folder")
    args = parser.parse_args(argv)
    if not (args.corpus / PEER_DIR).is_dir():
        parser.error(f"{args.corpus}: no {PEER_DIR} folder: not the corpus")

    comparisons = []
    per_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for repository in repositories(args.corpus):
        if args.repo and repository.name not in args.repo:
            continue
        scan = run_rehome(repository)
        comparison = compare(
            repository.name,
            rehome_items(scan),
            renovate_items(read_renovate(args.corpus / PEER_DIR / f"{repository.name}.jsonl")),
        )
        comparisons.append(comparison)
        kinds = file_kinds(scan)
        for ours, _ in comparison.matched:
            per_kind[kind_of(ours, kinds)]["matched"] += 1
        for item in comparison.only_rehome:
            per_kind[kind_of(item, kinds)]["only rehome"] += 1
        for item in comparison.only_renovate:
            per_kind[kind_of(item, kinds)]["only Renovate"] += 1

    columns = ("matched", "only rehome", "only Renovate")
    rows: list[Sequence[object]] = [
        (c.repository, len(c.matched), len(c.only_rehome), len(c.only_renovate)) for c in comparisons
    ]
    rows.append(("total", *(sum(int(r[i]) for r in rows) for i in (1, 2, 3))))
    print(table(("repository", *columns), rows))
    print()
    print(table(("kind", *columns), [(k, *(per_kind[k][c] for c in columns)) for k in sorted(per_kind)]))
    if args.details:
        for comparison in comparisons:
            print_details(comparison)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
