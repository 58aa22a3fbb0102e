"""YAML documents as composed nodes with exact character offsets.

The C loader (libyaml via ruamel.yaml.clib) is fast and keeps marks; its `index`
counts characters of the text it was given, CRLF as two. It strips a leading BOM,
so offsets are shifted back by one for a text that starts with one. Multi-document
files are split at document markers first, so a document that cannot hold a
reference (a text test) is never parsed: the corpus has 1-2 MB files of CRDs.
"""
from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.cyaml import CParser
from ruamel.yaml.error import ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from bot.scan.base import ExtractError

STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"})
_NUMBER_RE = re.compile(r"[-+]?(?:\.?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|0o?[0-7_]+|\.inf|\.nan)", re.IGNORECASE)
BOM = "\ufeff"
_DUPLICATE_KEY_RE = re.compile(r'found duplicate key "(?P<key>.*?)" with value')
# A document marker line: `---` or `...` at column 0, then space or end of line.
# YAML forbids such a line inside any scalar, so splitting here is always safe.
_MARKERS = ("\n---", "\n...")
_AFTER_MARKER = frozenset(" \t\r\n")


# An anchor name used twice is valid YAML (an alias means the latest); ruamel's warning about it
# would print library paths on the user's terminal once per scan, plan and rewrite.
warnings.filterwarnings("ignore", category=ReusedAnchorWarning)

# Shared Tag objects: each caches its decoded text, so reading `node.tag` stays cheap.
_TAGS = {name: Tag(suffix=f"tag:yaml.org,2002:{name}") for name in ("str", "seq", "map", "merge", "null", "bool", "float")}


class _ScanResolver(VersionedResolver):
    """Only tells strings from other scalars: ruamel's full resolver, run in Python for every
    scalar, cost more than parsing itself. Tags of collections are not used by the scan."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Tag:
        if kind is not ScalarNode:
            return _TAGS["seq"] if kind is SequenceNode else _TAGS["map"]
        if not implicit[0]:
            return _TAGS["str"]
        if value == "<<":
            return _TAGS["merge"]
        if value in _NULLS:
            return _TAGS["null"]
        if value in _BOOLS:
            return _TAGS["bool"]
        if value[0] in "0123456789+-." and _NUMBER_RE.fullmatch(value):
            return _TAGS["float"]
        return _TAGS["str"]


class _CComposer(CParser, _ScanResolver):  # type: ignore[misc]
    """libyaml's parser and composer with the scan's resolver: what `YAML(typ="safe").compose_all`
    builds for each call (a class and a constructor among it), made once."""

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        _ScanResolver.__init__(self, loadumper=self)


def _c_compose_all(text: str) -> list[Node]:
    composer = _CComposer(text)
    try:
        nodes = []
        while composer.check_node():
            nodes.append(composer.get_node())
        return nodes
    finally:
        composer.dispose()


# libyaml (the C loader) speaks YAML 1.1 and rejects some YAML 1.2 that Kubernetes tools
# accept, e.g. `{image: redis:7}`: a document it refuses is parsed again by the pure parser.
# A YAML object keeps the state of the parse it is in, so each thread has its own (a sweep
# scans several repositories at once).
_LOCAL = threading.local()


def _pure() -> YAML:
    loader = getattr(_LOCAL, "pure", None)
    if loader is None:
        loader = _LOCAL.pure = YAML(typ="safe", pure=True)
        loader.Resolver = _ScanResolver
    return loader


def split_documents(text: str) -> list[tuple[int, str]]:
    """(offset, text) for each document's region. Directives make splitting unsafe: one chunk."""
    if text.startswith("%") or "\n%" in text:
        return [(0, text)]
    starts = [0] + _marker_lines(text)
    ends = starts[1:] + [len(text)]
    return [(s, text[s:e]) for s, e in zip(starts, ends)]


def _marker_lines(text: str) -> list[int]:
    """Where each marker line after the first line starts. `str.find` rather than a regex: the
    texts are megabytes, and the regex engine tries each character where `find` skips ahead."""
    starts = []
    for marker in _MARKERS:
        at = text.find(marker)
        while at != -1:
            after = at + len(marker)
            if after == len(text) or text[after] in _AFTER_MARKER:
                starts.append(at + 1)
            at = text.find(marker, after)
    return sorted(starts)


def compose_all(text: str) -> list[Node]:
    try:
        return [n for n in _c_compose_all(text) if n is not None]
    except YAMLError:
        pass
    except RecursionError:
        raise ExtractError("not parseable: YAML nested too deeply") from None
    try:
        return [n for n in _pure().compose_all(text) if n is not None]
    except YAMLError as exc:
        raise ExtractError(f"not valid YAML: {yaml_problem(exc)}") from None
    except RecursionError:
        raise ExtractError("not parseable: YAML nested too deeply") from None


