"""The rewrite stage: point moved references at the mirror, leaving every other byte alone.

Each moved reference becomes one or more splices (character ranges of the original
text and their new text), applied right to left. The new text is then scanned again:
every moved reference must now read as its target and every other reference as before;
and for YAML the documents are parsed and compared: equal except for the planned values
(and the planned structural edits: a GitLab service alias, a Kustomize `newName`). A file
that fails a check is left untouched and reported.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from bot import imageref
from bot.errors import UsageError
from bot.imageref import ImageRef
from bot.plan import (Overrides, Plan, held_by_overrides, is_multiline_block, override_matches, renamable_overrides,
                      rewrite_blocker)
from bot.policy import Policy
from bot.rules import Rule
from bot.scan.base import FileContext
from bot.scan.core import scan_text
from bot.scan.files import Tree
from bot.scan.model import Reference
from bot.scan.yaml import line_at
from bot.semantics import AllowedChanges, SemanticsChanged, check_same_data, check_same_instructions

# Extractors whose files are YAML documents, compared as data before and after.
YAML_EXTRACTORS = ("yaml", "helm-values", "kustomize")


class CannotRewrite(Exception):
    """A reference or file that must be left as it is; the message says why."""


@dataclasses.dataclass(frozen=True, order=True)
class Splice:
    start: int
    end: int
    text: str


@dataclasses.dataclass
class FileRewrite:
    path: str
    old_text: str
    new_text: str | None  # None when the file is left untouched
    moved: int
    reason: str | None = None

    @property
    def changed(self) -> bool:
        return self.new_text is not None and self.new_text != self.old_text


def new_raw(ref: Reference, target: ImageRef) -> str:
    """The reference text to write: the target, or, where the text holds variables for its
    tag (`python:${PY}-slim`), the target's name followed by the text's own tag part."""
    if ref.found.resolve_as is None:
        return str(target)
    return target.name + ref.raw[len(imageref.written_name(ref.raw)):]


def _quote(value: str, style: str) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


@dataclasses.dataclass
class Edit:
    """What one moved reference changes: text splices, and the data changes they make."""

    splices: list[Splice]
    allowed: AllowedChanges = dataclasses.field(default_factory=AllowedChanges)


def _newline_at(text: str, offset: int) -> str:
    end = text.find("\n", offset)
    return "\r\n" if end > 0 and text[end - 1] == "\r" else "\n"


def _column(text: str, offset: int) -> int:
    return offset - (text.rfind("\n", 0, offset) + 1)


def _scalar_edit(ref: Reference, value: str) -> Edit:
    edit = ref.found.edit
    prefix = edit.get("prefix", "")
    # A one-line block scalar keeps the line end(s) its value holds after the name.
    suffix = edit.get("suffix", "")
    allowed = AllowedChanges()
    allowed.allow(prefix + ref.raw + suffix, prefix + value + suffix)
    if edit.get("exact", True):
        start, end = ref.found.region
        return Edit([Splice(start, end, value)], allowed)
    # The scalar was written with escapes or folded over lines: write it again, whole.
    start, end = edit["scalar"]
    style = edit.get("style", "")
    return Edit([Splice(start, end, _quote(prefix + value, style if style in ("'", '"') else '"'))], allowed)


def _replace_part(part: dict[str, Any], value: str, where: str) -> Edit:
    """Set one scalar of a composed reference (a Helm or Kustomize key) to `value`."""
    allowed = AllowedChanges()
    allowed.allow(part["value"], value)
    if part["exact"]:
        start, end = part["span"]
        return Edit([Splice(start, end, value)], allowed)
    style = part["style"]
    if is_multiline_block(part):
        raise CannotRewrite(f"{where}: the value is a block scalar over several lines; change it by hand")
    start, end = part["scalar"]
    return Edit([Splice(start, end, _quote(value, style if style in ("'", '"') else '"'))], allowed)


def _joined(*edits: Edit) -> Edit:
    out = Edit([])
    for edit in edits:
        out.splices += edit.splices
        out.allowed.update(edit.allowed)
    return out


def _helm_edit(ref: Reference, target: ImageRef, text: str) -> Edit:
    """Split keys: the registry gets the mirror host and the repository the rest; without a
    `registry` key the repository takes the whole name. The tag line stays as it is."""
    parts = ref.found.edit["helm"]
    where = f"line {ref.line}"
    if parts.get("registry") is not None:
        edit = _joined(
            _replace_part(parts["registry"], target.domain, where),
            _replace_part(parts["repository"], target.path, where),
        )
    else:
        edit = _replace_part(parts["repository"], target.name, where)
    digest = parts.get("digest")
    if target.digest is not None and (digest is None or not digest["value"]):
        return _joined(edit, _helm_pin(parts, target.digest, text))
    return edit


def _helm_pin(parts: Mapping[str, Any], digest: str, text: str) -> Edit:
    """A pinned entry's digest: in its empty `digest` key (charts such as Bitnami's write `digest: ""`),
    else in a `digest:` key that joins the map after the tag (or the repository)."""
    key = next(key for key in ("digest", "tag", "repository") if parts.get(key) is not None)
    part = parts[key]
    entry_line, part_line = line_at(text, parts["image_key_start"]), line_at(text, part["span"][0])
    if key in parts["merged"]:
        # The reference stands where its repository is written: maybe in the merged mapping, not the entry.
        raise CannotRewrite(f"line {entry_line}: the {key} at line {part_line} comes from a merge key (<<): "
                            "add the digest by hand")
    if key == "digest":
        if part["style"] not in ("'", '"'):
            raise CannotRewrite(f"line {entry_line}: the digest at line {part_line} is null, not an empty string: "
                                'write it digest: "" or add the digest by hand')
        return _replace_part(part, digest, f"line {entry_line}")
    allowed = AllowedChanges()
    allowed.allow_added("digest", digest)
    return Edit([_insert_key(parts, part["scalar"][1], "digest", digest, text)], allowed)


def _insert_key(entry: Mapping[str, Any], end: int, key: str, value: str, text: str) -> Splice:
    """A new `key: value` in a mapping: after the line where the value before it ends at `end`
    (block), or right after that value (flow)."""
    if entry["flow"]:
        return Splice(end, end, f", {key}: {value}")
    line_end = text.find("\n", end)
    newline = _newline_at(text, end)
    line = f"{' ' * entry['indent']}{key}: {value}"
    if line_end == -1:
        return Splice(len(text), len(text), newline + line)
    return Splice(line_end + 1, line_end + 1, line + newline)


def _kustomize_edit(ref: Reference, target: ImageRef, text: str) -> Edit:
    """The entry now produces the mirror image: `newName` is set (or added after `name`)."""
    entry = ref.found.edit["kustomize"]
    if entry.get("newName") is not None:
        return _replace_part(entry["newName"], target.name, f"line {ref.line}")
    allowed = AllowedChanges()
    allowed.allow_added("newName", target.name)
    return Edit([_insert_key(entry, entry["name"]["scalar"][1], "newName", target.name, text)], allowed)


def _service_edit(ref: Reference, target: ImageRef, text: str) -> Edit:
    """A GitLab service keeps the host names jobs may use that can be an alias: they become `alias:` entries."""
    value = new_raw(ref, target)
    kept = _host_names_edit(ref.raw, value, ref.found.edit, text)
    return kept if ref.found.edit.get("service_item") else _joined(_scalar_edit(ref, value), kept)


def _host_names_edit(raw: str, value: str, service: Mapping[str, Any], text: str) -> Edit:
    """The `alias:` entries that keep a service named `raw`, now `value`, reachable by its host names:
    a string item becomes a mapping, each mapping holding the name gets the alias. A service named by a
    variable keeps its name (`raw` and `value` are the same) and gets the host names of the variable's value."""
    alias_text = ",".join(service["aliases"])
    if service.get("service_item"):
        return _service_item_edit(raw, value, alias_text, service["scalar"], service, text)
    return _joined(*(_alias_edit(m, service["aliases"], text) for m in service["mappings"]),
                   *(_service_item_edit(raw, value, alias_text, item["span"], item, text)
                     for item in service["aliased_items"]))


