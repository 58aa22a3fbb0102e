"""The sweep's journal: one JSON line per finished repository, so a killed sweep resumes."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bot import jsontext, textfile
from bot.config import config_folder, load_config
from bot.errors import RehomeError, UsageError
from bot.output import plural
from bot.pulls import bigquery
from bot.rules import rule_files

log = logging.getLogger("rehome")

STATUSES = ("done", "nothing-to-do", "declined", "partial", "failed")
# A rerun skips a repository whose last outcome is one of these at the same base commit, asked the same inputs
# (not a declined one: its pull request may have been reopened since, or the rerun give --recreate-closed).
FINISHED = ("done", "nothing-to-do")
# The sweep's flags a repository's pull request depends on besides its base commit: where images go
# and how references are written, what is scanned, how the pull request looks. A journal line of a
# sweep with another of them says nothing about this one. Not among them: which repositories are
# taken and how many at once, how GitHub and the registries are reached, --no-referrers (copies no
# pull request shows), --untracked (a fresh clone has no untracked file).
INPUTS = ("to", "mapping", "pin_digest", "refresh", "config", "rules", "internal", "include", "exclude",
          "max_file_size", "pulls", "since", "until", "branch", "title", "labels", "reviewers", "assignees", "draft",
          "templates")
# The INPUTS that name files or folders. Their contents are inputs too: each one's `<name>_sha256`
# fingerprints what it names, so that a file edited in place is another input. (`--pulls` may name a
# BigQuery dataset instead: that is recorded by its name only.)
FILE_INPUTS = ("config", "rules", "pulls", "templates")
# A flag's value as given: text, a repeated flag's list, a switch's true or false, or None (not given).
InputValue = str | bool | list[str] | None
CHUNK = 1 << 20


class JournalError(RehomeError):
    """The journal could not be written: the sweep must not start what it could not record."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    repo: str
    status: str
    pr_url: str | None
    head: str | None  # the base commit scanned
    error: str | None
    finished_at: str  # ISO 8601 UTC
    # INPUTS' values. A line an older version wrote records fewer of them, or none (None): what it
    # does not record is not known to be the same, so its repository runs again.
    inputs: dict[str, InputValue] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def inputs_of(args: argparse.Namespace) -> dict[str, InputValue]:
    """The journal's `inputs` for a sweep with these flags: INPUTS' values, and the fingerprints of
    the files and folders FILE_INPUTS name. One that cannot be read is a UsageError naming it."""
    flags: dict[str, InputValue] = {name: getattr(args, name, None) for name in INPUTS}
    return {**flags, **{_fingerprint_key(name): _fingerprint(name, flags[name], args) for name in FILE_INPUTS}}


def _fingerprint_key(name: str) -> str:
    return f"{name}_sha256"


def _fingerprint(name: str, value: InputValue, args: argparse.Namespace) -> str | None:
    """sha256 over what the sweep reads from the flag's paths, in their order: a file's bytes; a
    folder's files in the order of their paths in it, each path with its file's digest. None when
    the flag names no file."""
    paths = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    paths = [path for path in paths if not bigquery.is_bigquery(path)]
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in map(Path, paths):
        for relative, file in _read_from(name, path, args):
            digest.update(os.fsencode(relative) + b"\0" + _file_sha256(name, file).encode() + b"\n")
    return digest.hexdigest()


