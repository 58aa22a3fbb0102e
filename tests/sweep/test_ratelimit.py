"""The wait for GitHub's rate-limit reset, and the interrupt that ends it."""
from __future__ import annotations

import logging
import threading
import time

import pytest

from bot.sweep.ratelimit import RateLimiter, RateLimitInterrupted

RESET = 1_700_000_000  # 22:13:20 UTC
INTERRUPTED = ("interrupted while waiting for GitHub's rate limit to reset at 22:13:20 UTC; "
               "it runs again in the next sweep")


def test_an_interrupt_ends_the_wait_for_the_reset_and_any_later_one(caplog, monkeypatch) -> None:
    caplog.set_level(logging.INFO, logger="rehome")
    monkeypatch.setattr(logging.getLogger("rehome"), "propagate", True)  # the CLI turns it off
    monkeypatch.setattr(logging.getLogger("rehome"), "handlers", [])  # and installs its own handler
    limiter = RateLimiter(reserve=2, clock=lambda: RESET - 3600)  # the reset an hour away, the real wait
    limiter.observe(2, RESET)
    raised: list[str] = []

    def request() -> None:
        with pytest.raises(RateLimitInterrupted) as interrupted:
            limiter.before()
        raised.append(interrupted.value.message)

    waiting = threading.Thread(target=request)
    waiting.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not limiter.waited:
        time.sleep(0.01)
    limiter.interrupt()
    waiting.join(10)
    assert not waiting.is_alive()
    assert (raised, limiter.waited) == ([INTERRUPTED], [3601.0])
    # A later request that would wait is not sent either, at once and without saying it waits ...
    with pytest.raises(RateLimitInterrupted) as later:
        limiter.before()
    assert later.value.message == INTERRUPTED
    # ... while one within the quota still goes.
    limiter.observe(100, RESET)
    limiter.before()
    assert limiter.remaining == 99
    assert caplog.messages == ["GitHub rate limit: 2 requests left; waiting 3601s until the reset at 22:13:20 UTC"]
