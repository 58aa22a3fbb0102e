"""The gate: which references in a tree keep it on third-party registries.

Third-party references are errors, unresolved ones warnings, `covered` ones neither; files the
scan could not read are warnings too (errors with `--fail-on-skipped`). A baseline (or the tree at an earlier git ref) names the references a team already knows
about, keyed by path and image so that moving a line does not make it new.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Set
from pathlib import Path
from typing import Any

from bot import imageref, jsontext, textfile
from bot.errors import UsageError
from bot.gitcmd import GitError, run_git
from bot.globs import matches_any
from bot.output import json_text, write_atomically
from bot.plan import covered_reasons
from bot.policy import MappingError, map_to_mirror
from bot.scan.core import ScanOptions, scan
from bot.scan.files import GitTree, skipped_folder
from bot.scan.model import THIRD_PARTY, UNRESOLVED, Reference, ScanResult, Skipped
from bot.textfile import not_a_file

THIRD_PARTY_RULE = "rehome/third-party-image"
UNRESOLVED_RULE = "rehome/unresolved-image"
BASELINE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Finding:
    reference: Reference
    rule: str
    level: str  # "error" or "warning", as SARIF names them
    message: str
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.reference.to_json(),
            "rule": self.rule,
            "level": self.level,
            "message": self.message,
            "target": self.target,
        }


def skipped_message(skipped: Skipped) -> str:
    return f"skipped: {skipped.reason}; the image references in it are not checked"


@dataclasses.dataclass
class Report:
    destination: str | None
    findings: list[Finding]
    covered: list[Reference]
    known: int  # third-party references left out because the baseline or the earlier ref holds them
    skipped: list[Skipped] = dataclasses.field(default_factory=list)  # files the scan could not read
    fail_on_skipped: bool = False

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def skipped_level(self) -> str:
        return "error" if self.fail_on_skipped else "warning"

    @property
    def failed(self) -> bool:
        return bool(self.errors) or (self.fail_on_skipped and bool(self.skipped))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "destination": self.destination,
            "failed": self.failed,
            "findings": [f.to_json() for f in self.findings],
            "known": self.known,
            "covered": [r.to_json() for r in self.covered],
            "skipped": [s.to_json() for s in self.skipped],
        }


def _third_party(ref: Reference, destination: str | None, template: str) -> Finding:
    assert ref.image is not None
    if destination is None:
        message = (
            f"third-party image {ref.image}: copy it into your registry and use the copy "
            "(`rehome plan --to DEST` names it)"
        )
        return Finding(ref, THIRD_PARTY_RULE, "error", message)
    try:
        target = str(map_to_mirror(imageref.parse(ref.image), destination, template))
    except MappingError as exc:
        message = f"third-party image {ref.image}: the mapping cannot name its mirror copy: {exc}"
        return Finding(ref, THIRD_PARTY_RULE, "error", message)
    return Finding(ref, THIRD_PARTY_RULE, "error", f"third-party image {ref.image}: use {target}", target)


def _unresolved(ref: Reference) -> Finding:
    message = f"unresolved image reference {ref.raw}: {ref.reason}; check by hand that it is not third-party"
    return Finding(ref, UNRESOLVED_RULE, "warning", message)


def build_report(
    scanned: ScanResult,
    destination: str | None,
    template: str,
    *,
    files: Iterable[str] | None = None,
    known: Set[tuple[str, str]] = frozenset(),
    fail_on_skipped: bool = False,
) -> Report:
    """Findings and skipped files in the scanned tree (or only in `files`), third-party references
    whose (path, image) is in `known` left out. Covered references are judged on the whole tree,
    as the plan does."""
    covered_ids = covered_reasons(scanned.references)
    wanted = None if files is None else set(files)
    findings, covered, known_count = [], [], 0
    for ref in scanned.references:
        if wanted is not None and ref.path not in wanted:
            continue
        if ref.status == UNRESOLVED:
            findings.append(_unresolved(ref))
        elif ref.status == THIRD_PARTY and id(ref) in covered_ids:
            covered.append(dataclasses.replace(ref, reason=covered_ids[id(ref)]))
        elif ref.status == THIRD_PARTY:
            if (ref.path, ref.image) in known:
                known_count += 1
            else:
                findings.append(_third_party(ref, destination, template))
    # A symlink whose target is read leaves nothing unchecked: its references are the target's, checked there.
    skipped = [s for s in scanned.skipped if s.read_at is None and (wanted is None or s.path in wanted)]
    return Report(destination, findings, covered, known_count, skipped, fail_on_skipped)


# --- files named on the command line -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PathPatterns:
    """The `include` and `exclude` patterns in force, each with where it was given (as a message names it)."""

    include: tuple[str, ...]
    include_by: str
    exclude: tuple[str, ...]
    exclude_by: str


def with_files_led_to(files: list[str], leads_to: Mapping[str, list[str]]) -> list[str]:
    """`files` and, in turn, the files they lead to (a symlink's target, the files a compose file includes or
    extends from): a change to a file can bring in the images of those."""
    found, waiting = list(files), list(files)
    while waiting:
        for named in leads_to.get(waiting.pop(), ()):
            if named not in found:
                found.append(named)
                waiting.append(named)
    return found


def with_named_files_not_read(scanned: ScanResult, root: Path, files: list[str],
                              patterns: PathPatterns) -> ScanResult:
    """`scanned` with the named `files` the scan did not look at listed as skipped, each with why:
    one that is not a regular file (never opened: a named pipe would hold the check), one in a
    folder scans never enter (vendor/), one the `include` patterns leave out or an `exclude`
    pattern does, or one git ignores (not part of the tree rehome moves: no rewrite would change it)."""
    reasons = {path: why for path in files if (why := _left_out_reason(root, path, patterns)) is not None}
    reasons |= _ignored_by_git(root, [path for path in files if path not in reasons])
    already = {s.path for s in scanned.skipped}
    added = [Skipped(path, why) for path, why in reasons.items() if path not in already]
    return dataclasses.replace(scanned, skipped=sorted(scanned.skipped + added, key=lambda s: s.path))


def _left_out_reason(root: Path, path: str, patterns: PathPatterns) -> str | None:
    return (_not_a_file_reason(root / path) or _skipped_folder_reason(path)
            or _not_included_reason(path, patterns) or _excluded_reason(path, patterns))


def _skipped_folder_reason(path: str) -> str | None:
    folder = skipped_folder(path)
    return None if folder is None else f"in {folder}/, a folder scans always skip"


def _not_included_reason(path: str, patterns: PathPatterns) -> str | None:
    if not patterns.include or matches_any(path, patterns.include):
        return None
    return f"matched by no include pattern ({', '.join(patterns.include)}; {patterns.include_by})"


def _excluded_reason(path: str, patterns: PathPatterns) -> str | None:
    pattern = next((pattern for pattern in patterns.exclude if matches_any(path, (pattern,))), None)
    return None if pattern is None else f"excluded by {pattern} ({patterns.exclude_by})"


def _not_a_file_reason(path: Path) -> str | None:
    try:
        what = not_a_file(os.stat(path).st_mode)
    except OSError:
        return None  # the scan says why it cannot read it
    return None if what is None else f"{what}, not a file"


def _ignored_by_git(root: Path, paths: list[str]) -> dict[str, str]:
    """Of `paths`, those git ignores (untracked and matched by an exclude file), each with the file,
    line and pattern that ignore it; none outside a git checkout."""
    if not paths:
        return {}
    listed = _git_or_none(root, "--literal-pathspecs", "ls-files", "-z", "--others", "--ignored",
                          "--exclude-standard", "--", *paths)
    ignored = [path for path in (listed or "").split("\0") if path]
    if not ignored:
        return {}
    names = "".join(f"{path}\0" for path in ignored).encode("utf-8", "surrogateescape")
    matched = (_git_or_none(root, "check-ignore", "--verbose", "-z", "--stdin", stdin=names) or "").split("\0")
    records = zip(*[iter(matched)] * 4)  # each: the exclude file, the line, the pattern, the path
    sources = {path: f"ignored by {source} (line {line}: {pattern})" for source, line, pattern, path in records}
    return {path: sources.get(path, "ignored by git") for path in ignored}


# --- baselines ---------------------------------------------------------------------------------

def third_party_keys(scanned: ScanResult) -> set[tuple[str, str]]:
    """(path, image) of every third-party reference, e.g. in the tree at an earlier ref."""
    return {(r.path, r.image) for r in scanned.references if r.status == THIRD_PARTY and r.image is not None}


def write_baseline(path: Path, keys: set[tuple[str, str]]) -> None:
    data = {
        "version": BASELINE_VERSION,
        "references": [{"path": p, "image": i} for p, i in sorted(keys)],
    }
    try:
        write_atomically(path, json_text(data) + "\n")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the baseline: {exc.strerror or exc}") from None


def read_baseline(path: Path) -> set[tuple[str, str]]:
    try:
        data = jsontext.loads(textfile.read_text(path))
    except FileNotFoundError:
        hint = "write one with `rehome check --write-baseline FILE`"
        raise UsageError(f"{path}: baseline not found", hint=hint) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the baseline: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
        raise UsageError(f"{path}: not a rehome baseline (expected a JSON object with \"version\": {BASELINE_VERSION})")
    entries = data.get("references")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("image"), str) for e in entries
    ):
        raise UsageError(f"{path}: \"references\" must be a list of {{\"path\", \"image\"}} objects")
    return {(e["path"], e["image"]) for e in entries}


# --- the tree at an earlier git ref ------------------------------------------------------------

def _git_or_none(root: Path, *args: str, stdin: bytes | None = None) -> str | None:
    """git's output, or None where git fails (outside a checkout, no such commit, no git)."""
    try:
        return run_git(root, args, stdin=stdin)
    except GitError:
        return None


def git_toplevel(folder: Path) -> Path | None:
    """The top of the git checkout holding `folder`, or None outside one."""
    top = _git_or_none(folder, "rev-parse", "--show-toplevel")
    return None if top is None else Path(top)


def git_prefix(folder: Path) -> str:
    """`folder` relative to the top of its git checkout (`sub/dir/`), or '' outside one."""
    return _git_or_none(folder, "rev-parse", "--show-prefix") or ""


def scan_at_ref(root: Path, ref: str, options: ScanOptions) -> ScanResult:
    """Scan `root` as it was at git `ref`, reading the commit's objects (a folder the commit
    does not hold has no files: everything in it is new)."""
    if git_toplevel(root) is None:
        raise UsageError(f"{root}: --new-since needs a git checkout")
    commit = _git_or_none(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit is None:
        raise UsageError(f"--new-since {ref}: no such commit in {root}")
    return scan(root, options, GitTree(root, commit))
