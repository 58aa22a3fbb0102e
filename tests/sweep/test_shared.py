"""The objects a sweep's process shares with its worker processes: calls from real workers reach the
one object; what it raises is raised in the worker; what cannot travel, a closed server, a sweep
process that is gone and a wrong key give clear errors, promptly."""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Client, Connection
from typing import Any

import pytest

from bot.registry import Secret
from bot.sweep.access import SweepError, TokenSource
from bot.sweep.shared import SharedObjects, SharedProxy, TokensProxy
from bot.sweep.workers import START_METHOD

WAIT = 30.0  # seconds any answer may take on a busy machine
PROMPT = 5.0  # seconds within which a failure counts as prompt (a hang would take WAIT)


class Holding(Exception):
    """Pickles no more than the lock it holds."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class Picky(Exception):
    """Pickles, but cannot be made again from its one argument (the message)."""

    def __init__(self, image: str, reason: str) -> None:
        super().__init__(f"{image}: {reason}")


class Counter:
    """The object the sweep's process owns: it records who called it, and from which serving thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, threading.Thread]] = []
        self._lock = threading.Lock()

    def add(self, pid: int) -> int:
        with self._lock:
            self.calls.append((pid, threading.current_thread()))
            return len(self.calls)

    def fail(self, kind: str, message: str) -> None:
        raise {"value": ValueError(message), "sweep": SweepError(message, hint="check the App")}[kind]

    def lock(self) -> threading.Lock:
        return threading.Lock()

    def hold(self, message: str) -> None:
        raise Holding(message)

    def picky(self, image: str, reason: str) -> None:
        raise Picky(image, reason)


class CounterProxy(SharedProxy):
    methods = ("add", "fail", "lock", "hold", "picky")

    def add(self) -> int:
        total: int = self._call("add", os.getpid())
        return total

    def add_from_threads(self, threads: int, each: int) -> None:
        def work() -> None:
            for _ in range(each):
                self.add()

        started = [threading.Thread(target=work) for _ in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join(WAIT)

    def add_lock(self) -> None:
        self._call("add", threading.Lock())

    def fail(self, kind: str, message: str) -> None:
        self._call("fail", kind, message)

    def lock(self) -> Any:
        return self._call("lock")

    def hold(self, message: str) -> None:
        self._call("hold", message)

    def picky(self, image: str, reason: str) -> None:
        self._call("picky", image, reason)


def _obey(proxies: dict[str, SharedProxy], conn: Connection) -> None:
    """A worker process: `(proxy, method, args)` orders from the pipe, each answered with what came of it."""
    while (order := conn.recv()) is not None:
        name, method, args = order
        try:
            conn.send(("ok", getattr(proxies[name], method)(*args)))
        except Exception as exc:  # noqa: BLE001 - what the worker saw is the test's outcome
            conn.send(("raised", type(exc).__name__, str(exc)))


class Worker:
    """A real worker process, started as the sweep starts its workers, with the proxies it was given."""

    def __init__(self, **proxies: SharedProxy) -> None:
        mp = multiprocessing.get_context(START_METHOD)
        self._conn, theirs = mp.Pipe()
        self.process = mp.Process(target=_obey, args=(proxies, theirs))
        self.process.start()
        theirs.close()

    def ask(self, name: str, method: str, *args: Any) -> tuple[Any, ...]:
        self._conn.send((name, method, args))
        assert self._conn.poll(WAIT), f"{name}.{method}: no answer within {WAIT:.0f}s"
        answer: tuple[Any, ...] = self._conn.recv()
        return answer

    def timed(self, name: str, method: str, *args: Any) -> tuple[tuple[Any, ...], float]:
        start = time.monotonic()
        answer = self.ask(name, method, *args)
        return answer, time.monotonic() - start

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self.process.join(WAIT)
        if self.process.is_alive():
            self.process.kill()
        self._conn.close()


@pytest.fixture
def start() -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def started(**proxies: SharedProxy) -> Worker:
        workers.append(Worker(**proxies))
        return workers[-1]

    try:
        yield started
    finally:
        for worker in workers:
            worker.stop()


def _serving_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("sweep-shared")]


def test_calls_from_worker_processes_reach_the_one_object_each_process_over_one_connection(start) -> None:
    first, second = Counter(), Counter()
    with SharedObjects() as shared:
        proxies = {"first": shared.share(first, CounterProxy), "second": shared.share(second, CounterProxy)}
        workers = [start(**proxies), start(**proxies)]
        for worker in workers:  # two threads of each worker at once, then the other object
            assert worker.ask("first", "add_from_threads", 2, 5) == ("ok", None)
            assert worker.ask("second", "add") == ("ok", workers.index(worker) + 1)
    pids = sorted(worker.process.pid for worker in workers)
    assert sorted({pid for pid, _ in first.calls}) == pids and len(first.calls) == 2 * 2 * 5
    assert sorted(pid for pid, _ in second.calls) == pids
    # One serving thread per connection: both objects, all threads of a worker, over its one connection.
    threads = {pid: {thread for p, thread in first.calls + second.calls if p == pid} for pid in pids}
    assert [len(served) for served in threads.values()] == [1, 1]
    assert len(set.union(*threads.values())) == 2


@pytest.mark.parametrize(("kind", "raised"), [("value", ("ValueError", "no such image: nginx")),
                                              ("sweep", ("SweepError", "no such image: nginx\nhint: check the App"))])
