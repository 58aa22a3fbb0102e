"""Which files a scan reads, and reading them whole or saying why not: from a folder on disk, or
from a commit's objects in a git repository (a sweep's clone has no working tree to write)."""
from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from bot.errors import UsageError
from bot.gitcmd import GitError, git_output, run_git

SKIPPED_DIRS = frozenset({".git", "node_modules", "vendor", "third_party"})
# git's modes of a regular file (plain, executable) and of a symlink.
_REGULAR = ("100644", "100755")
_SYMLINK = "120000"


def skipped_folder(path: str) -> str | None:
    """The outermost folder of `path` (relative, POSIX) that scans never enter (`lib/vendor`), or None."""
    folders = path.split("/")[:-1]
    for depth, name in enumerate(folders, 1):
        if name in SKIPPED_DIRS:
            return "/".join(folders[:depth])
    return None


def _in_skipped_dir(path: str) -> bool:
    return skipped_folder(path) is not None


def _git_files(root: Path, untracked: bool) -> tuple[list[str], set[str]] | None:
    """Files git tracks below root (plus untracked, not ignored ones), sorted, and which of them are
    symlinks; None outside a checkout."""
    try:
        inside = run_git(root, ["rev-parse", "--is-inside-work-tree"])
    except GitError:
        return None
    if inside != "true":
        return None
    files, links = set(), set()
    for record in _git(root, ["ls-files", "-z", "--cached", "--stage"]).decode("utf-8", "surrogateescape").split("\0"):
        if record:
            meta, path = record.split("\t", 1)
            files.add(path)
            if meta.startswith(_SYMLINK + " "):
                links.add(path)
    if untracked:  # git records no mode for these: the few there are are asked
        listed = _git(root, ["ls-files", "-z", "--others", "--exclude-standard"]).decode("utf-8", "surrogateescape")
        others = [path for path in listed.split("\0") if path]
        files.update(others)
        links.update(path for path in others if os.path.islink(root / path))
    return sorted(files), links


def _walked_files(root: Path) -> tuple[list[str], set[str]]:
    """Every file below root, sorted, and the symlinks to folders among them."""
    found, links = [], set()
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
        rel = Path(directory).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        found += [prefix + name for name in filenames]
        # A symlink to a folder is not entered: like git, the walk lists it as a file.
        links |= {prefix + name for name in dirnames if os.path.islink(os.path.join(directory, name))}
    return sorted([*found, *links]), links


def _listed(root: Path, untracked: bool) -> tuple[list[str], set[str]]:
    """The files to consider (relative POSIX paths, sorted), and those of them that are symlinks (of a
    folder that is no checkout, only those to folders: the walk lists the others as the files they are)."""
    files, links = _git_files(root, untracked) or _walked_files(root)
    return [f for f in files if not _in_skipped_dir(f)], links


def list_files(root: Path, untracked: bool = False) -> list[str]:
    """Relative POSIX paths of the files to consider, sorted."""
    return _listed(root, untracked)[0]


def read_text(root: Path, path: str, max_size: int, follow_links: bool = False) -> tuple[str | None, str | None]:
    """(text, None) for a readable UTF-8 text file; (None, reason) otherwise; (None, None)
    for a path that is gone or is not a regular file (nothing to report). A symlink to a file
    of the tree is read only with `follow_links`: as itself it is its target's second name."""
    full = root / path
    try:
        if full.is_symlink():
            if not full.resolve().is_relative_to(root.resolve()):
                return None, "symlink leads outside the scanned root"
            target = link_target(root, path)
            if not follow_links and target is not None:
                return None, symlink_reason(target)
        if not full.is_file():
            return None, None
        size = full.stat().st_size
        if size > max_size:
            return None, f"larger than {_human_size(max_size)}"
        data = full.read_bytes()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "unreadable: symlink loop"
        return None, f"unreadable: {exc.strerror or exc}"
    except RuntimeError:  # a symlink loop, on Python versions that raise this for it
        return None, "unreadable: symlink loop"
    return _decode(data)


def link_target(root: Path, path: str) -> str | None:
    """The file below `root` (relative, POSIX) that the symlink `path` leads to; None when `path` is
    not a symlink, or leads outside the root, to no file, or round a loop."""
    return _symlink_target(root, path, Path.is_file)


def folder_link_target(root: Path, path: str) -> str | None:
    """The folder below `root` (relative, POSIX) that the symlink `path` leads to; None when `path` is not a
    symlink, or leads outside the root, to no folder, or to a folder holding the link (its files would be
    listed again under the link, without end)."""
    folder = _symlink_target(root, path, Path.is_dir)
    return None if folder is None else _not_holding(path, folder)


