"""What every extractor is: text in, located references out."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Protocol

from bot.rules import Rule
from bot.scan.files import Tree, inside
from bot.scan.model import Found

# Files an extractor reads beside the one it scans (Chart.yaml, kustomizations, manifests).
OTHER_FILE_LIMIT = 64 * 1024 * 1024


class ExtractError(Exception):
    """The file cannot be read as its kind (not parseable): it is skipped with this reason."""


@dataclasses.dataclass(frozen=True)
class FileContext:
    """Where the file being read is, so an extractor can read files beside it."""

    tree: Tree
    path: str  # relative to the tree's root, POSIX separators
    # Texts that stand in for the tree's files (a rewrite checks a file against the other
    # files' new texts before anything is written), by path relative to the root.
    overlay: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def directory(self) -> PurePosixPath:
        return PurePosixPath(self.path).parent

    def read_text(self, relative: str) -> str | None:
        """Another file of the scanned tree (a path relative to root), or None when it is
        missing, unreadable, not UTF-8, or outside the root."""
        path = inside(relative)
        if path is None:
            return None
        pending = self.overlay.get(path)
        if pending is not None:
            return pending
        return self.tree.read(path, OTHER_FILE_LIMIT, follow_links=True)[0]

    def is_file(self, relative: str) -> bool:
        path = inside(relative)
        return path is not None and (path in self.overlay or self.tree.is_file(path))


@dataclasses.dataclass
class Extraction:
    found: list[Found] = dataclasses.field(default_factory=list)
    # Names of images the repository builds itself (Skaffold artifacts): neither they
    # nor their uses elsewhere in the tree are references.
    builds: list[str] = dataclasses.field(default_factory=list)
    # Other files of the same kind the file names (`rule.names_files`), as written: relative to its folder.
    names_files: list[str] = dataclasses.field(default_factory=list)
    # Entries of `rule.folder_merges` that build what they name, by name: in the rule's other files of the
    # folder, the images of entries with these names are build outputs too.
    building: list[str] = dataclasses.field(default_factory=list)


class Extractor(Protocol):
    def __call__(self, text: str, rule: Rule, context: FileContext) -> Extraction:
        ...
