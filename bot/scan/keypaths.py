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
from collections.abc import Iterator, Sequence
from functools import lru_cache

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.scan.yamldocs import effective_get, is_merge_key, merged_mappings

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
        self.known: dict[frozenset[State], frozenset[State]] = {}
        self.start = self.closure(frozenset((p, 0) for p in range(len(patterns))))

    def closure(self, states: frozenset[State]) -> frozenset[State]:
        out = set(states)
        todo = list(states)
        while todo:
            p, i = todo.pop()
            if i < len(self.patterns[p]) and self.patterns[p][i] == DEEP and (p, i + 1) not in out:
                out.add((p, i + 1))
                todo.append((p, i + 1))
        # One object for equal sets, so that the memos find a set by identity rather than by comparing it.
        states = frozenset(out)
        return self.known.setdefault(states, states)

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


NOWHERE: frozenset[State] = frozenset()  # the states of a place no path reaches
MERGE_KEY = "<<"

# Where a document holds a node, as `walk` reaches it:
#   node, states: the node, and the states of the paths that reach it there;
#   parent, key: the mapping holding it as a value and its key there (None and None for the root,
#     a key and a list item);
#   holder: the mapping it is a value of once merge keys are applied (for a key a mapping merged in
#     brings, the mapping with the merge key);
#   merged_into: for a mapping merged in along key paths, the mapping its keys go to;
#   item_of: for a list item, the list and the item's index in it;
#   via: for the node a GitLab `!reference` names, standing where the reference is written, and
#     everything in it there, the reference (the innermost, for references in what one names).
Place = tuple[Node, frozenset[State], MappingNode | None, str | None, MappingNode | None, MappingNode | None,
              tuple[SequenceNode, int] | None, SequenceNode | None]


def is_reference(node: Node) -> bool:
    return isinstance(node, SequenceNode) and node.tag == REFERENCE_TAG


def referenced(root: Node, node: Node) -> Node | None:
    """The node a GitLab `!reference [.job, key, ...]` names in the document (merge keys applied; a
    `!reference` there is followed in turn), or None when the document does not hold it (an
    included file may)."""
    seen: set[int] = set()
    while is_reference(node):
        if id(node) in seen or not node.value:
            return None
        seen.add(id(node))
        target: Node | None = root
        for key in node.value:
            if target is None or not isinstance(key, ScalarNode):
                return None
            target = effective_get(target, str(key.value))
        if target is None:
            return None
        node = target
    return node


def walk(root: Node, paths: Sequence[str] | None = None, *, everywhere: bool = True,
         follow_references: bool = False) -> Iterator[Place]:
    """Every place the document holds a node, depth first in document order. A node's children are
    read once for each set of states (and mapping merging it) that reaches it, so aliases cost
    nothing. `everywhere`: keys and the values no path reaches are walked too (with no states),
    not only where the paths lead; without it, a scalar is reached only where a path ends (the
    documents' scalars are most of their nodes, and there is nothing under them).

    Along key paths, a mapping merged in (`<<: *base`) stands where the mapping merging it stands
    (same parent, key and holder), the keys it brings count for that mapping, and a GitLab
    `!reference [.job, key]` list (it holds key names) is not entered: with `follow_references`, the
    node it names in the document stands where it is written instead, as an alias would (`via` says
    which reference, there and in everything under it). It is read once the document as written is:
    a node also written where the same paths reach it is read there, as written. A walk without
    paths takes the document as written: a mapping merged in is held under `<<` by the mapping
    merging it, and every list is read.

    One stack rather than recursion: documents are deep and wide, and a generator per node would
    cost more than the walk itself."""
    along_paths = paths is not None
    automaton = _automaton(tuple(paths or ()))
    read: set[tuple[int, frozenset[State], int]] = set()
    stack: list[Place] = [(root, automaton.start, None, None, None, None, None, None)]
    while stack:
        place = stack.pop()
        yield place
        node, states, parent, key, holder, merged_into, item_of, via = place
        # (is_reference, inlined: this runs for every node of every document scanned)
        if along_paths and isinstance(node, SequenceNode) and node.tag == REFERENCE_TAG:
            # Each place of the reference (an alias may repeat it) puts the node it names there,
            # at the bottom of the stack: read after the document as written.
            target = referenced(root, node) if follow_references else None
            if target is not None:
                stack.insert(0, (target, states, parent, key, holder, merged_into, item_of, node))
            continue
        seen = (id(node), states, id(merged_into))
        if seen in read:
            continue
        read.add(seen)
        if isinstance(node, MappingNode):
            owner = node if merged_into is None else merged_into  # the mapping its keys count for
            children: list[Place] = []
            for key_node, value in node.value:
                if everywhere:
                    children.append((key_node, NOWHERE, None, None, None, None, None, via))
                if is_merge_key(key_node):
                    merged = merged_mappings(value)
                    if along_paths:
                        children += [(mapping, states, parent, key, holder, owner, None, via) for mapping in merged]
                    else:
                        children += [(mapping, states, node, MERGE_KEY, node, None, None, via) for mapping in merged]
                elif isinstance(key_node, ScalarNode):
                    name = str(key_node.value)
                    nxt = automaton.step(states, name) if states else NOWHERE
                    if everywhere or (nxt and (not isinstance(value, ScalarNode) or automaton.accepting(nxt))):
                        children.append((value, nxt, node, name, owner, None, None, via))
                elif everywhere:
                    children.append((value, NOWHERE, node, None, owner, None, None, via))
            stack += reversed(children)
        elif isinstance(node, SequenceNode):
            nxt = automaton.step(states, None) if states else NOWHERE
            if nxt or everywhere:
                scalars = everywhere or bool(automaton.accepting(nxt))
                stack += reversed([(item, nxt, None, None, None, None, (node, index), via)
                                   for index, item in enumerate(node.value) if scalars or not isinstance(item, ScalarNode)])


