"""Imported by the sweep's fork server first of what it preloads (bot.sweep.workers.PRELOAD), and by
nothing else: the fork server then ignores SIGTERM and SIGINT (it would ignore SIGINT on its own, but
only once its preload is done).

It stays in the sweep's process group, and a SIGTERM may be sent to the whole group (timeout(1),
systemd stopping a unit, `kill -- -PGID`), a Ctrl-C to the terminal's. Ended by one, it would lose
its workers' exit codes (the sweep reads them from it) and leave the repositories waiting for a worker
to a new fork server, started as the signals come. It starts with both blocked
(bot.sweep.workers._start_process): one sent before this runs is dropped here. The workers it forks
start with both ignored too.
"""
from __future__ import annotations

from bot.sweep.workers import ignore_interrupts

ignore_interrupts()
