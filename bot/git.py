"""Git for the bot's branch: a clone or a temporary worktree to build it in, the commit, the push.

The user's own checkout is never switched or written to: a local repository gets a temporary
`git worktree` at the base commit (a dry run, a temporary folder that only reads the repository).
A token is never put in a URL or in `.git/config`: it reaches git for one command at a time through
`GIT_CONFIG_*` environment variables, and is scrubbed from any error message.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from bot.errors import UsageError
from bot.gitcmd import GitError, basic_credential, run_git
from bot.registry import Secret
from bot.scan.files import GitTree

log = logging.getLogger("rehome")

DEFAULT_BRANCH = "rehome/mirror-images"
NO_SHA = "0" * 40
NO_COMMITS = "no commits yet; nothing to scan"


@dataclasses.dataclass(frozen=True)
class Identity:
    name: str
    email: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        match = re.fullmatch(r"\s*([^<>]+?)\s*<([^<>]+)>\s*", text)
        if match is None:
            raise UsageError(f"author {text!r} must look like 'Name <email>'")
        return cls(match.group(1), match.group(2))

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def environment(self) -> dict[str, str]:
        return {"GIT_AUTHOR_NAME": self.name, "GIT_AUTHOR_EMAIL": self.email,
                "GIT_COMMITTER_NAME": self.name, "GIT_COMMITTER_EMAIL": self.email}


BOT = Identity("rehome-bot", "rehome-bot@users.noreply.github.com")
ACTIONS_BOT = Identity("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")
# rehome's own default identities: a branch made by `rehome run` (BOT) is the Action's (ACTIONS_BOT) to
# rebuild, and the reverse.
DEFAULT_AUTHORS = (BOT, ACTIONS_BOT)


@dataclasses.dataclass(frozen=True)
class Commit:
    sha: str
    author: Identity


@dataclasses.dataclass
class Checkout:
    """Where the bot's branch is built: `root` is a working tree at `base_sha` (the tip of `base`).

    A clone, a temporary worktree or a dry run's preview checks nothing out (`objects` reads the
    base commit's files from git's objects): writing every file of a repository, to read it once
    and delete it, costs more than the rest of a run. `materialize` writes the few files
    that must be on disk (the configuration, the files the bot changes)."""

    root: Path
    base: str
    base_sha: str
    remote: bool  # a clone (publish by push) or a worktree of a local repository (publish by update-ref)
    token: Secret | None = dataclasses.field(default=None, repr=False)
    prefix: str = ""  # where `root` is in the repository ("svc/" for a run in that subfolder)
    _objects: GitTree | None = dataclasses.field(default=None, init=False, repr=False)

    def git(self, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> str:
        return run_git(self.root, args, env=dict(env or {}) | auth_environment(self.token), secret=self.token,
                       stdin=stdin)

    @property
    def objects(self) -> GitTree:
        """The base commit's files."""
        if self._objects is None:
            self._objects = GitTree(self.root, self.base_sha)
        return self._objects

    def name_in_repository(self, text: str, repository: str) -> str:
        """`text` with each path into this checkout given as the repository (or, for a run in a
        subfolder, that folder) and the path inside it (`acme/shop: rehome.yaml`): a clone, a
        worktree or a preview is a temporary folder, gone once the run ends."""
        levels = len(Path(self.prefix).parts)
        top = self.root.parents[levels - 1] if levels else self.root
        # `root` first: it is inside `top`, and what is left of `top` is outside the subfolder.
        for folder, inside in ((self.root, ""), (top, "../" * levels)):
            for spelling in dict.fromkeys((str(folder), str(folder.resolve()))):
                text = text.replace(f"{spelling}/", f"{repository}: {inside}")
        return text

    def materialize(self, paths: Sequence[str]) -> None:
        """Write these files (or every file below these folders) of the base commit into the
        working tree; paths the commit does not hold are passed over."""
        self.objects.write_files(self.objects.files_below(paths))


def auth_environment(token: Secret | None) -> dict[str, str]:
    """The token as an HTTP header for this one git process; never a URL, never `.git/config`."""
    base = {"GIT_TERMINAL_PROMPT": "0"}
    if token is None:
        return base
    return base | {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                   "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic_credential(token)}"}


# --- opening a checkout -------------------------------------------------------------------------

