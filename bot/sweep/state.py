"""The sweep's journal: one JSON line per finished repository, so a killed sweep resumes."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bot import jsontext, textfile
from bot.errors import RehomeError, UsageError
from bot.output import plural
from bot.pulls import bigquery

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
    return {**flags, **{_fingerprint_key(name): _fingerprint(name, flags[name]) for name in FILE_INPUTS}}


def _fingerprint_key(name: str) -> str:
    return f"{name}_sha256"


def _fingerprint(name: str, value: InputValue) -> str | None:
    """sha256 over what the flag's paths hold, in their order: a file's bytes; a folder's files in the
    order of their paths in it, each path with its file's digest. None when the flag names no file."""
    paths = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    paths = [path for path in paths if not bigquery.is_bigquery(path)]
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in map(Path, paths):
        for relative, file in _files_in(name, path):
            digest.update(f"{relative}\0{_file_sha256(name, file)}\n".encode())
    return digest.hexdigest()


def _files_in(name: str, path: Path) -> list[tuple[str, Path]]:
    """The file itself, or the folder's files (and those of its folders), by their paths in it."""
    if not path.is_dir():
        return [(".", path)]
    files: list[tuple[str, Path]] = []

    def refuse(exc: OSError) -> None:
        raise _unreadable(name, Path(exc.filename or path), exc)

    for folder, _, names in os.walk(path, onerror=refuse):
        files += [(Path(folder, file).relative_to(path).as_posix(), Path(folder, file)) for file in names]
    return sorted(files)


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
                and previous.inputs == inputs)

    def run_again_notice(self, repos: Iterable[str], inputs: dict[str, InputValue]) -> str | None:
        """Which of these repositories, finished in the journal, run again because their lines record
        other flags than `inputs` (or not all of them); None when none does."""
        others = [previous.inputs or {} for repo in repos if (previous := self.last.get(repo)) is not None
                  and previous.status in FINISHED and previous.inputs != inputs]
        if not others:
            return None
        differing = sorted({named for recorded in others for named in _differing(recorded, inputs)})
        unrecorded = sum(1 for recorded in others if set(recorded) != set(inputs))
        reasons = [", ".join(differing)] if differing else []
        if unrecorded:
            reasons.append(f"{plural(unrecorded, 'line')} of another rehome version, not recording the same flags")
        runs = "runs" if len(others) == 1 else "run"
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


def _differing(recorded: dict[str, InputValue], inputs: dict[str, InputValue]) -> set[str]:
    """The inputs a line records with other values, as a message names them: by flag, or, for a file
    or folder that flag names alike, `the contents of --templates`."""
    named = set()
    for name in FILE_INPUTS:
        key = _fingerprint_key(name)
        if key in recorded and recorded[key] != inputs.get(key) and recorded.get(name) == inputs.get(name):
            named.add(f"the contents of {_flag(name)}")
    return named | {_flag(name) for name in INPUTS if name in recorded and recorded[name] != inputs.get(name)}


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