def _hits(root: Node, paths: list[str], skip: frozenset[int]) -> list[Hit]:
    automaton = _automaton(tuple(paths))
    reported: set[int] = set()
    hits = []
    for node, states, parent, _, _, _, _, _ in walk(root, paths, everywhere=False):
        accepted = automaton.accepting(states)
        if accepted and accepted[0] not in skip and id(node) not in reported:
            reported.add(id(node))
            hits.append(Hit(accepted[0], node, parent))
    return hits


def select(root: Node, paths: list[str], skip: frozenset[int] = frozenset()) -> Iterator[Hit]:
    """Every node any of `paths` reaches, in document order; `Hit.pattern` indexes `paths`.
    Where the first path that reaches a node is one of `skip`, the node is not reported there
    (an exception such as `variables.**`), but an alias of it elsewhere still may be."""
    yield from _hits(root, paths, skip)


def keyed(root: Node, paths: Sequence[str]) -> Iterator[tuple[int, str | None, Node]]:
    """Each place one of `paths` reaches a node, GitLab `!reference`s followed: the first of them that
    reaches it there (an index into `paths`), the key it is held under there (None for a list item),
    and the node."""
    automaton = _automaton(tuple(paths))
    for node, states, _, key, _, _, _, _ in walk(root, paths, everywhere=False, follow_references=True):
        accepted = automaton.accepting(states)
        if accepted:
            yield accepted[0], key, node


@dataclasses.dataclass(frozen=True)
class Use:
    """One place a document holds a node: the paths that reach it there (indexes into the
    paths, ascending; none for a key or a value no path leads to), the mapping that holds it as
    a value there, if any (for a key a merge key brings in: the mapping with the merge key),
    for a list item, the list and the item's index in it, for a node a GitLab `!reference`
    names, or one in it, the reference it stands there through, and the key it is held under there."""

    patterns: tuple[int, ...]
    parent: MappingNode | None
    item_of: tuple[SequenceNode, int] | None = None
    via: SequenceNode | None = None
    key: str | None = None

    def same_place(self, other: Use) -> bool:
        # Nodes compare as themselves: the same list and index is the same item.
        return (self.patterns == other.patterns and self.parent is other.parent and self.item_of == other.item_of
                and self.via is other.via and self.key == other.key)


def uses(root: Node, paths: list[str], watched: set[int]) -> dict[int, list[Use]]:
    """Every place the document holds each of the `watched` nodes (by id), keys included, in
    document order: first where the node is written (at its anchor), then each alias of it,
    and each mapping that merges the mapping holding it (`<<: *base`); last, each GitLab
    `!reference` naming it, or naming a node holding it (a reference may come before what it names)."""
    automaton = _automaton(tuple(paths))
    found: dict[int, list[Use]] = {}
    for node, states, _, key, holder, _, item_of, via in walk(root, paths, follow_references=True):
        if id(node) in watched:
            places = found.setdefault(id(node), [])
            use = Use(tuple(automaton.accepting(states)), holder, item_of, via, key)
            if not any(place.same_place(use) for place in places):
                places.append(use)
    return found