def test_an_exception_raised_in_the_sweep_process_is_raised_in_the_worker(start, kind: str, raised) -> None:
    counter = Counter()
    with SharedObjects() as shared:
        worker = start(counter=shared.share(counter, CounterProxy))
        assert worker.ask("counter", "fail", kind, "no such image: nginx") == ("raised", *raised)
        assert worker.ask("counter", "add") == ("ok", 1)  # and the connection goes on


def test_what_cannot_travel_is_a_clear_error_and_the_connection_stays_in_step(start) -> None:
    counter = Counter()
    with SharedObjects() as shared:
        worker = start(counter=shared.share(counter, CounterProxy))
        assert worker.ask("counter", "lock") == (
            "raised", "SharedError", "Counter-1.lock: its result cannot be sent to the worker: "
                                     "TypeError: cannot pickle '_thread.lock' object")
        assert worker.ask("counter", "hold", "the lock is held") == (
            "raised", "SharedError", "Holding: the lock is held (raised in the sweep's process, and not sendable "
                                     "as it is: cannot pickle '_thread.lock' object)")
        kind, name, message = worker.ask("counter", "picky", "nginx", "gone")
        assert (kind, name) == ("raised", "SharedError")
        assert message.startswith("Picky: nginx: gone (raised in the sweep's process, and not sendable as it is: ")
        assert "missing 1 required positional argument: 'reason'" in message
        assert worker.ask("counter", "add_lock") == (
            "raised", "SharedError", "Counter-1.add: its arguments cannot be sent to the sweep's process: "
                                     "TypeError: cannot pickle '_thread.lock' object")
        assert worker.ask("counter", "add") == ("ok", 1)
    assert len(counter.calls) == 1


def test_after_the_server_closes_its_threads_end_and_calls_fail_promptly(start) -> None:
    counter = Counter()
    before = _serving_threads()
    shared = SharedObjects()
    proxy = shared.share(counter, CounterProxy)
    connected, fresh = start(counter=proxy), start(counter=proxy)
    assert connected.ask("counter", "add") == ("ok", 1)
    ours = [thread for thread in _serving_threads() if thread not in before]
    assert len(ours) == 2  # accepting, and serving `connected` (idle, still running)
    shared.close()
    for thread in ours:
        thread.join(PROMPT)
    assert [thread for thread in ours if thread.is_alive()] == []
    for worker in (connected, fresh):
        (kind, name, message), took = worker.timed("counter", "add")
        assert (kind, name) == ("raised", "SharedError") and took < PROMPT
        assert message.startswith("Counter-1.add: the sweep's process cannot be reached (it has ended, or closed its "
                                  "shared objects): ")
    assert len(counter.calls) == 1


def _host(conn: Connection) -> None:
    """A sweep's process: shares a counter, hands out its proxy, and lives until it is killed."""
    with SharedObjects() as shared:
        conn.send(shared.share(Counter(), CounterProxy))
        conn.recv()


def test_a_worker_whose_sweep_process_is_gone_fails_at_its_next_call_promptly(start) -> None:
    mp = multiprocessing.get_context(START_METHOD)
    ours, theirs = mp.Pipe()
    host = mp.Process(target=_host, args=(theirs,))
    host.start()
    try:
        assert ours.poll(WAIT)
        proxy = ours.recv()
        worker = start(counter=proxy)
        assert worker.ask("counter", "add") == ("ok", 1)
    finally:
        host.kill()
        host.join(WAIT)
    for worker in (worker, start(counter=proxy)):  # connected before, and never connected
        (kind, name, message), took = worker.timed("counter", "add")
        assert (kind, name) == ("raised", "SharedError") and took < PROMPT
        assert message.startswith("Counter-1.add: the sweep's process cannot be reached")


def test_a_wrong_key_is_refused_and_calls_nothing(start) -> None:
    counter = Counter()
    with SharedObjects() as shared:
        proxy = shared.share(counter, CounterProxy)
        forged = CounterProxy(dataclasses.replace(proxy.endpoint, authkey=os.urandom(32)), proxy.name)
        worker = start(forged=forged, counter=proxy)
        assert worker.ask("forged", "add") == (
            "raised", "SharedError", "Counter-1.add: the sweep's process refused this worker's key")
        # No key at all: a request where the answer to the server's challenge should be.
        with Client(shared.endpoint.address) as conn:
            conn.send_bytes(pickle.dumps(("Counter-1", "add", (0,), {})))
            ended = False
            while not ended and conn.poll(WAIT):
                try:
                    conn.recv_bytes()
                except EOFError:
                    ended = True
        assert ended
        assert counter.calls == []
        assert worker.ask("counter", "add") == ("ok", 1)  # the same worker, with the key


def test_only_shared_methods_can_be_called_and_no_repr_shows_the_key(start) -> None:
    with SharedObjects() as shared:
        tokens = shared.share(TokenSource(Secret("ghs_canary")), TokensProxy)
        assert repr(tokens) == "TokensProxy('TokenSource-1')"
        assert repr(tokens.endpoint) == f"Endpoint(address={shared.endpoint.address!r})"
        worker = start(tokens=tokens, sneaky=CounterProxy(tokens.endpoint, tokens.name))
        kind, token = worker.ask("tokens", "current")
        assert kind == "ok" and token.reveal() == "ghs_canary" and repr(token) == "Secret('********')"
        assert worker.ask("sneaky", "add") == ("raised", "SharedError", "TokenSource-1.add: not a shared method")
