"""The sweep's journal: one JSON line per finished repository, so a killed sweep resumes."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bot import jsontext, textfile
from bot.errors import RehomeError, UsageError

log = logging.getLogger("rehome")

STATUSES = ("done", "nothing-to-do", "partial", "failed")
# A rerun skips a repository whose last outcome is one of these at the same base commit, asked the same inputs.
FINISHED = ("done", "nothing-to-do")
# The sweep's flags a repository's outcome depends on besides its base commit: a journal of a sweep
# to another destination, or onto another branch, says nothing about this one.
INPUTS = ("to", "branch", "mapping")


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
    # INPUTS' values (None: the flag was not given); None for a line an older version wrote, which
    # knew no inputs: such a line is taken as the same sweep's, as it was before.
    inputs: dict[str, str | None] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def inputs_of(args: argparse.Namespace) -> dict[str, str | None]:
    """The journal's `inputs` for a sweep with these flags."""
    return {name: getattr(args, name, None) for name in INPUTS}


def _texts(values: Iterable[Any]) -> bool:
    return all(value is None or isinstance(value, str) for value in values)


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
    if not _texts(values.values()) or (inputs is not None and not (isinstance(inputs, dict) and _texts(inputs.values()))):
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

    def should_skip(self, repo: str, head: str | None, inputs: dict[str, str | None]) -> bool:
        previous = self.last.get(repo)
        return (previous is not None and previous.status in FINISHED and head is not None and previous.head == head
                and previous.inputs in (None, inputs))

    def record(self, outcome: Outcome) -> None:
        """Appends the outcome's line; a file that cannot be written (a full disk, say) is a JournalError."""
        try:
            _append(self.path, json.dumps(outcome.to_json(), sort_keys=True) + "\n")
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot write the sweep state ({outcome.repo}'s line): "
                               f"{exc.strerror or exc}") from None
        self._remember(outcome)


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