def yaml_problem(exc: YAMLError) -> str:
    """The problem and where it is, in one line: without the library's quoted context and advice."""
    mark = getattr(exc, "problem_mark", None)
    duplicate = _DUPLICATE_KEY_RE.match(exc.problem or "") if isinstance(exc, DuplicateKeyError) else None
    if duplicate and mark is not None:
        return f"duplicate key {duplicate['key']!r} at line {mark.line + 1}"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return problem


def documents(text: str, guards: tuple[re.Pattern[str], ...] = ()) -> Iterator[tuple[int, Node]]:
    """(offset to add to node marks, root node) for each document whose text passes every guard."""
    body = text[1:] if text.startswith(BOM) else text
    shift = len(text) - len(body)
    chunks = split_documents(body)
    selected = [(o, c) for o, c in chunks if all(g.search(c) for g in guards)]
    if len(chunks) == 1 or not selected:
        for offset, chunk in selected:
            for node in compose_all(chunk):
                yield offset + shift, node
        return
    try:
        parsed = [(offset, compose_all(chunk)) for offset, chunk in selected]
    except ExtractError:
        # A marker-looking line the split misjudged: parse the whole text to be sure.
        for node in compose_all(body):
            yield shift, node
        return
    for offset, nodes in parsed:
        for node in nodes:
            yield offset + shift, node


def mapping_get(node: Node, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return v
    return None


def is_merge_key(key: Node) -> bool:
    return isinstance(key, ScalarNode) and key.value == "<<" and key.tag == MERGE_TAG


def merged_mappings(value: Node) -> list[Node]:
    """The mappings a merge key puts into its mapping: `<<: *base` or `<<: [*a, *b]`."""
    return value.value if isinstance(value, SequenceNode) else [value]


def merged_get(node: Node, key: str) -> tuple[Node | None, tuple[MappingNode, ...]]:
    """A mapping's value for `key` as merge keys make it: its own, else that of the first merged
    mapping that has it, read the same way, at any depth (`<<: [*a, *b]`: `a`, with what `a` merges,
    before `b`); with the merged mappings it comes through, outermost first (none for its own).
    A mapping merged twice (or into itself) is read once."""
    seen: set[int] = set()
    stack: list[tuple[Node, tuple[MappingNode, ...]]] = [(node, ())]
    while stack:
        mapping, through = stack.pop()
        if id(mapping) in seen or not isinstance(mapping, MappingNode):
            continue
        seen.add(id(mapping))
        own = mapping_get(mapping, key)
        if own is not None:
            return own, through
        merged = [m for merge_key, value in mapping.value if is_merge_key(merge_key) for m in merged_mappings(value)]
        stack += [(m, (*through, m)) for m in reversed(merged)]
    return None, ()


def effective_get(node: Node, key: str) -> Node | None:
    """A mapping's value for `key` as merge keys make it (see `merged_get`)."""
    return merged_get(node, key)[0]


def scalar_text(node: Node | None) -> str | None:
    """The string value of a plain or quoted string scalar, else None."""
    if isinstance(node, ScalarNode) and node.tag == STR_TAG:
        return node.value
    return None


def _properties(text: str, start: int, end: int) -> tuple[list[str], int]:
    """A node's mark starts at its properties (`&anchor`, `!tag`) when it has any: those, and
    where the node itself starts after them. No scalar starts with `&` or `!` (both are indicators)."""
    properties = []
    while start < end and text[start] in "&!":
        word_start = start
        while start < end and text[start] not in " \t\r\n":
            start += 1
        properties.append(text[word_start:start])
        while start < end and text[start] in " \t\r\n":
            start += 1
    return properties, start


def anchor_name(node: Node, text: str, base: int) -> str | None:
    """The name of the `&anchor` a node is written with, if any (libyaml's nodes do not keep it)."""
    properties, _ = _properties(text, base + node.start_mark.index, base + node.end_mark.index)
    return next((p[1:] for p in properties if p.startswith("&")), None)


def content_start(node: Node, text: str, base: int) -> int:
    """Where a node's content starts in the text, after its properties (`&anchor`, `!tag`)."""
    return _properties(text, base + node.start_mark.index, base + node.end_mark.index)[1]


def value_offset(node: ScalarNode, text: str, base: int) -> tuple[int, tuple[int, int], bool]:
    """Where a scalar's value text starts, the scalar's whole span, and whether the value
    stands in the file exactly as parsed (no escapes, no folding)."""
    _, start = _properties(text, base + node.start_mark.index, base + node.end_mark.index)
    end = base + node.end_mark.index
    style = node.style
    if style in ("|", ">"):
        # A one-line block scalar (`image: >-` then the name on the next line) holds its value verbatim.
        content = node.value.rstrip("\n")
        found = text.find(content, start, end) if content and "\n" not in content else -1
        return (found, (start, end), True) if found != -1 else (start, (start, end), False)
    value_start = start + 1 if style in ('"', "'") else start
    value_end = end - 1 if style in ('"', "'") else end
    exact = value_end == value_start + len(node.value) and text.startswith(node.value, value_start)
    return value_start, (start, end), exact