def _service_item_edit(raw: str, value: str, alias_text: str, span: tuple[int, int], item: Mapping[str, Any],
                       text: str) -> Edit:
    """A list item written as a plain string `- redis:7` (or as an alias of one, `- *db`) becomes a
    mapping with the name (the mirror image, or the alias) and the alias. An anchor on a string
    item then names that mapping: every alias of it gets the mirror image and the alias."""
    start, end = span
    end = start + len(text[start:end].rstrip())  # a block scalar (`- >-`) ends after its line break
    name = item.get("token", value)
    allowed = AllowedChanges()
    allowed.allow(raw, {"name": value, "alias": alias_text})
    if item["flow"]:
        return Edit([Splice(start, end, f"{{name: {name}, alias: {_alias_scalar(alias_text, True)}}}")], allowed)
    newline = _newline_at(text, end)
    indent = " " * _column(text, item.get("item_start", start))
    mapping = f"name: {name}{newline}{indent}alias: {alias_text}"
    if item.get("anchored"):
        # `- &db mysql:8`: the mapping goes on the lines after the anchor.
        return Edit([Splice(len(text[:start].rstrip()), end, f"{newline}{indent}{mapping}")], allowed)
    return Edit([Splice(start, end, mapping)], allowed)


def _alias_scalar(value: str, flow: bool, style: str = "") -> str:
    """Host names, comma-separated, as a YAML scalar: inside `{...}` a plain one ends at a comma."""
    return _quote(value, style or ('"' if flow and "," in value else ""))


