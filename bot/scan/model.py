"""Plain data the scan stage produces."""
from __future__ import annotations

import dataclasses
from typing import Any

THIRD_PARTY = "third-party"
INTERNAL = "internal"
UNRESOLVED = "unresolved"


@dataclasses.dataclass(frozen=True)
class Found:
    """One image reference an extractor located in a file's decoded text.

    `offset` is the character offset of the reference text's first character (inside
    quotes, after `docker://`, after `--from=`); `span` is the region a rewrite replaces
    (by default the raw text itself). `resolve_as` is the text to parse when `raw` holds
    a variable the extractor could resolve (an ARG default). `unresolved` says why the
    reference cannot be resolved at all; `note` is information for a human.
    `edit` carries extractor-specific facts the rewrite needs (quoting, split keys).
    `entries` names the entries of the rule's `folder_merges` holding it: another file of the
    folder that builds one of them makes it a build output.
    """

    offset: int
    raw: str
    span: tuple[int, int] | None = None
    resolve_as: str | None = None
    unresolved: str | None = None
    note: str | None = None
    edit: dict[str, Any] = dataclasses.field(default_factory=dict)
    entries: tuple[str, ...] = ()

    @property
    def region(self) -> tuple[int, int]:
        return self.span if self.span is not None else (self.offset, self.offset + len(self.raw))


@dataclasses.dataclass(frozen=True)
class Reference:
    path: str
    line: int
    column: int
    kind: str
    raw: str
    image: str | None
    status: str
    reason: str | None
    found: Found = dataclasses.field(compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "kind": self.kind,
            "raw": self.raw,
            "image": self.image,
            "status": self.status,
            "reason": self.reason,
        }


@dataclasses.dataclass(frozen=True)
class Skipped:
    path: str
    reason: str
    # A symlink's: the file or folder of the tree whose references stand for it, read and reported there.
    read_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason}


@dataclasses.dataclass
class ScanResult:
    root: str
    references: list[Reference]
    ignored: int
    skipped: list[Skipped]
    # Files read because others lead to them (a symlink's target, the files compose `include:` and `extends:`
    # name), by the files that lead there: a change to those can change what the others bring in.
    leads_to: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "references": [ref.to_json() for ref in self.references],
            "ignored": self.ignored,
            "skipped": [s.to_json() for s in self.skipped],
        }
