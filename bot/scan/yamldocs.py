"""YAML documents as composed nodes with exact character offsets.

The C loader (libyaml via ruamel.yaml.clib) is fast and keeps marks; its `index`
counts characters of the text it was given, CRLF as two. It strips a leading BOM,
so offsets are shifted back by one for a text that starts with one. Multi-document
files are split at document markers first, so a document that cannot hold a
reference (a text test) is never parsed: the corpus has 1-2 MB files of CRDs.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.scan.base import ExtractError

STR_TAG = "tag:yaml.org,2002:str"
BOM = "\ufeff"
# A document marker line: `---` or `...` at column 0, then space or end of line.
# YAML forbids such a line inside any scalar, so splitting here is always safe.
_MARKER_RE = re.compile(r"^(?:---|\.\.\.)(?=[ \t\r\n]|\Z)", re.MULTILINE)
_DIRECTIVE_RE = re.compile(r"^%", re.MULTILINE)


def _loader() -> YAML:
    try:
        return YAML(typ="safe", pure=False)
    except Exception:  # noqa: BLE001 - no C extension on this platform: the pure parser is correct, only slower
        return YAML(typ="safe", pure=True)


_YAML = _loader()


def _chunks(text: str) -> list[tuple[int, str]]:
    """(offset, text) for each document's region. Directives make splitting unsafe: one chunk."""
    if _DIRECTIVE_RE.search(text):
        return [(0, text)]
    starts = [0] + [m.start() for m in _MARKER_RE.finditer(text) if m.start() > 0]
    ends = starts[1:] + [len(text)]
    return [(s, text[s:e]) for s, e in zip(starts, ends)]


def _compose_all(text: str) -> list[Node]:
    try:
        return [n for n in _YAML.compose_all(text) if n is not None]
    except YAMLError as exc:
        raise ExtractError(f"not valid YAML: {_one_line(exc)}") from None
    except RecursionError:
        raise ExtractError("not parseable: YAML nested too deeply") from None


def _one_line(exc: YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return problem


def documents(text: str, guards: tuple[re.Pattern[str], ...] = ()) -> Iterator[tuple[int, Node]]:
    """(offset to add to node marks, root node) for each document whose text passes every guard."""
    body = text[1:] if text.startswith(BOM) else text
    shift = len(text) - len(body)
    chunks = _chunks(body)
    selected = [(o, c) for o, c in chunks if all(g.search(c) for g in guards)]
    if len(chunks) == 1 or not selected:
        for offset, chunk in selected:
            for node in _compose_all(chunk):
                yield offset + shift, node
        return
    try:
        parsed = [(offset, _compose_all(chunk)) for offset, chunk in selected]
    except ExtractError:
        # A marker-looking line the split misjudged: parse the whole text to be sure.
        for node in _compose_all(body):
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


def scalar_text(node: Node | None) -> str | None:
    """The string value of a plain or quoted string scalar, else None."""
    if isinstance(node, ScalarNode) and node.tag == STR_TAG:
        return node.value
    return None


def _after_properties(text: str, start: int, end: int) -> int:
    """A node's mark starts at its properties (`&anchor`, `!tag`) when it has any; the
    scalar itself starts after them. No scalar starts with `&` or `!` (both are indicators)."""
    while start < end and text[start] in "&!":
        while start < end and text[start] not in " \t\r\n":
            start += 1
        while start < end and text[start] in " \t\r\n":
            start += 1
    return start


def value_offset(node: ScalarNode, text: str, base: int) -> tuple[int, tuple[int, int], bool]:
    """Where a scalar's value text starts, the scalar's whole span, and whether the value
    stands in the file exactly as parsed (no escapes, no folding)."""
    start = _after_properties(text, base + node.start_mark.index, base + node.end_mark.index)
    end = base + node.end_mark.index
    style = node.style
    value_start = start + 1 if style in ('"', "'") else start
    value_end = end - 1 if style in ('"', "'") else end
    exact = (
        style not in ("|", ">")
        and value_end == value_start + len(node.value)
        and text.startswith(node.value, value_start)
    )
    return value_start, (start, end), exact


def is_collection(node: Any) -> bool:
    return isinstance(node, (MappingNode, SequenceNode))