def _alias_edit(mapping: Mapping[str, Any], aliases: list[str], text: str) -> Edit:
    """The host names join a service mapping's `alias` (or become it: after those its merge key gives it)."""
    allowed = AllowedChanges()
    alias = mapping.get("alias")
    if alias is None:
        merged = mapping.get("merged_alias")
        alias_text = _joined_aliases(merged[2] if merged else "", aliases)
        allowed.allow_added("alias", alias_text)
        scalar = _alias_scalar(alias_text, mapping["flow"])
        return Edit([_insert_key(mapping, mapping["value_end"], "alias", scalar, text)], allowed)
    start, end, value, style = alias
    joined = _joined_aliases(value, aliases)
    allowed.allow(value, joined)
    return Edit([Splice(start, end, _alias_scalar(joined, mapping["flow"], style))], allowed)


def _joined_aliases(written: str, aliases: list[str]) -> str:
    """A written `alias` (comma-separated names) with `aliases` appended, each name once."""
    return ",".join(dict.fromkeys([*(a.strip() for a in written.split(",") if a.strip()), *aliases]))


def edit_for(ref: Reference, target: ImageRef, text: str) -> Edit:
    blocker = rewrite_blocker(ref)  # the plan leaves such references unresolved
    if blocker is not None:
        raise CannotRewrite(f"line {ref.line}: {blocker}")
    if "helm" in ref.found.edit:
        return _helm_edit(ref, target, text)
    if "kustomize" in ref.found.edit:
        return _kustomize_edit(ref, target, text)
    own = _service_edit(ref, target, text) if ref.found.edit.get("service") else _scalar_edit(ref, new_raw(ref, target))
    # A GitLab variable's value stays one of its `options:`.
    options = (_replace_part(option, new_raw(ref, target), f"line {ref.line}")
               for option in ref.found.edit.get("options", ()))
    return _joined(own, *options, *(_host_names_edit(use["raw"], use["raw"], use, text)
                                    for use in ref.found.edit.get("variable_services", ())))


def rename_edit(override: Reference, new_name: str) -> Edit:
    """A Kustomize entry's `name` follows the manifests it matches to their mirror name."""
    return _replace_part(override.found.edit["kustomize"]["name"], new_name, f"line {override.line}")


def apply_splices(text: str, splices: list[Splice]) -> str:
    ordered = sorted(set(splices))  # references sharing a value (an anchor) may edit it alike: once
    for before, after in zip(ordered, ordered[1:]):
        if after.start < before.end:
            raise CannotRewrite(_overlap(text, before, after))
    for splice in reversed(ordered):
        text = text[: splice.start] + splice.text + text[splice.end:]
    return text