def _symlink_target(root: Path, path: str, is_kind: Callable[[Path], bool]) -> str | None:
    full = root / path
    try:
        if not full.is_symlink():
            return None
        target, base = full.resolve(), root.resolve()
        if not target.is_relative_to(base) or not is_kind(target):
            return None
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError on Python versions that raise it for one)
        return None
    return target.relative_to(base).as_posix()


def _not_holding(link: str, folder: str) -> str | None:
    return None if folder == "." or link == folder or link.startswith(folder + "/") else folder


def symlink_reason(target: str) -> str:
    # Its references are its target's: read twice, they would be reported (and rewritten) twice,
    # and a rewrite would replace the link with a copy.
    folder = skipped_folder(target)
    if folder is not None:  # the target is not read either
        return f"symlink to {target}, in {folder}/, a folder scans always skip"
    return f"symlink to {target}, read under that name"


def _human_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def inside(path: str) -> str | None:
    """`path` (relative, POSIX) normalised, or None when it leaves the tree or is absolute."""
    if posixpath.isabs(path):
        return None
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        return None
    return normal


class Tree(Protocol):
    """The files a scan reads. `root` is where they are (or would be) on disk."""

    root: Path

    def paths(self) -> list[str]:
        """Relative POSIX paths of the files to consider, sorted."""

    def read(self, path: str, max_size: int, follow_links: bool = False) -> tuple[str | None, str | None]:
        """As `read_text`: (text, None), (None, reason) or (None, None) when there is no such file."""

    def is_file(self, path: str) -> bool:
        ...

    def link_target(self, path: str) -> str | None:
        """As the function `link_target`: the file a symlink leads to, or None."""

    def folder_link_target(self, path: str) -> str | None:
        """As the function `folder_link_target`: the folder a symlink leads to, or None."""

    def prefetch(self, paths: Iterable[str]) -> None:
        """A hint: these files are about to be read."""


class DiskTree:
    """A folder: git's view of it when it is a checkout (tracked files, and with `untracked` the
    others not ignored), else every file below it."""

    def __init__(self, root: Path, untracked: bool = False) -> None:
        self.root = root
        self.untracked = untracked
        self._links: set[str] | None = None  # of `_listed`, once the files are listed

    def paths(self) -> list[str]:
        files, self._links = _listed(self.root, self.untracked)
        return files

    def read(self, path: str, max_size: int, follow_links: bool = False) -> tuple[str | None, str | None]:
        return read_text(self.root, path, max_size, follow_links)

    def is_file(self, path: str) -> bool:
        return (self.root / path).is_file()

    def link_target(self, path: str) -> str | None:
        return link_target(self.root, path)

    def folder_link_target(self, path: str) -> str | None:
        if self._links is not None and path not in self._links:
            return None  # the listing says it is no symlink: the file system need not be asked, file by file
        return folder_link_target(self.root, path)

    def prefetch(self, paths: Iterable[str]) -> None:
        pass


_MAX_LINKS = 40  # as the kernel's limit on symlinks followed in one lookup


