"""The scan stage: files → rules → extractors → references with position and status."""
from __future__ import annotations

import bisect
import dataclasses
import multiprocessing
import multiprocessing.pool
import os
import posixpath
import re
import signal
import threading
from pathlib import Path

from bot import imageref
from bot.errors import UsageError
from bot.globs import matches_any, name_filter
from bot.policy import Policy
from bot.rules import Rule, RuleSelector
from bot.scan import dockerfile, helm, kustomize, yaml
from bot.scan.base import ExtractError, Extraction, Extractor, FileContext
from bot.scan.files import DiskTree, Tree, inside, skipped_folder
from bot.scan.model import INTERNAL, THIRD_PARTY, UNRESOLVED, Found, Reference, ScanResult, Skipped

EXTRACTORS: dict[str, Extractor] = {
    "dockerfile": dockerfile.extract,
    "yaml": yaml.extract,
    "helm-values": helm.extract_values,
    "helm-template": helm.extract_template,
    "kustomize": kustomize.extract,
}

# Below this many candidate files a second process costs more than it saves.
PARALLEL_THRESHOLD = 400

_IGNORE_RE = re.compile(r"^([^\n#]*)#[^\n]*\brehome:\s*ignore\b", re.MULTILINE)
_UNRESOLVED_FORMS = (
    (re.compile(r"\$\{\{.*?(?:\}\}|$)"), "contains an expression"),  # GitHub Actions `${{ matrix.x }}`
    (re.compile(r"\$\{[^}]*\}?|\$[A-Za-z_][A-Za-z0-9_]*"), "contains a variable"),
    (re.compile(r"\$\([^)]*\)?"), "contains a parameter"),
    (re.compile(r"\{\{.*?(?:\}\}|$)"), "contains a template expression"),
    (re.compile(r"<<?[^<>]*>>?"), "contains a placeholder"),
)


@dataclasses.dataclass(frozen=True)
class ScanOptions:
    rules: tuple[Rule, ...]
    policy: Policy = Policy()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_file_size: int = 5 * 1024 * 1024
    untracked: bool = False
    jobs: int | None = None  # None: as many as there are cores


@dataclasses.dataclass
class _FileScan:
    references: list[Reference] = dataclasses.field(default_factory=list)
    builds: list[str] = dataclasses.field(default_factory=list)
    ignored: list[Reference] = dataclasses.field(default_factory=list)  # hidden by `# rehome: ignore` or policy
    skipped: Skipped | None = None
    read_as: str | None = None  # the kind of the rule that read the file
    names_files: list[str] = dataclasses.field(default_factory=list)  # as written: relative to its folder
    building: list[str] = dataclasses.field(default_factory=list)  # the rule's `folder_merges` entries that build
    # A symlink's: the file of the tree it leads to, and the kinds of the rules that selected the link.
    link: tuple[str, tuple[str, ...]] | None = None


def unresolved_reason(text: str) -> str:
    """Why `text` cannot name an image: the variable, parameter or template in it, or the parse error."""
    for pattern, what in _UNRESOLVED_FORMS:
        match = pattern.search(text)
        if match:
            return f"{what}: {match.group(0)}"
    try:
        imageref.parse(text)
    except imageref.InvalidReference as exc:
        return f"not a valid image reference: {exc}"
    return "not a valid image reference"