def _place(ref: Reference) -> tuple[int, str]:
    """Where a reference stands, and what it reads there. The offset alone does not tell references apart:
    Helm entries sharing an anchored `repository` (each with its own tag) all stand at the anchor, and a
    Kustomize entry with only `newName` is one reference per tag it keeps."""
    return ref.found.offset, ref.raw


def _overlap(text: str, first: Splice, second: Splice) -> str:
    if (first.start, first.end) != (second.start, second.end):
        return f"two edits overlap at characters {second.start}-{first.end}"
    return (f"line {line_at(text, first.start)}: references sharing {text[first.start:first.end]!r} (an anchor) "
            f"would need it to read {first.text!r} and {second.text!r}; change it by hand")


def _check_rescan(text: str, new_text: str, targets: dict[tuple[int, str], str], rule: Rule, context: FileContext,
                  policy: Policy) -> None:
    """Scan both texts: moved references (keyed by their old `_place`) must read as their
    targets, every other reference exactly as before. The old text is read beside the other
    files' old texts: a Kustomize entry with only `newName` takes its tag from the manifests."""
    original = dataclasses.replace(context, overlay={})
    before = scan_text(text, context.path, rule, original, policy).references
    rescanned = scan_text(new_text, context.path, rule, context, policy)
    if rescanned.skipped is not None:
        raise CannotRewrite(f"the rewritten file no longer reads as {rule.kind}: {rescanned.skipped.reason}")
    # At one offset the tags keep their order: a rewrite changes names only.
    after = sorted(rescanned.references, key=_place)
    before = sorted(before, key=_place)
    if len(after) != len(before):
        raise CannotRewrite(f"the rewritten file holds {len(after)} image references instead of {len(before)}")
    for old, new in zip(before, after):
        expected = targets.get(_place(old))
        if expected is not None and new.image != expected:
            raise CannotRewrite(f"line {old.line}: expected {expected} after the rewrite, found {new.image or new.raw}")
        if expected is None and new.raw != old.raw:
            raise CannotRewrite(f"line {old.line}: {old.raw} changed to {new.raw}, which was not planned")
        if expected is None and new.image != old.image:
            raise CannotRewrite(f"line {old.line}: {old.raw} would name {new.image} instead of {old.image}, "
                                "which was not planned")


def _edited(text: str, moves: list[tuple[Reference, ImageRef]], extra: list[Edit] | None) -> tuple[list[Edit], str]:
    edits = [edit_for(ref, target, text) for ref, target in moves] + (extra or [])
    return edits, apply_splices(text, [s for e in edits for s in e.splices])


def rewrite_file(
    text: str,
    moves: list[tuple[Reference, ImageRef]],
    rule: Rule,
    context: FileContext,
    policy: Policy,
    extra: list[Edit] | None = None,
) -> FileRewrite:
    """Rewrite one file's moved references to their mirror images (plus `extra` edits that
    keep it consistent with other files), or say why not."""
    try:
        edits, new_text = _edited(text, moves, extra)
        _check_rescan(text, new_text, {_place(r): str(t) for r, t in moves}, rule, context, policy)
        allowed = AllowedChanges()
        for e in edits:
            allowed.update(e.allowed)
        if rule.extractor in YAML_EXTRACTORS:
            check_same_data(text, new_text, allowed)
        elif rule.extractor == "dockerfile":
            check_same_instructions(text, new_text, allowed)
    except CannotRewrite as exc:
        return FileRewrite(context.path, text, None, 0, str(exc))
    except SemanticsChanged as exc:
        return FileRewrite(context.path, text, None, 0, f"the rewrite would change more than image names: {exc}")
    except RecursionError:
        return FileRewrite(context.path, text, None, 0, "nested too deeply to check that only image names change")
    return FileRewrite(context.path, text, new_text, len(moves))


