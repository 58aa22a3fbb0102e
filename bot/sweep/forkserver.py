"""Imported by the sweep's fork server before the rest of what it preloads (bot.sweep.workers.PRELOAD),
and by nothing else: the fork server then ignores SIGTERM, as it ignores SIGINT on its own.

It stays in the sweep's process group, and a SIGTERM may be sent to the whole group (timeout(1),
systemd stopping a unit, `kill -- -PGID`). Ended by it, it would take its workers with it as far as
the sweep can tell (a worker's exit code is read from the fork server), and the sweep would fail
their repositories while they still run. The workers it forks start with SIGTERM ignored too.
"""
from __future__ import annotations

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