def _top(path: Path) -> Path:
    try:
        return Path(run_git(path, ["rev-parse", "--show-toplevel"]))
    except GitError:
        raise UsageError(f"{path}: not a git repository",
                         hint="rehome run builds its branch with git; use rehome rewrite for a plain folder") from None


def _current_branch(top: Path) -> str:
    try:
        return run_git(top, ["symbolic-ref", "--quiet", "--short", "HEAD"])
    except GitError:
        raise UsageError(f"{top}: HEAD is detached", hint="check out the branch the pull request should target") from None


def _base_commit(top: Path, base: str) -> str:
    try:
        return run_git(top, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
    except GitError:
        raise UsageError(f"{top}: the branch {base} has no commits yet",
                         hint="commit the files first: the pull request's branch starts from the last commit") from None


@dataclasses.dataclass(frozen=True)
class _LocalBase:
    """What a run in a local folder builds on: the branch checked out now and its last commit."""

    top: Path  # the repository's top folder
    prefix: str  # the folder's place in it ("svc/"; "" at the top)
    branch: str
    sha: str


def _local_base(path: Path) -> _LocalBase:
    top = _top(path)
    branch = _current_branch(top)
    return _LocalBase(top, run_git(path, ["rev-parse", "--show-prefix"]), branch, _base_commit(top, branch))


def _checkout_in(tree: Path, local: _LocalBase) -> Checkout:
    """The checkout of `local`'s base commit in the temporary folder `tree`; `root` is the run's
    folder in it (a repository's subfolder stays a subfolder)."""
    root = tree / local.prefix if local.prefix else tree
    root.mkdir(parents=True, exist_ok=True)  # git runs here; the subfolder is not checked out
    return Checkout(root, local.branch, local.sha, remote=False, prefix=local.prefix)


@contextlib.contextmanager
def local_worktree(path: Path) -> Iterator[Checkout]:
    """A temporary worktree of the local repository at the tip of the branch checked out now."""
    local = _local_base(path)
    parent = Path(tempfile.mkdtemp(prefix="rehome-worktree-"))
    tree = parent / "tree"
    # No hooks: the user's post-checkout hooks are not for this temporary tree.
    run_git(local.top, ["-c", "core.hooksPath=/dev/null", "worktree", "add", "--quiet", "--no-checkout", "--detach",
                        str(tree), local.sha])
    try:
        yield _checkout_in(tree, local)
    finally:
        with contextlib.suppress(GitError):
            run_git(local.top, ["worktree", "remove", "--force", str(tree)])
        shutil.rmtree(parent, ignore_errors=True)
        with contextlib.suppress(GitError):
            run_git(local.top, ["worktree", "prune"])


@contextlib.contextmanager
def preview(path: Path) -> Iterator[Checkout]:
    """For a dry run: the same base commit as `local_worktree`, refused for the same reasons, without
    writing anything in the repository (a worktree is recorded in `.git`). The temporary folder's
    `.git` file names the repository's git folder, so git run there reads its objects and refs; a dry
    run runs no git command that writes."""
    local = _local_base(path)
    git_dir = run_git(local.top, ["rev-parse", "--absolute-git-dir"])
    parent = Path(tempfile.mkdtemp(prefix="rehome-preview-"))
    try:
        tree = parent / "tree"
        tree.mkdir()
        (tree / ".git").write_text(f"gitdir: {git_dir}\n")
        yield _checkout_in(tree, local)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def has_uncommitted_changes(path: Path) -> bool:
    """True when `path` holds changes not in its last commit (untracked files too, not ignored ones).
    Without optional locks: `git status` would otherwise refresh and rewrite the index."""
    return bool(run_git(path, ["--no-optional-locks", "status", "--porcelain", "--", "."]))


@contextlib.contextmanager
def clone(url: str, base: str, token: Secret | None = None) -> Iterator[Checkout]:
    """A shallow clone of `base` in a temporary folder (removed afterwards), nothing checked out.

    Not blobless: the files are read from the clone's objects, and one pack of the tip costs
    less than fetching the blobs one by one as they are read. Nor does it take git's template
    folder (sample hooks, `description`, `info/exclude`) or keep reflogs: nothing would read them,
    and each file is one more to write and delete (a sweep makes thousands of these clones)."""
    parent = Path(tempfile.mkdtemp(prefix="rehome-clone-"))
    tree = parent / "repo"
    try:
        log.info("cloning %s (branch %s)", _safe_url(url), base)
        try:
            run_git(parent, ["-c", "core.logAllRefUpdates=false", "clone", "--quiet", "--template=", "--depth", "1",
                             "--no-checkout", "--single-branch", "--no-tags", "--branch", base, url, str(tree)],
                    env=auth_environment(token), secret=token)
        except GitError:
            if has_no_branches(url, token):
                raise NoCommits(f"{_safe_url(url)}: {NO_COMMITS}") from None
            raise
        checkout = Checkout(tree, base, "", remote=True, token=token)
        checkout.base_sha = checkout.git("rev-parse", "HEAD")
        yield checkout
    finally:
        shutil.rmtree(parent, ignore_errors=True)


class NoCommits(GitError):
    """The repository is empty: there is no branch to clone."""


def has_no_branches(url: str, token: Secret | None) -> bool:
    """True when the remote answers and lists no branch (an empty repository); False when it has
    some, or cannot be read (the clone's own error then says what is wrong)."""
    try:
        return not run_git(Path(tempfile.gettempdir()), ["ls-remote", "--heads", url],
                           env=auth_environment(token), secret=token).strip()
    except GitError:
        return False


def _safe_url(url: str) -> str:
    """A URL without any user or password part, for logs."""
    return re.sub(r"^([a-z+]+://)[^/@]*@", r"\1", url)


def origin_repository(path: Path) -> str:
    """OWNER/NAME from the `origin` remote of a local checkout (https, ssh or scp-like URL)."""
    try:
        url = run_git(path, ["remote", "get-url", "origin"])
    except GitError:
        raise UsageError(f"{path}: no `origin` remote to take OWNER/NAME from") from None
    match = re.search(r"[:/]([^/:]+)/([^/]+?)(?:\.git)?/?$", url)
    if match is None:
        raise UsageError(f"{path}: cannot read OWNER/NAME from the origin remote {_safe_url(url)!r}")
    return f"{match.group(1)}/{match.group(2)}"


# --- the bot's branch ---------------------------------------------------------------------------

def branch_head(checkout: Checkout, branch: str) -> str | None:
    """The branch's current commit (on the remote for a clone, in the repository for a worktree),
    fetched with the commits it holds beyond the base; None when there is no such branch."""
    ref = f"refs/heads/{branch}"
    if not checkout.remote:
        try:
            return checkout.git("rev-parse", "--verify", "--quiet", ref + "^{commit}")
        except GitError:
            return None
    listed = checkout.git("ls-remote", "origin", ref)
    if not listed:
        return None
    _fetch_beyond_base(checkout, f"+{ref}:refs/remotes/origin/{branch}")
    return listed.split()[0]


def fetch_commit(checkout: Checkout, ref: str) -> str:
    """The commit the remote's `ref` names (a closed pull request's `refs/pull/N/head`), fetched with
    the commits it holds beyond the base."""
    _fetch_beyond_base(checkout, f"+{ref}:{_FETCHED_REF}")
    return checkout.git("rev-parse", _FETCHED_REF)


_FETCHED_REF = "refs/rehome/fetched"


def _fetch_beyond_base(checkout: Checkout, refspec: str) -> None:
    """Only the commits that are not on the base (exactly the ones whose authors are checked), with
    their trees and no file contents."""
    try:
        checkout.git("fetch", "--quiet", "--filter=blob:none", f"--shallow-exclude={checkout.base}", "origin", refspec)
    except GitError:  # the ref holds nothing beyond the base ("no commits selected")
        checkout.git("fetch", "--quiet", "--depth", "1", "--filter=blob:none", "origin", refspec)


def commits_beyond_base(checkout: Checkout, head: str) -> list[Commit]:
    out = checkout.git("log", "--format=%H%x00%an%x00%ae", head, "--not", checkout.base_sha)
    commits = []
    for line in out.splitlines():
        sha, name, email = line.split("\0")
        commits.append(Commit(sha, Identity(name, email)))
    return commits


def foreign_commits(checkout: Checkout, head: str, identities: Sequence[Identity]) -> list[Commit]:
    """Commits on the bot's branch, not on the base, that someone other than `identities` wrote."""
    own = {identity.email.lower() for identity in identities}
    return [c for c in commits_beyond_base(checkout, head) if c.author.email.lower() not in own]


# A ref of the checkout's own (per worktree): the one `git fast-import` must name. Publishing
# the commit is `publish_branch`'s job, which checks the branch has not moved.
_COMMIT_REF = "refs/worktree/rehome-commit"


def commit_files(checkout: Checkout, files: Mapping[str, str], message: str, identity: Identity) -> str:
    """Commit these files' new text (paths relative to `root`) on top of the base; the new commit's
    sha. One `git fast-import` writes the blobs, trees and commit: no file is written to the working
    tree, no index is used. Each file keeps its mode in the base (a new file is a regular one)."""
    who = f"{identity.name} <{identity.email}> now"
    body = clean_message(message).encode()
    stream = [f"commit {_COMMIT_REF}\nmark :1\nauthor {who}\ncommitter {who}\n".encode(),
              b"data %d\n%b" % (len(body), body), f"from {checkout.base_sha}\n".encode()]
    for path, text in sorted(files.items()):
        data = text.encode("utf-8")
        mode = checkout.objects.mode(path) or "100644"
        stream.append(f"M {mode} inline {_fast_import_path(checkout.prefix + path)}\n".encode()
                      + b"data %d\n%b\n" % (len(data), data))
    stream.append(b"get-mark :1\ndone\n")
    return checkout.git("fast-import", "--quiet", "--force", "--date-format=now", "--done", stdin=b"".join(stream))


def clean_message(message: str) -> str:
    """What `git commit -m` makes of a message: no trailing spaces, one blank line at most in a row,
    none at either end, a final newline."""
    lines = [line.rstrip() for line in message.splitlines()]
    kept = [line for i, line in enumerate(lines) if line or (i > 0 and lines[i - 1])]
    return "\n".join(kept).strip("\n") + "\n"


def _fast_import_path(path: str) -> str:
    """A path as `git fast-import` reads it: C-quoted when it would be misread as it is."""
    if "\n" not in path and not path.startswith('"'):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _commit_fields(checkout: Checkout, sha: str) -> tuple[str, list[str]]:
    """(tree, parents) from the commit object itself: a shallow clone's grafts do not hide them."""
    tree, parents = "", []
    for line in checkout.git("cat-file", "commit", sha).splitlines():
        if not line:
            break
        key, _, value = line.partition(" ")
        if key == "tree":
            tree = value
        elif key == "parent":
            parents.append(value)
    return tree, parents


def same_change(checkout: Checkout, head: str | None, new: str) -> bool:
    """True when the branch already holds this change: one commit on the current base, same tree."""
    if head is None:
        return False
    head_tree, head_parents = _commit_fields(checkout, head)
    new_tree, _ = _commit_fields(checkout, new)
    return head_parents == [checkout.base_sha] and head_tree == new_tree


def holds_change(checkout: Checkout, commit: str, new: str) -> bool:
    """True when `commit` (one commit on this base or an earlier one) made, in each file `new` changes,
    the same edits as `new` does: the same lines replaced by the same lines, whatever else the base has
    changed since (a line added elsewhere in the file does not make it another change)."""
    proposed = _line_edits(checkout, checkout.base_sha, new)
    declined = _line_edits(checkout, _parent(checkout, commit), commit)
    return all(declined.get(path) == edits for path, edits in proposed.items())


def _parent(checkout: Checkout, commit: str) -> str:
    """`commit`'s first parent, fetched (its trees, no file contents) when the clone lacks it: an
    earlier base is beyond a shallow clone's history."""
    parent = _commit_fields(checkout, commit)[1][0]
    try:
        checkout.git("cat-file", "-e", f"{parent}^{{commit}}")
    except GitError:
        checkout.git("fetch", "--quiet", "--depth", "1", "--filter=blob:none", "origin", parent)
    return parent


LineEdit = tuple[tuple[str, ...], tuple[str, ...]]  # the lines a hunk removes, the lines it writes instead


def _line_edits(checkout: Checkout, old: str, new: str) -> dict[str, frozenset[LineEdit]]:
    """Each path that differs between two commits: its hunks as (removed lines, added lines), where
    they are in the file left out."""
    edits = {}
    for path, _mode, old_object, new_object in _differences(checkout, old, new):
        before, after = _blob_lines(checkout, old_object), _blob_lines(checkout, new_object)
        matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
        edits[path] = frozenset((tuple(before[i1:i2]), tuple(after[j1:j2]))
                                for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")
    return edits


def _blob_lines(checkout: Checkout, blob: str) -> list[str]:
    """A file's lines (none for a file that is not there: git's all-zero object id)."""
    return [] if blob == NO_SHA else checkout.git("cat-file", "blob", blob).splitlines()


def holds_files(checkout: Checkout, head: str | None, files: Mapping[str, str]) -> bool:
    """What `same_change` says of the commit `commit_files` would make of these files, worked out
    without making it (a dry run writes no object): `head` is one commit on the current base that
    changes exactly these files, each to this text, with the mode it has in the base."""
    if head is None or _commit_fields(checkout, head)[1] != [checkout.base_sha]:
        return False
    expected = {checkout.prefix + path: (checkout.objects.mode(path) or "100644", _blob_id(checkout, text))
                for path, text in files.items()}
    return _changes(checkout, checkout.base_sha, head) == expected


def _blob_id(checkout: Checkout, text: str) -> str:
    """The object name `text` would have as a file's content; nothing is written."""
    return checkout.git("hash-object", "--no-filters", "--stdin", stdin=text.encode("utf-8"))


def _changes(checkout: Checkout, old: str, new: str) -> dict[str, tuple[str, str]]:
    """Each path (from the repository's top) that differs between two commits: its new mode and object."""
    return {path: (mode, new_object) for path, mode, _old_object, new_object in _differences(checkout, old, new)}


def _differences(checkout: Checkout, old: str, new: str) -> Iterator[tuple[str, str, str, str]]:
    """(path, new mode, old object, new object) of each path that differs between two commits."""
    fields = checkout.git("diff-tree", "-r", "-z", "--no-renames", old, new).split("\0")
    for meta, path in zip(fields[0::2], fields[1::2]):  # ":old-mode new-mode old-object new-object status", path
        _old_mode, new_mode, old_object, new_object, _status = meta.split()
        yield path, new_mode, old_object, new_object


@functools.lru_cache(maxsize=None)
def check_branch_name(name: str) -> str:
    """`name` when git takes it as a branch name as it is, else a usage error (before any work).
    Cached: a sweep asks once per repository, always about the same name."""
    if not name.startswith(("-", "refs/")) and _is_ref_name(f"refs/heads/{name}"):
        return name
    raise UsageError(f"{name!r} is not a usable branch name",
                     hint="a name such as rehome/mirror-images: no spaces, no '..', not starting with '-' or refs/")


def _is_ref_name(ref: str) -> bool:
    try:
        run_git(".", ["check-ref-format", ref])
    except GitError:
        return False
    return True


def publish_branch(checkout: Checkout, branch: str, new: str, expected: str | None) -> None:
    """Point the bot's branch at `new`, only if it still is at `expected` (None: must not exist)."""
    ref = f"refs/heads/{branch}"
    if checkout.remote:
        log.info("pushing %s", branch)
        checkout.git("push", "--quiet", f"--force-with-lease={ref}:{expected or ''}", "origin", f"{new}:{ref}")
    else:
        refusal = checked_out_elsewhere(checkout, branch)
        if refusal is not None:
            raise refusal
        checkout.git("update-ref", "-m", "rehome: rebuilt from the base branch", ref, new, expected or NO_SHA)


def checked_out_elsewhere(checkout: Checkout, branch: str) -> UsageError | None:
    """The refusal to move a local repository's `branch` that another worktree has checked out (git
    itself never moves a branch under another worktree's feet); None when it can be moved."""
    elsewhere = None if checkout.remote else _worktree_with(checkout, f"refs/heads/{branch}")
    if elsewhere is None:
        return None
    return UsageError(f"the branch {branch} is checked out in {elsewhere}; it is not moved under that checkout",
                      hint="check out another branch there (or remove that worktree), then run again")


def _worktree_with(checkout: Checkout, ref: str) -> str | None:
    """The worktree that has `ref` checked out, if one has."""
    path = None
    for line in checkout.git("worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            path = line.removeprefix("worktree ")
        elif line == f"branch {ref}":
            return path
    return None
