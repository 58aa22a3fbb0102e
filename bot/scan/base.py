"""What every extractor is: text in, located references out."""
from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath
from collections.abc import Mapping
from typing import Protocol

from bot.rules import Rule
from bot.scan.model import Found


class ExtractError(Exception):
    """The file cannot be read as its kind (not parseable): it is skipped with this reason."""


@dataclasses.dataclass(frozen=True)
class FileContext:
    """Where the file being read is, so an extractor can read files beside it."""

    root: Path
    path: str  # relative to root, POSIX separators
    # Texts that stand in for files on disk (a rewrite checks a file against the other
    # files' new texts before anything is written), by path relative to root.
    overlay: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def directory(self) -> PurePosixPath:
        return PurePosixPath(self.path).parent

    def read_text(self, relative: str) -> str | None:
        """Another file of the scanned tree (a path relative to root), or None when it is
        missing, unreadable, not UTF-8, or outside the root."""
        root = self.root.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            return None
        pending = self.overlay.get(target.relative_to(root).as_posix())
        if pending is not None:
            return pending
        if not target.is_file():
            return None
        try:
            return target.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None


@dataclasses.dataclass
class Extraction:
    found: list[Found] = dataclasses.field(default_factory=list)
    # Names of images the repository builds itself (Skaffold artifacts): neither they
    # nor their uses elsewhere in the tree are references.
    builds: list[str] = dataclasses.field(default_factory=list)


class Extractor(Protocol):
    def __call__(self, text: str, rule: Rule, context: FileContext) -> Extraction:
        ...