class _Lines:
    """Line and column of a character offset, as DESIGN.md defines them (only `\\n` ends a line).
    Newlines are counted from the last offset asked for: a file's references come in order, and
    most files have a few in a long text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.bom = text.startswith("\ufeff")
        self.last = (0, 0)  # (an offset, the newlines before it)

    def position(self, offset: int) -> tuple[int, int]:
        since, newlines = self.last if offset >= self.last[0] else (0, 0)
        newlines += self.text.count("\n", since, offset)
        self.last = (offset, newlines)
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        if newlines == 0 and self.bom:
            column -= 1
        return newlines + 1, column


def _ignored_lines(text: str) -> set[int]:
    if "rehome:" not in text:
        return set()
    lines = _Lines(text)
    out = set()
    for match in _IGNORE_RE.finditer(text):
        line, _ = lines.position(match.start())
        out.add(line)
        if not match.group(1).strip():
            out.add(line + 1)  # a comment on its own line covers the next line
    return out


def _status(found: Found, policy: Policy) -> tuple[imageref.ImageRef | None, str, str | None]:
    if found.unresolved is not None:
        return None, UNRESOLVED, found.unresolved
    text = found.resolve_as if found.resolve_as is not None else found.raw
    try:
        ref = imageref.parse(text)
    except imageref.InvalidReference:
        return None, UNRESOLVED, unresolved_reason(text)
    return ref, INTERNAL if policy.is_internal(ref) else THIRD_PARTY, found.note


def _is_reference(found: Found) -> bool:
    raw = found.raw.strip()
    return bool(raw) and raw != "scratch" and not raw.startswith("ko://")


def scan_text(text: str, path: str, rule: Rule, context: FileContext, policy: Policy) -> _FileScan:
    """References in one file's text (before repository-wide filters such as built images)."""
    result = _FileScan(read_as=rule.kind)
    try:
        extraction: Extraction = EXTRACTORS[rule.extractor](text, rule, context)
    except ExtractError as exc:
        result.skipped = Skipped(path, str(exc))
        return result
    result.builds = extraction.builds
    result.names_files = extraction.names_files
    result.building = extraction.building
    if not extraction.found:
        return result
    lines = _Lines(text)
    ignored_lines = _ignored_lines(text)
    for found in extraction.found:
        if not _is_reference(found):
            continue
        line, column = lines.position(found.offset)
        ref, status, reason = _status(found, policy)
        reference = Reference(path, line, column, rule.kind, found.raw, None if ref is None else str(ref), status,
                              reason, found)
        hidden = line in ignored_lines or (ref is not None and policy.is_excluded(ref))
        (result.ignored if hidden else result.references).append(reference)
    return result


def _candidate_rules(path: str, selector: RuleSelector, tree: Tree) -> tuple[Rule, ...]:
    """Rules whose file patterns select `path`, in priority order; the first whose text
    test passes reads the file."""
    return tuple(
        rule
        for rule in selector.select(path)
        if rule.inside_dir_with is None or _has_ancestor_file(tree, path, rule.inside_dir_with)
    )


def _has_ancestor_file(tree: Tree, path: str, name: str) -> bool:
    parts = path.split("/")[:-1]
    return any(tree.is_file("/".join([*parts[:depth], name])) for depth in range(len(parts), -1, -1))


def _scan_file(tree: Tree, path: str, rules: tuple[Rule, ...], options: ScanOptions) -> _FileScan:
    text, why_not = tree.read(path, options.max_file_size)
    if text is None:
        if why_not is None:
            return _FileScan()
        target = tree.link_target(path)
        read_at = target if target is not None and skipped_folder(target) is None else None
        return _FileScan(skipped=Skipped(path, why_not, read_at),
                         link=None if target is None else (target, tuple(rule.kind for rule in rules)))
    rule = next((r for r in rules if r.text_may_hold_references(text)), None)
    if rule is None:
        return _FileScan()
    return scan_text(text, path, rule, FileContext(tree, path), options.policy)


# The worker processes are forked and read the job from here rather than from pickles.
_JOB: tuple[Tree, list[tuple[str, tuple[Rule, ...]]], ScanOptions] | None = None


