"""The sweep's journal: one JSON line per finished repository, so a killed sweep resumes."""
from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
from pathlib import Path
from typing import Any

from bot.errors import UsageError

log = logging.getLogger("rehome")

STATUSES = ("done", "nothing-to-do", "partial", "failed")
# A rerun skips a repository whose last outcome is one of these at the same base commit.
FINISHED = ("done", "nothing-to-do")


@dataclasses.dataclass(frozen=True)
class Outcome:
    repo: str
    status: str
    pr_url: str | None
    head: str | None  # the base commit scanned
    error: str | None
    finished_at: str  # ISO 8601 UTC

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _outcome(line: str) -> Outcome | None:
    """The outcome a journal line records, or None for anything else (any valid JSON included)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    values = {field.name: data.get(field.name) for field in dataclasses.fields(Outcome)}
    if not all(value is None or isinstance(value, str) for value in values.values()):
        return None
    if values["status"] not in STATUSES or not values["repo"]:
        return None
    return Outcome(**values)


class StateJournal:
    """Appends outcomes as they happen (flushed and synced, one line each); reads the last one per repository."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last: dict[str, Outcome] = self._read()

    def _read(self) -> dict[str, Outcome]:
        if not self.path.exists():
            return {}
        last: dict[str, Outcome] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
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
            last[outcome.repo] = outcome
        return last

    def should_skip(self, repo: str, head: str | None) -> bool:
        previous = self.last.get(repo)
        return previous is not None and previous.status in FINISHED and head is not None and previous.head == head

    def record(self, outcome: Outcome) -> None:
        line = json.dumps(outcome.to_json(), sort_keys=True) + "\n"
        with self.path.open("a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a line cut short by a killed sweep: start afresh after it
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self.last[outcome.repo] = outcome
