"""GitHub's primary rate limit, shared by every API client of a sweep.

Each answer's `X-RateLimit-Remaining` / `X-RateLimit-Reset` (PyGithub keeps the last ones on its
requester) is observed; before a request, when no more than `reserve` requests are left, the
caller waits until the reset, and says so. An interrupted sweep ends that wait at once
(`interrupt`). Secondary limits (403/429 with `Retry-After`) are PyGithub's retry, logged by
`bot.forge.github.LoggingRetry`.
"""
from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.errors import RehomeError

log = logging.getLogger("rehome")

DEFAULT_RESERVE = 20  # requests kept back for the rest of the run (reports, a retry)
MARGIN = 1.0  # seconds after the reset: it is not clear when in that second it happens


class RateLimitInterrupted(RehomeError):
    """The sweep was interrupted while a request waited for the rate limit's reset: it is not sent."""


class RateLimiter:
    def __init__(self, reserve: int = DEFAULT_RESERVE, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], object] | None = None) -> None:
        """`sleep(seconds)` waits for the reset; by default until then or until `interrupt`, whichever comes first."""
        self.reserve = reserve
        self._interrupted = threading.Event()
        self._clock, self._sleep = clock, sleep or self._interrupted.wait
        self._lock = threading.Lock()
        self.remaining: int | None = None
        self.reset: float | None = None  # epoch seconds
        self.waited: list[float] = []

    def observe(self, remaining: int, reset: float | None) -> None:
        """What the last answer said (a negative `remaining`: nothing known)."""
        if remaining < 0:
            return
        with self._lock:
            self.remaining, self.reset = remaining, reset

    def observe_requester(self, requester: Any) -> None:
        remaining, _limit = requester.rate_limiting
        reset = requester.rate_limiting_resettime or None
        self.observe(remaining, reset)

    def interrupt(self) -> None:
        """Ends the wait for the reset under way, and any later one, at once: each request that would
        wait raises `RateLimitInterrupted` instead. Requests within the quota still go."""
        self._interrupted.set()

    def before(self) -> None:
        """Wait until the reset when the quota is (nearly) spent; others wait behind the one waiting."""
        with self._lock:
            if self.remaining is None or self.remaining > self.reserve or self.reset is None:
                if self.remaining is not None:
                    self.remaining -= 1  # this request spends one
                return
            due = self.reset + MARGIN - self._clock()
            if due > 0:
                at = datetime.datetime.fromtimestamp(self.reset, datetime.timezone.utc).strftime("%H:%M:%S")
                if not self._interrupted.is_set():
                    log.warning("GitHub rate limit: %d requests left; waiting %.0fs until the reset at %s UTC",
                                self.remaining, due, at, extra={"sweep_wide": True})  # for all repositories
                    self.waited.append(due)
                    self._sleep(due)
                if self._interrupted.is_set():
                    raise RateLimitInterrupted(f"interrupted while waiting for GitHub's rate limit to reset at {at} "
                                               "UTC; it runs again in the next sweep")
            self.remaining, self.reset = None, None
