"""Repositories in worker processes: the objects of the whole sweep stay shared."""
from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.connection import Connection

from bot.mirror import MirrorImage, MirrorOptions
from bot.sweep.mirrorcache import SharedMirror
from bot.sweep.ratelimit import RateLimiter
from bot.registry import Secret
from bot.sweep.access import TokenSource
from bot.sweep.shared import LimiterProxy, MirrorProxy, SharedObjects, TokensProxy


def _ask(mirror: MirrorProxy, limiter: LimiterProxy, tokens: TokensProxy, moves: list[tuple[str, str]],
         out: Connection) -> None:
    """In a worker process: a token, two GitHub requests' worth of the limiter, then the mirror step."""
    token = tokens.current()
    limiter.before()
    limiter.before()
    images = mirror(moves, MirrorOptions(), pulls={"a": 5})
    out.send((token.reveal(), [(image.source, image.pulls) for image in images]))


def test_the_mirror_step_the_rate_limit_and_the_token_are_shared_by_worker_processes() -> None:
    calls: list[list[tuple[str, str]]] = []
    gate = threading.Event()

    def ensure(moves, options, *, pulls=None):
        calls.append(list(moves))
        gate.wait(10)
        return [MirrorImage(s, t, "sha256:" + "a" * 64, ("linux/amd64",), "copied", 10, None, None) for s, t in moves]

    slept: list[float] = []
    limiter = RateLimiter(reserve=2, clock=lambda: 1000.0, sleep=slept.append)
    limiter.observe(5, 1060)  # three requests to go before the reserve: the fourth of six waits, once
    mirror = SharedMirror(ensure)
    moves = {"one": [("a", "m/a"), ("b", "m/b")], "two": [("b", "m/b"), ("c", "m/c")], "three": [("a", "m/a")]}
    mp = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    with SharedObjects() as shared:
        proxies = (shared.share(mirror, MirrorProxy), shared.share(limiter, LimiterProxy),
                   shared.share(TokenSource(Secret("ghs_shared")), TokensProxy))
        pipes = {name: mp.Pipe(duplex=False) for name in moves}
        processes = [mp.Process(target=_ask, args=(*proxies, moves[name], pipes[name][1])) for name in moves]
        for process in processes:
            process.start()
        time.sleep(0.5)  # all three asking at once
        gate.set()
        results = {name: pipes[name][0].recv() for name in moves}
        for process in processes:
            process.join(10)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    assert sorted(move for call in calls for move in call) == [("a", "m/a"), ("b", "m/b"), ("c", "m/c")]
    assert results == {"one": ("ghs_shared", [("a", 5), ("b", None)]), "two": ("ghs_shared", [("b", None), ("c", None)]),
                       "three": ("ghs_shared", [("a", 5)])}
    assert mirror.calls == len(calls) and [i.source for i in mirror.images] == ["a", "b", "c"]
    assert slept == [61.0]  # one limiter for all: a copy in each process would never have waited