def _read_from(name: str, path: Path, args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """The files the sweep reads from what the flag names, by their paths in it: a file itself; a
    --rules folder's rule files (nothing else in it is read); a --templates folder's files (any may be
    included by another); and with --config, the rules and templates folders the file names too,
    unless --rules or --templates replaces them."""
    if not path.is_dir():
        yield ".", path
        if name == "config":  # read once the file itself has been: one that cannot be is said so first
            yield from _config_folders(path, args)
    else:
        yield from _rule_files(name, path) if name == "rules" else _files_in(name, path)


def _config_folders(path: Path, args: argparse.Namespace) -> list[tuple[str, Path]]:
    config = load_config(path)
    files: list[tuple[str, Path]] = []
    for key, read in (("rules", _rule_files), ("templates", _files_in)):
        folder = None if getattr(args, key, None) else config_folder(config, key)
        if folder is not None:
            files += [(f"{key}/{relative}", file) for relative, file in read("config", folder)]
    return files


def _rule_files(name: str, folder: Path) -> list[tuple[str, Path]]:
    try:
        return [(file.name, file) for file in rule_files(folder)]
    except OSError as exc:
        raise _unreadable(name, Path(exc.filename or folder), exc) from None


def _files_in(name: str, folder: Path) -> list[tuple[str, Path]]:
    """The folder's files, and those of its folders (followed where they are links, as the templates'
    loader follows them, each folder once), by their paths in it. A pipe or device is no template."""
    files: list[tuple[str, Path]] = []
    seen: set[str] = set()

    def refuse(exc: OSError) -> None:
        raise _unreadable(name, Path(exc.filename or folder), exc)

    for inside, folders, names in os.walk(folder, onerror=refuse, followlinks=True):
        if os.path.realpath(inside) in seen:  # a link back up the tree, or a second link to one folder
            folders.clear()
            continue
        seen.add(os.path.realpath(inside))
        files += [(Path(inside, file).relative_to(folder).as_posix(), Path(inside, file)) for file in names
                  if not _special(Path(inside, file))]
    return sorted(files)


def _special(file: Path) -> bool:
    """A pipe, socket or device: reading one could wait for ever. (One that cannot be looked at is
    read, to say why.)"""
    try:
        return not stat.S_ISREG(file.stat().st_mode)
    except OSError:
        return False


def _file_sha256(name: str, file: Path) -> str:
    digest = hashlib.sha256()
    try:
        with file.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise _unreadable(name, file, exc) from None
    return digest.hexdigest()


def _unreadable(name: str, path: Path, exc: OSError) -> UsageError:
    return UsageError(f"{_flag(name)}: {path}: cannot read it to record its contents in --state: "
                      f"{exc.strerror or exc}")


def _flag(name: str) -> str:
    """An input's flag, as a message names it."""
    return "--" + name.replace("_", "-")


def _texts(values: Iterable[Any]) -> bool:
    return all(value is None or isinstance(value, str) for value in values)


def _is_input_value(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or (isinstance(value, list) and _texts(value))


def _is_inputs(inputs: Any) -> bool:
    return inputs is None or (isinstance(inputs, dict) and all(_is_input_value(v) for v in inputs.values()))


def _outcome(line: str) -> Outcome | None:
    """The outcome a journal line records, or None for anything else (any valid JSON included)."""
    try:
        data = jsontext.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    values = {field.name: data.get(field.name) for field in dataclasses.fields(Outcome)}
    inputs = values.pop("inputs")
    if not _texts(values.values()) or not _is_inputs(inputs):
        return None
    if values["status"] not in STATUSES or not values["repo"]:
        return None
    return Outcome(**values, inputs=inputs)


class StateJournal:
    """Appends outcomes as they happen (flushed and synced, one line each); reads the last one per
    repository, and the last pull request URL any of its lines names (a later run that failed, or
    found nothing to do, names none)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pr_urls: dict[str, str] = {}
        self.last: dict[str, Outcome] = {}
        for outcome in self._read():
            self._remember(outcome)

    def _remember(self, outcome: Outcome) -> None:
        self.last[outcome.repo] = outcome
        if outcome.pr_url:
            self.pr_urls[outcome.repo] = outcome.pr_url

    def _read(self) -> list[Outcome]:
        if not self.path.exists():
            return []
        outcomes: list[Outcome] = []
        try:
            lines = textfile.read_text(self.path).splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{self.path}: cannot read the sweep state: {exc}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            outcome = _outcome(line)
            if outcome is None:
                # E.g. the last line of a sweep killed while writing it: that repository simply runs again.
                log.warning("%s:%d: not a state line; ignored", self.path, number)
                continue
            outcomes.append(outcome)
        return outcomes

    def should_skip(self, repo: str, head: str | None, inputs: dict[str, InputValue]) -> bool:
        previous = self.last.get(repo)
        return (previous is not None and previous.status in FINISHED and head is not None and previous.head == head
                and _same(previous.inputs, inputs))

    def runs_again_whatever_its_head(self, repo: str) -> bool:
        """Whether the last line for `repo` says it runs again in any case: it failed, or was `partial` or
        `declined`, or had no commits to record a head of (a finished one runs again only once its base
        branch moves)."""
        previous = self.last.get(repo)
        return previous is not None and (previous.status not in FINISHED or previous.head is None)

    def finished_with_other_flags(self, repos: Iterable[str], inputs: dict[str, InputValue]) -> dict[str, dict]:
        """Those of these repositories that the journal finished with other flags than `inputs` (or not
        all of them), with the flags their lines record: they run again."""
        return {repo: previous.inputs or {} for repo in repos if (previous := self.last.get(repo)) is not None
                and previous.status in FINISHED and not _same(previous.inputs, inputs)}

    def run_again_notice(self, others: Iterable[dict], inputs: dict[str, InputValue], ran: bool = False) -> str | None:
        """What the flags `others` record (of `finished_with_other_flags`) say: that those repositories run
        again (or, once a batch is over, `ran` again), and which flags differ; None for none."""
        others = list(others)
        if not others:
            return None
        differing = sorted({named for recorded in others for named in _differing(recorded, inputs)})
        unrecorded = sum(1 for recorded in others if set(recorded) != set(inputs))
        reasons = [", ".join(differing)] if differing else []
        if unrecorded:
            reasons.append(f"{plural(unrecorded, 'line')} of another rehome version, not recording the same flags")
        runs = "ran" if ran else "runs" if len(others) == 1 else "run"
        return (f"{self.path}: {plural(len(others), 'repository', 'repositories')} finished with other flags "
                f"{runs} again ({'; '.join(reasons)})")

    def record(self, outcome: Outcome) -> None:
        """Appends the outcome's line; a file that cannot be written (a full disk, say) is a JournalError."""
        try:
            _append(self.path, json.dumps(outcome.to_json(), sort_keys=True) + "\n")
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot write the sweep state ({outcome.repo}'s line): "
                               f"{exc.strerror or exc}") from None
        self._remember(outcome)


def _compared(inputs: dict[str, InputValue]) -> dict[str, InputValue]:
    """What of a line's inputs decides whether it is this sweep's: a flag that names files counts by
    the fingerprint of what they hold, not by how its paths are written (`./rehome.yaml` or an
    absolute path, which differs from one machine of a sharded sweep to the next); a flag naming no
    file (a BigQuery dataset) counts by its value."""
    return {name: None if name in FILE_INPUTS and inputs.get(_fingerprint_key(name)) is not None else value
            for name, value in inputs.items()}


def _same(recorded: dict[str, InputValue] | None, inputs: dict[str, InputValue]) -> bool:
    return recorded is not None and _compared(recorded) == _compared(inputs)


def _differing(recorded: dict[str, InputValue], inputs: dict[str, InputValue]) -> set[str]:
    """The inputs a line records with other values, as a message names them: by flag, or, for a file
    or folder that flag names alike, `the contents of --templates`."""
    old, new = _compared(recorded), _compared(inputs)
    named = set()
    for name in FILE_INPUTS:
        key = _fingerprint_key(name)
        if key in old and old[key] != new.get(key):
            named.add(f"the contents of {_flag(name)}" if recorded.get(name) == inputs.get(name) else _flag(name))
    return named | {_flag(name) for name in INPUTS if name in old and old[name] != new.get(name)}


def _append(path: Path, line: str) -> None:
    """Appends the line, flushed and synced."""
    with path.open("a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut short by a killed sweep: start afresh after it
                line = "\n" + line
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