class GitTree:
    """A commit's files read from the repository's objects, so nothing is checked out: for a
    fresh clone the working tree is most of the cost (every file written, then deleted).
    Symlinks are followed inside the tree; submodules are not files."""

    def __init__(self, root: Path, commit: str) -> None:
        self.root = root
        self.commit = commit
        self._entries = self._list(root, commit)  # path -> (mode, object, size)
        self._blobs: dict[str, bytes] = {}
        self._folders: set[str] | None = None  # every folder holding a file, once asked

    @staticmethod
    def _list(root: Path, commit: str) -> dict[str, tuple[str, str, int]]:
        listed = _git(root, ["ls-tree", "-r", "-z", "--long", commit])
        entries = {}
        for record in listed.decode("utf-8", "surrogateescape").split("\0"):
            if not record:
                continue
            meta, path = record.split("\t", 1)
            mode, kind, obj, size = meta.split()
            if kind == "blob":
                entries[path] = (mode, obj, int(size))
        return entries

    def paths(self) -> list[str]:
        return sorted(p for p in self._entries if not _in_skipped_dir(p))

    def files_below(self, paths: Iterable[str]) -> list[str]:
        """The tree's files that are one of `paths` or inside one of them (as folders)."""
        wanted = [p.rstrip("/") for p in paths]
        return sorted(f for f in self._entries if any(f == w or f.startswith(w + "/") for w in wanted))

    def mode(self, path: str) -> str | None:
        """The file's mode (100644, 100755 executable, 120000 symlink); None when there is no such file."""
        entry = self._entries.get(path)
        return None if entry is None else entry[0]

    def write_files(self, paths: Iterable[str]) -> None:
        """Write these files of the commit below `root`, as a checkout would (links as links)."""
        paths = list(paths)
        self.prefetch(paths)
        for path in paths:
            mode, obj, _size = self._entries[path]
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            if mode == _SYMLINK:
                os.symlink(os.fsdecode(self._blob(obj)), target)
            else:
                target.write_bytes(self._blob(obj))
                target.chmod(0o755 if mode == "100755" else 0o644)

    def prefetch(self, paths: Iterable[str]) -> None:
        wanted = {self._entries[p][1] for p in paths if p in self._entries} - self._blobs.keys()
        if wanted:
            self._blobs.update(_cat_blobs(self.root, sorted(wanted)))

    def _blob(self, obj: str) -> bytes:
        if obj not in self._blobs:
            self._blobs.update(_cat_blobs(self.root, [obj]))
        return self._blobs[obj]

    def _resolve(self, path: str) -> tuple[str | None, str | None]:
        """(the regular file `path` leads to, None), or (None, why not) for a symlink going
        nowhere readable; (None, None) when there is no such file."""
        for _ in range(_MAX_LINKS):
            entry = self._entries.get(path)
            if entry is None:
                return None, None
            if entry[0] in _REGULAR:
                return path, None
            if entry[0] != _SYMLINK:
                return None, None
            target = self._link_leads_to(path, entry[1])
            if target is None:
                return None, "symlink leads outside the scanned root"
            path = target
        return None, "unreadable: symlink loop"

    def is_file(self, path: str) -> bool:
        normal = inside(path)
        return normal is not None and self._resolve(normal)[0] is not None

    def link_target(self, path: str) -> str | None:
        found, _why_not = self._resolve(path)
        return None if found == path else found

    def folder_link_target(self, path: str) -> str | None:
        link = path
        for _ in range(_MAX_LINKS):
            entry = self._entries.get(path)
            if entry is None or entry[0] != _SYMLINK:
                return None
            target = self._link_leads_to(path, entry[1])
            if target is None:
                return None
            if target in self._folders_holding_files():
                return _not_holding(link, target)
            path = target
        return None

    def _link_leads_to(self, path: str, obj: str) -> str | None:
        """The path the symlink `path`, held in blob `obj`, names; None when it leaves the tree."""
        return inside(posixpath.join(posixpath.dirname(path), self._blob(obj).decode("utf-8", "replace")))

    def _folders_holding_files(self) -> set[str]:
        if self._folders is None:
            self._folders = {path[:at] for path in self._entries for at in _slashes(path)}
        return self._folders

    def read(self, path: str, max_size: int, follow_links: bool = False) -> tuple[str | None, str | None]:
        found, why_not = self._resolve(path)
        if found is None:
            return None, why_not
        if found != path and not follow_links:
            return None, symlink_reason(found)
        _mode, obj, size = self._entries[found]
        if size > max_size:
            return None, f"larger than {_human_size(max_size)}"
        return _decode(self._blob(obj))


def _slashes(path: str) -> Iterator[int]:
    at = path.find("/")
    while at != -1:
        yield at
        at = path.find("/", at + 1)


def _decode(data: bytes) -> tuple[str | None, str | None]:
    if b"\0" in data:
        return None, "binary file"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"


def _git(root: Path, args: list[str], stdin: bytes | None = None) -> bytes:
    try:
        return git_output(root, ["-c", "core.quotepath=off", *args], stdin=stdin)
    except GitError as exc:
        raise UsageError(f"{root}: {exc}") from None


def _cat_blobs(root: Path, objects: list[str]) -> dict[str, bytes]:
    """Blobs by object name, all through one `git cat-file --batch`."""
    out = _git(root, ["cat-file", "--batch"], stdin="".join(f"{o}\n" for o in objects).encode())
    blobs, at = {}, 0
    for obj in objects:
        header_end = out.index(b"\n", at)
        header = out[at:header_end].split()
        if len(header) != 3:
            raise UsageError(f"{root}: git object {obj} is not in the repository ({b' '.join(header).decode()})")
        name, _kind, size = header
        start = header_end + 1
        blobs[name.decode()] = out[start:start + int(size)]
        at = start + int(size) + 1  # the newline after each object
    return blobs