def _scan_share(share: tuple[int, int]) -> list[_FileScan]:
    assert _JOB is not None
    tree, work, options = _JOB
    index, count = share
    return [_scan_file(tree, path, rules, options) for path, rules in work[index::count]]


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _start_pool(jobs: int) -> multiprocessing.pool.Pool:
    """Forked workers that ignore Ctrl-C: it reaches the whole process group, the parent stops the
    pool, and a worker that took it would print its own traceback. SIGINT is held while they fork,
    so none arrives before a worker ignores it; the parent gets it once they are started."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return multiprocessing.get_context("fork").Pool(jobs, initializer=_ignore_interrupts)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _scan_all(tree: Tree, work: list[tuple[str, tuple[Rule, ...]]], options: ScanOptions) -> list[_FileScan]:
    jobs = options.jobs or os.cpu_count() or 1
    # Off the main thread (a sweep scans repositories in threads) the scan stays in this thread: the
    # forked workers take their job from one module-level slot, and forking a threaded process is unsafe.
    if (jobs < 2 or len(work) < PARALLEL_THRESHOLD or "fork" not in multiprocessing.get_all_start_methods()
            or threading.current_thread() is not threading.main_thread()):
        return [_scan_file(tree, path, rules, options) for path, rules in work]
    global _JOB
    _JOB = (tree, work, options)
    try:
        with _start_pool(jobs) as pool:
            shares = pool.map(_scan_share, [(i, jobs) for i in range(jobs)])
    finally:
        _JOB = None
    # Share i holds the scans of work[i], work[i + jobs], ...: each goes back to its file's place.
    return [shares[index % jobs][index // jobs] for index in range(len(work))]


def _named_files(path: str, scanned: _FileScan) -> list[tuple[str, tuple[str, ...]]]:
    """The files of the tree that `scanned` (the scan of `path`) leads to, each with the kinds of the
    rules to read it with: a symlink's target, with the rules that selected the link; the files a
    file names (those inside the tree), with the rule that read it."""
    if scanned.link is not None:
        return [scanned.link]
    if scanned.read_as is None:
        return []
    return [(named, (scanned.read_as,)) for written in scanned.names_files
            if (named := inside(posixpath.join(posixpath.dirname(path), written))) is not None]


def _scan_named_files(tree: Tree, listed: set[str], scanned: list[tuple[str, _FileScan]],
                      options: ScanOptions, leads_to: dict[str, set[str]]) -> list[_FileScan]:
    """The files that `scanned` files name (compose `include:`, `extends: {file: ...}`) or are symlinks
    to, whatever their names, that no rule read: each read with the rules of the files leading to it
    (as any file: by the first, in priority order, whose text test passes), then the files those lead
    to, in turn; a named symlink stands for its target. Each file is read once (a file no rule read
    may be tried again with other rules), and only files read name others, so a loop ends. Only
    files of `listed` (the tree's files that `--include` and `--exclude` leave) count: a named file
    missing or outside the root is Compose's error, not the scan's (a symlink leaving it is skipped).
    Records in `leads_to` which file leads to which."""
    done: set[str] = set()
    links: dict[str, str] = {}
    out: list[_FileScan] = []
    while scanned:
        done |= {path for path, scan in scanned if scan.read_as is not None or scan.skipped is not None}
        links |= {path: scan.link[0] for path, scan in scanned if scan.link is not None}
        kinds: dict[str, set[str]] = {}
        for path, scan in scanned:
            for named, named_kinds in _named_files(path, scan):
                named = links.get(named, named)
                if named not in listed:
                    continue
                leads_to.setdefault(path, set()).add(named)
                if named not in done:
                    kinds.setdefault(named, set()).update(named_kinds)
        work = [(path, tuple(rule for rule in options.rules if rule.kind in wanted))  # in priority order
                for path, wanted in kinds.items()]
        tree.prefetch(kinds)
        found = _scan_all(tree, work, options)
        out += found
        scanned = list(zip(kinds, found))
    return out


def _through_folder_links(tree: Tree, paths: list[str], names: re.Pattern[str] | None,
                          selector: RuleSelector) -> tuple[list[tuple[str, _FileScan]], list[_FileScan]]:
    """A symlink to a folder of the tree (`.github/workflows -> ../ci/workflows`) is listed as one file, and the
    files behind it only under the folder's own name, which other rules, or none, select. Each of `paths` that a
    rule selects under the link's name comes back as if it were a symlink to the file (for `_scan_named_files`
    to read it once, at its own path, with the rules that selected it there), and each such link as a skip line
    saying where its files are read."""
    through: list[tuple[str, _FileScan]] = []
    notes: list[_FileScan] = []
    for link in paths:
        folder = tree.folder_link_target(link)
        if folder is None:
            continue
        selected = [(alias, _FileScan(link=(path, tuple(rule.kind for rule in rules))))
                    for path in _files_in(paths, folder)
                    if names is None or names.match(path.rpartition("/")[2])
                    if (rules := _candidate_rules(alias := link + path[len(folder):], selector, tree))]
        if selected:
            through += selected
            notes.append(_FileScan(skipped=Skipped(link, f"symlink to the folder {folder}/, whose files are read there",
                                                   folder)))
    return through, notes


def _files_in(paths: list[str], folder: str) -> list[str]:
    """The files of `paths` (sorted) inside `folder`, at any depth."""
    start = bisect.bisect_left(paths, folder + "/")
    end = bisect.bisect_left(paths, folder + "0")  # "0" sorts right after "/"
    return paths[start:end]


def _judge_folder_builds(scanned: list[tuple[str, _FileScan]]) -> None:
    """Files one rule selects and reads in one folder are merged by entry name (`rule.folder_merges`): Compose reads
    `compose.yaml` with `compose.override.yaml`, or the files `-f` names. A reference held by an entry that one of
    them builds names that build's output: it joins the file's builds. Taking each folder as one project may judge
    an image of an unrelated project built: not moving it is the safe side (moving a built name breaks its push)."""
    building: dict[tuple[str, str | None], set[str]] = {}
    for path, scan in scanned:
        if scan.building:
            building.setdefault((posixpath.dirname(path), scan.read_as), set()).update(scan.building)
    for path, scan in scanned:
        names = building.get((posixpath.dirname(path), scan.read_as))
        if not names:
            continue
        for held in (scan.references, scan.ignored):
            scan.builds += [ref.raw for ref in held if not names.isdisjoint(ref.found.entries)]
            held[:] = [ref for ref in held if names.isdisjoint(ref.found.entries)]


def _as_left_out(skipped: Skipped, paths: list[str], listed: set[str]) -> Skipped:
    """`skipped`; for a symlink whose target this scan does not read (`--include` or `--exclude` leave it out, or
    git does not track it), a line saying so instead of where the target is read. `listed` is `paths` (sorted)
    as a set."""
    target = skipped.read_at
    if target is None or target in listed or _files_in(paths, target):
        return skipped
    return Skipped(skipped.path, f"symlink to {target}, which this scan leaves out")


def _is_built(ref: Reference, built: set[str]) -> bool:
    return bool(built) and ref.image is not None and imageref.parse(ref.image).name in built


def _built_names(scans: list[_FileScan]) -> set[str]:
    names = set()
    for scanned in scans:
        for build in scanned.builds:
            ref = imageref.parse_or_none(build)
            if ref is not None:
                names.add(ref.name)
    return names


def scan(root: Path, options: ScanOptions, tree: Tree | None = None) -> ScanResult:
    """References in the files below `root`, or in `tree` (a commit's files) when given."""
    if tree is None:
        if not root.exists():
            raise UsageError(f"{root}: no such file or directory")
        if not root.is_dir():
            raise UsageError(f"{root}: not a directory")
        tree = DiskTree(root, options.untracked)
    paths = tree.paths()
    if options.include:
        paths = [p for p in paths if matches_any(p, options.include)]
    if options.exclude:
        paths = [p for p in paths if not matches_any(p, options.exclude)]
    names = name_filter(tuple(pattern for rule in options.rules for pattern in rule.files))
    selector = RuleSelector(options.rules)
    work = [(path, rules) for path in paths
            if (names is None or names.match(path.rpartition("/")[2]))
            and (rules := _candidate_rules(path, selector, tree))]
    tree.prefetch(path for path, _ in work)
    scans = _scan_all(tree, work, options)
    by_name = [(path, scanned) for (path, _), scanned in zip(work, scans)]
    _judge_folder_builds(by_name)
    through_links, link_notes = _through_folder_links(tree, paths, names, selector)
    listed = set(paths)
    leads_to: dict[str, set[str]] = {}
    scans += link_notes + _scan_named_files(tree, listed, by_name + through_links, options, leads_to)
    built = _built_names(scans)
    references = [ref for scanned in scans for ref in scanned.references if not _is_built(ref, built)]
    references.sort(key=lambda r: (r.path, r.line, r.column))
    skipped = sorted((_as_left_out(s.skipped, paths, listed) for s in scans if s.skipped is not None),
                     key=lambda s: s.path)
    return ScanResult(
        root=str(root),
        references=references,
        ignored=sum(not _is_built(ref, built) for scanned in scans for ref in scanned.ignored),
        skipped=skipped,
        leads_to={path: sorted(named) for path, named in sorted(leads_to.items())},
    )
