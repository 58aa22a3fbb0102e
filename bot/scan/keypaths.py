"""Key paths over composed YAML nodes: `jobs.*.services.*.image`, `**.containers[].image`.

Segments: a key name (`\\.` a dot in it); `*` any one key; `name*` any key starting with
`name`; `name[]` / `*[]` a key then each item of the list under it; `**` any depth (zero or
more keys or list items). A path selects the nodes it reaches; the walk visits each node
once for each set of paths that reaches it, so an aliased node is reported once (at its anchor,
unless the paths that reach it there are excluded), and alias bombs cost nothing.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from functools import lru_cache

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.scan.yamldocs import is_merge_key, merged_mappings

ANY_KEY = "*"
DEEP = "**"
ITEM = "[]"
REFERENCE_TAG = "!reference"
_SEPARATOR_RE = re.compile(r"(?<!\\)\.")  # `\.` is a dot inside a key name


@lru_cache(maxsize=256)
def compile_path(path: str) -> tuple[str, ...]:
    segments: list[str] = []
    for part in _SEPARATOR_RE.split(path):
        part = part.replace("\\.", ".")
        if part.endswith(ITEM):
            segments += [part[: -len(ITEM)], ITEM]
        else:
            segments.append(part)
    return tuple(segments)


State = tuple[int, int]  # (pattern index, position in its segments)


@dataclasses.dataclass(frozen=True)
class Hit:
    pattern: int
    node: Node
    parent: MappingNode | None  # the mapping holding the hit as a value, if any


class _Automaton:
    """The key paths as a small NFA; steps are memoised, since documents repeat shapes."""

    def __init__(self, patterns: tuple[tuple[str, ...], ...]) -> None:
        self.patterns = patterns
        self.steps: dict[tuple[frozenset[State], str | None], frozenset[State]] = {}
        self.accepted: dict[frozenset[State], list[int]] = {}
        self.start = self.closure(frozenset((p, 0) for p in range(len(patterns))))

    def closure(self, states: frozenset[State]) -> frozenset[State]:
        out = set(states)
        todo = list(states)
        while todo:
            p, i = todo.pop()
            if i < len(self.patterns[p]) and self.patterns[p][i] == DEEP and (p, i + 1) not in out:
                out.add((p, i + 1))
                todo.append((p, i + 1))
        return frozenset(out)

    def step(self, states: frozenset[State], key: str | None) -> frozenset[State]:
        """Advance over one mapping key (`key`) or one list item (`key` None)."""
        cached = self.steps.get((states, key))
        if cached is None:
            cached = self.steps[(states, key)] = self._step(states, key)
        return cached

    def _step(self, states: frozenset[State], key: str | None) -> frozenset[State]:
        nxt = set()
        for p, i in states:
            segments = self.patterns[p]
            if i >= len(segments):
                continue
            segment = segments[i]
            if segment == DEEP:
                nxt.add((p, i))
            elif key is None:
                if segment == ITEM:
                    nxt.add((p, i + 1))
            elif segment == ANY_KEY or segment == key or (segment[-1] == "*" and key.startswith(segment[:-1])):
                nxt.add((p, i + 1))
        return self.closure(frozenset(nxt))

    def accepting(self, states: frozenset[State]) -> list[int]:
        cached = self.accepted.get(states)
        if cached is None:
            cached = self.accepted[states] = sorted(p for p, i in states if i == len(self.patterns[p]))
        return cached


@lru_cache(maxsize=64)
def _automaton(paths: tuple[str, ...]) -> _Automaton:
    return _Automaton(tuple(compile_path(p) for p in paths))


def _is_walked_list(node: Node) -> bool:
    """A list whose items may hold values; a GitLab `!reference [.job, key]` holds key names."""
    return isinstance(node, SequenceNode) and node.tag != REFERENCE_TAG


def _hits(automaton: _Automaton, root: Node, skip: frozenset[int]) -> list[Hit]:
    """Depth first, in document order; a stack rather than recursion: documents are deep
    and wide, and a generator per node costs more than the walk itself."""
    visited: set[tuple[int, frozenset[State]]] = set()
    reported: set[int] = set()
    hits = []
    stack: list[tuple[Node, frozenset[State], MappingNode | None]] = [(root, automaton.start, None)]
    while stack:
        node, states, parent = stack.pop()
        if (id(node), states) in visited:
            continue
        visited.add((id(node), states))
        accepted = automaton.accepting(states)
        if accepted and accepted[0] not in skip and id(node) not in reported:
            reported.add(id(node))
            hits.append(Hit(accepted[0], node, parent))
        children: list[tuple[Node, frozenset[State], MappingNode | None]] = []
        if isinstance(node, MappingNode):
            for key_node, value in node.value:
                if not isinstance(key_node, ScalarNode):
                    continue
                if is_merge_key(key_node):
                    children += [(merged, states, parent) for merged in merged_mappings(value)]
                    continue
                nxt = automaton.step(states, str(key_node.value))
                if nxt:
                    children.append((value, nxt, node))
        elif _is_walked_list(node):
            nxt = automaton.step(states, None)
            if nxt:
                children += [(item, nxt, None) for item in node.value]
        stack += reversed(children)
    return hits


def select(root: Node, paths: list[str], skip: frozenset[int] = frozenset()) -> Iterator[Hit]:
    """Every node any of `paths` reaches, in document order; `Hit.pattern` indexes `paths`.
    Where the first path that reaches a node is one of `skip`, the node is not reported there
    (an exception such as `variables.**`), but an alias of it elsewhere still may be."""
    yield from _hits(_automaton(tuple(paths)), root, skip)


@dataclasses.dataclass(frozen=True)
class Use:
    """One place a document holds a node: the paths that reach it there (indexes into the
    paths, ascending; none for a key or a value no path leads to), the mapping that holds it as
    a value there, if any (for a key a merge key brings in: the mapping with the merge key), and
    for a list item, the list and the item's index in it."""

    patterns: tuple[int, ...]
    parent: MappingNode | None
    item_of: tuple[SequenceNode, int] | None = None

    def same_place(self, other: Use) -> bool:
        # Nodes compare as themselves: the same list and index is the same item.
        return self.patterns == other.patterns and self.parent is other.parent and self.item_of == other.item_of


