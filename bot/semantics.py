"""Are two YAML texts the same documents, but for the changes a rewrite planned?

The composed node trees are compared, not constructed data: files in real repositories
hold things a constructor refuses (duplicate keys, `{{ }}` templates that parse as
mappings used as keys) and are still worth checking. Only the documents whose text
changed are parsed, so big multi-document files stay cheap.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.scan.base import ExtractError
from bot.scan.yamldocs import compose_all, split_documents


class SemanticsChanged(Exception):
    """The documents differ in a way that was not planned; the message says where."""


Frozen = Any  # a scalar's text, or a sorted tuple of (key, value) pairs for a small mapping


@dataclasses.dataclass
class AllowedChanges:
    # (old scalar text, new scalar text or frozen mapping) pairs
    values: set[tuple[str, Frozen]] = dataclasses.field(default_factory=set)
    # (key, value) pairs a rewrite may add to a mapping
    added: set[tuple[str, str]] = dataclasses.field(default_factory=set)

    def allow(self, old: str, new: str | dict[str, str]) -> None:
        self.values.add((old, tuple(sorted(new.items())) if isinstance(new, dict) else new))

    def allow_added(self, key: str, value: str) -> None:
        self.added.add((key, value))

    def update(self, other: AllowedChanges) -> None:
        self.values |= other.values
        self.added |= other.added


def _frozen_mapping(node: MappingNode) -> Frozen | None:
    pairs = []
    for key, value in node.value:
        if not isinstance(key, ScalarNode) or not isinstance(value, ScalarNode):
            return None
        pairs.append((key.value, value.value))
    return tuple(sorted(pairs))


def _is_added(key: Node, value: Node, allowed: AllowedChanges) -> bool:
    return isinstance(key, ScalarNode) and isinstance(value, ScalarNode) and (key.value, value.value) in allowed.added


class _Comparison:
    def __init__(self, allowed: AllowedChanges) -> None:
        self.allowed = allowed
        self.seen: set[tuple[int, int]] = set()

    def compare(self, old: Node, new: Node, where: str) -> None:
        if (id(old), id(new)) in self.seen:  # aliases: each pair once
            return
        self.seen.add((id(old), id(new)))
        if not isinstance(old, ScalarNode) and old.tag != new.tag:  # scalars: a planned change may retag them
            raise SemanticsChanged(f"{where}: the tag {old.tag} became {new.tag}")
        if isinstance(old, ScalarNode) and isinstance(new, ScalarNode):
            self._scalars(old, new, where)
        elif isinstance(old, MappingNode) and isinstance(new, MappingNode):
            self._mappings(old, new, where)
        elif isinstance(old, SequenceNode) and isinstance(new, SequenceNode):
            if len(old.value) != len(new.value):
                raise SemanticsChanged(f"{where}: {len(old.value)} items became {len(new.value)}")
            for index, (a, b) in enumerate(zip(old.value, new.value)):
                self.compare(a, b, f"{where}[{index}]")
        elif isinstance(old, ScalarNode) and isinstance(new, MappingNode):
            if (old.value, _frozen_mapping(new)) not in self.allowed.values:
                raise SemanticsChanged(f"{where}: {old.value!r} became a mapping that was not planned")
        else:
            raise SemanticsChanged(f"{where}: a {_what(old)} became a {_what(new)}")

    def _scalars(self, old: ScalarNode, new: ScalarNode, where: str) -> None:
        if old.value == new.value and old.tag == new.tag:
            return
        if new.tag == old.tag and (old.value, new.value) in self.allowed.values:
            return
        raise SemanticsChanged(f"{where}: {old.value!r} became {new.value!r}")

    def _mappings(self, old: MappingNode, new: MappingNode, where: str) -> None:
        kept = [(k, v) for k, v in new.value if not _is_added(k, v, self.allowed) or _has_key(old, k)]
        if len(kept) != len(old.value):
            raise SemanticsChanged(f"{where}: {len(old.value)} keys became {len(kept)}")
        for (old_key, old_value), (new_key, new_value) in zip(old.value, kept):
            label = f"{where}.{old_key.value}" if isinstance(old_key, ScalarNode) else f"{where}.<key>"
            self.compare(old_key, new_key, label)
            self.compare(old_value, new_value, label)


def _has_key(mapping: MappingNode, key: Node) -> bool:
    return any(isinstance(k, ScalarNode) and k.value == getattr(key, "value", None) for k, _ in mapping.value)


def _what(node: Node) -> str:
    return {ScalarNode: "scalar", MappingNode: "mapping", SequenceNode: "list"}.get(type(node), type(node).__name__)


def _compose(text: str, which: str) -> list[Node]:
    try:
        return compose_all(text)
    except ExtractError as exc:
        raise SemanticsChanged(f"the {which} text: {exc}") from None


def _compare_texts(old_text: str, new_text: str, allowed: AllowedChanges, where: str) -> None:
    old_docs = _compose(old_text, "original")
    new_docs = _compose(new_text, "rewritten")
    if len(old_docs) != len(new_docs):
        raise SemanticsChanged(f"{len(old_docs)} documents became {len(new_docs)}")
    comparison = _Comparison(allowed)
    for index, (old, new) in enumerate(zip(old_docs, new_docs)):
        comparison.compare(old, new, where if len(old_docs) == 1 else f"{where}, document {index + 1}")


def check_same_data(old_text: str, new_text: str, allowed: AllowedChanges) -> None:
    """Raise SemanticsChanged unless the texts hold the same documents but for `allowed` changes."""
    old_chunks = split_documents(old_text)
    new_chunks = split_documents(new_text)
    if len(old_chunks) != len(new_chunks):
        _compare_texts(old_text, new_text, allowed, "the file")
        return
    for index, ((_, old), (_, new)) in enumerate(zip(old_chunks, new_chunks)):
        if old != new:
            _compare_texts(old, new, allowed, f"document {index + 1}" if len(old_chunks) > 1 else "the file")


def _replaced(text: str, allowed: AllowedChanges) -> str:
    """Every planned text replaced in one left-to-right pass (so `alpine` never matches
    inside an already replaced `golang:1.24-alpine`)."""
    pairs = {old: new for old, new in allowed.values if isinstance(new, str)}
    if not pairs:
        return text
    pattern = re.compile("|".join(re.escape(old) for old in sorted(pairs, key=len, reverse=True)))
    return pattern.sub(lambda m: pairs[m.group(0)], text)


def check_same_instructions(old_text: str, new_text: str, allowed: AllowedChanges) -> None:
    """Dockerfiles: the same directives, instructions and heredoc bodies, where each changed
    word differs only by the planned reference texts (word by word: `FROM python AS node` keeps
    its stage name when `node` moves elsewhere in the file)."""
    from bot.scan.dockerfile import iter_words, read_dockerfile

    try:
        old, new = read_dockerfile(old_text), read_dockerfile(new_text)
    except ExtractError as exc:
        raise SemanticsChanged(str(exc)) from None
    if old.heredoc_bodies != new.heredoc_bodies or old.escape != new.escape:
        raise SemanticsChanged("a heredoc body or the escape character changed")
    pairs = [(f"# {d.name}={d.value}", f"# {e.name}={e.value}") for d, e in zip(old.directives, new.directives)]
    pairs += [(a.text, b.text) for a, b in zip(old.instructions, new.instructions)]
    if len(old.directives) != len(new.directives) or len(old.instructions) != len(new.instructions):
        raise SemanticsChanged(f"{len(old.instructions)} instructions became {len(new.instructions)}")
    for before, after in pairs:
        if before == after:
            continue
        old_words = [before[start:end] for start, end in iter_words(before, 0, old.escape)]
        new_words = [after[start:end] for start, end in iter_words(after, 0, old.escape)]
        if len(old_words) != len(new_words) or any(
            a != b and _replaced(a, allowed) != b for a, b in zip(old_words, new_words)
        ):
            raise SemanticsChanged(f"{before!r} became {after!r}")