def _lines(text: str) -> list[str]:
    """Lines ending at `\n` only (as git sees them), each with its line end."""
    lines = re.split(r"(?<=\n)", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def unified_diff(rewrite: FileRewrite) -> str:
    assert rewrite.new_text is not None
    old = _lines(rewrite.old_text)
    new = _lines(rewrite.new_text)
    lines = []
    for line in difflib.unified_diff(old, new, f"a/{rewrite.path}", f"b/{rewrite.path}"):
        lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(lines)


def kustomize_renames(plan: Plan, overrides: Overrides, moving: set[int]) -> dict[str, list[Edit]]:
    """`name:` edits, by kustomization path, for the `overrides` (the tree's `renamable_overrides`)
    whose manifests move (the `moving` references, by id)."""
    targets = {id(ref): imageref.parse(move.target) for move in plan.moves for ref in move.references}
    renames: dict[str, list[Edit]] = defaultdict(list)
    for ref, matches in overrides:
        new_names = {targets[id(m)].name for m in matches if id(m) in moving}
        if len(new_names) == 1:
            renames[ref.path].append(rename_edit(ref, new_names.pop()))
    return renames


def can_pin(ref: Reference, kustomized: set[int]) -> bool:
    """A digest pins one exact image: not a tag that comes from a variable, nor a Kustomize
    entry (whose tags come from the manifests it matches), nor an image such an entry applies to
    (`kustomized`, by id): the entry gives it its own name, tag or digest, and a `newName` alone
    would carry the digest over to another image."""
    return ref.found.resolve_as is None and "kustomize" not in ref.found.edit and id(ref) not in kustomized


def rewrite_tree(
    tree: Tree,
    plan: Plan,
    rules: dict[str, Rule],
    policy: Policy,
    references: list[Reference],
    pins: Mapping[str, str] | None = None,
) -> list[FileRewrite]:
    """Rewrites for every file that holds a planned move (nothing is written here).
    `pins` maps a move's source to the digest its verified mirror copy serves.
    Kustomizations come last and are checked against the manifests' new texts and each other's;
    one that cannot follow stays with what its entries apply to, and the others are done again."""
    overrides = renamable_overrides(references)
    by_path = _moves_by_path(plan, pins, {id(match) for _, matches in overrides for match in matches})
    rule_of = {ref.path: rules[ref.kind] for ref in references}
    kustomizations = {path for path, rule in rule_of.items() if rule.extractor == "kustomize"}
    results = {path: _rewrite_one(tree, path, _read_again(tree, path), by_path[path], rule_of[path], policy, {})
               for path in sorted(by_path) if path not in kustomizations}
    staying: dict[str, str] = {}  # kustomizations that could not follow, with why
    while True:
        following = _held_with_kustomizations(staying, by_path, references)
        held = _hold_what_stays_with_kustomizations(results, by_path, overrides, following)
        moving = {id(ref) for path, moves in by_path.items() for ref, _ in moves
                  if id(ref) not in held and (path in kustomizations or results[path].changed)}
        renames = kustomize_renames(plan, overrides, moving)
        work = {path: (moves, renames.get(path, [])) for path in sorted(kustomizations - set(staying))
                if (moves := [(r, t) for r, t in by_path.get(path, []) if id(r) not in held]) or path in renames}
        new_texts = {path: r.new_text for path, r in results.items() if r.new_text is not None and r.changed}
        rewritten = _rewrite_kustomizations(tree, work, rule_of, policy, new_texts)
        refused = {path: r.reason or "" for path, r in rewritten.items() if r.new_text is None}
        if not refused:
            break
        staying.update(refused)
    for path in sorted((kustomizations & (set(by_path) | set(staying))) - set(rewritten)):
        if path in staying:
            reason = staying[path]
        else:  # every reference it holds stays
            first = id(by_path[path][0][0])
            reason = f"left as it is: {held[first]}" if first in following else held[first]
        text = _read_again(tree, path)
        results[path] = dataclasses.replace(_rewrite_one(tree, path, text, [], rule_of[path], policy, {}), reason=reason)
    results.update(rewritten)
    return sorted(results.values(), key=lambda r: r.path)


def _moves_by_path(plan: Plan, pins: Mapping[str, str] | None,
                   kustomized: set[int]) -> dict[str, list[tuple[Reference, ImageRef]]]:
    """Each file's moved references with their targets (pinned to `pins`' digests where they can be:
    see `can_pin`)."""
    by_path: dict[str, list[tuple[Reference, ImageRef]]] = defaultdict(list)
    for move in plan.moves:
        target = imageref.parse(move.target)
        digest = (pins or {}).get(move.source)
        pinned = target.with_digest(digest) if digest and target.digest is None else target
        for ref in move.references:
            by_path[ref.path].append((ref, pinned if can_pin(ref, kustomized) else target))
    return by_path


def _rewrite_kustomizations(tree: Tree, work: Mapping[str, tuple[list[tuple[Reference, ImageRef]], list[Edit]]],
                            rule_of: Mapping[str, Rule], policy: Policy,
                            new_texts: dict[str, str]) -> dict[str, FileRewrite]:
    """Each kustomization's moves and `name:` edits, checked against the other files' new texts,
    the other kustomizations' included: an overlay reads what it includes, a component what
    includes it, whatever the order of their paths. Each is read once, for both."""
    texts = {path: _read_again(tree, path) for path in work}
    proposed = dict(new_texts)
    for path, (moves, extra) in work.items():
        try:
            proposed[path] = _edited(texts[path], moves, extra)[1]
        except CannotRewrite:
            pass  # its own rewrite says why
    return {path: _rewrite_one(tree, path, texts[path], moves, rule_of[path], policy,
                               {p: text for p, text in proposed.items() if p != path}, extra)
            for path, (moves, extra) in work.items()}


def _read_again(tree: Tree, path: str) -> str:
    text, why_not = tree.read(path, sys.maxsize)  # it was scanned: within the size limit
    if text is None:
        raise UsageError(f"{tree.root / path}: cannot be read again to rewrite it: {why_not or 'it is gone'}")
    return text


def _rewrite_one(tree: Tree, path: str, text: str, moves: list[tuple[Reference, ImageRef]], rule: Rule,
                 policy: Policy, new_texts: dict[str, str], extra: list[Edit] | None = None) -> FileRewrite:
    if not moves and not extra:
        return FileRewrite(path, text, None, 0)
    return rewrite_file(text, moves, rule, FileContext(tree, path, overlay=new_texts), policy, extra)


def _held_with_kustomizations(staying: Mapping[str, str], by_path: Mapping[str, list[tuple[Reference, ImageRef]]],
                              references: list[Reference]) -> dict[int, str]:
    """What stays with kustomizations left untouched: their own references, and what their
    `images:` entries apply to (or those entries would stop applying). By id, with the reason."""
    held = {id(ref): reason for path, reason in staying.items() for ref, _ in by_path.get(path, [])}
    for ref in references:
        if ref.path in staying and "kustomize" in ref.found.edit:
            for match in override_matches(ref, references):
                held.setdefault(id(match), f"{ref.path}, whose images: entries apply to it, could not follow the "
                                           f"move ({staying[ref.path]})")
    return held


def _hold_what_stays_with_kustomizations(results: dict[str, FileRewrite],
                                         by_path: Mapping[str, list[tuple[Reference, ImageRef]]],
                                         overrides: Overrides, held: dict[int, str]) -> dict[int, str]:
    """A manifest left untouched keeps references a kustomization's `images:` entry applies to:
    the entry keeps its name, so what else it applies to stays too (whole files, repeated until
    nothing changes). The references `held` to start with, and those held now, by id, with the reason."""
    while True:
        moving = {id(ref) for path, r in results.items() if r.changed for ref, _ in by_path[path]}
        moving |= {id(ref) for path, moves in by_path.items() if path not in results for ref, _ in moves}
        held = {**held_by_overrides(overrides, moving - set(held)), **held}
        newly = {path: reason for path, r in results.items() if r.changed
                 for ref, _ in by_path[path] if (reason := held.get(id(ref))) is not None}
        if not newly:
            return held
        for path, reason in newly.items():
            results[path] = FileRewrite(path, results[path].old_text, None, 0, f"left as it is: {reason}")