# What the walk of `uses` visits: a node, the automaton states there, the mapping holding it as a
# value, the mapping a merged mapping's keys count for, and the list and index of an item.
_Visit = tuple[Node, frozenset[State], MappingNode | None, MappingNode | None, tuple[SequenceNode, int] | None]


def uses(root: Node, paths: list[str], watched: set[int]) -> dict[int, list[Use]]:
    """Every place the document holds each of the `watched` nodes (by id), keys included, in
    document order: first where the node is written (at its anchor), then each alias of it,
    and each mapping that merges the mapping holding it (`<<: *base`)."""
    automaton = _automaton(tuple(paths))
    visited: set[tuple[int, frozenset[State], int]] = set()
    found: dict[int, list[Use]] = {}
    stack: list[_Visit] = [(root, automaton.start, None, None, None)]
    while stack:
        node, states, parent, merged_into, item_of = stack.pop()
        if id(node) in watched:
            places = found.setdefault(id(node), [])
            use = Use(tuple(automaton.accepting(states)), parent, item_of)
            if not any(place.same_place(use) for place in places):
                places.append(use)
        if (id(node), states, id(merged_into)) in visited:
            continue
        visited.add((id(node), states, id(merged_into)))
        stack += reversed(_children(automaton, node, states, parent, merged_into))
    return found


def _children(automaton: _Automaton, node: Node, states: frozenset[State], parent: MappingNode | None,
              merged_into: MappingNode | None) -> list[_Visit]:
    children: list[_Visit] = []
    if isinstance(node, MappingNode):
        # The keys a merge key brings in are held by the mapping with the merge key.
        holder = node if merged_into is None else merged_into
        for key_node, value in node.value:
            children.append((key_node, frozenset(), None, None, None))
            if is_merge_key(key_node):
                children += [(merged, states, parent, holder, None) for merged in merged_mappings(value)]
            elif isinstance(key_node, ScalarNode) and states:
                children.append((value, automaton.step(states, str(key_node.value)), holder, None, None))
            else:
                children.append((value, frozenset(), holder, None, None))
    elif isinstance(node, SequenceNode) and _is_walked_list(node):
        nxt = automaton.step(states, None) if states else frozenset()
        children += [(item, nxt, None, None, (node, index)) for index, item in enumerate(node.value)]
    return children
