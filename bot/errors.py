"""One error family for failures a user can act on.

Anything that is not a `RehomeError` is a bug: the CLI prints a short message and
writes the traceback to a file (exit 3).
"""
from __future__ import annotations


class RehomeError(Exception):
    """An expected failure with a message for the user (and an optional hint)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class UsageError(RehomeError):
    """Bad flag, bad configuration or rules file, missing path (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A `rehome.yaml` or rules file that does not validate."""
