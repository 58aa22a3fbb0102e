"""What a sweep's worker processes share: the mirror step, the GitHub rate limiter and the token
source stay single objects in the sweep's own process, served to the workers by a
`multiprocessing.managers` server that runs on threads of that process; each worker holds proxies.

So an image is ensured once per sweep, the rate limit is counted once, and a GitHub App's token is
refreshed once, whatever the number of workers. A worker whose sweep process is gone fails at its
next call through a proxy: it cannot go on with a repository on its own.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from multiprocessing import current_process
from multiprocessing.connection import Client, Connection
from multiprocessing.managers import BaseProxy, Server, Token
from types import TracebackType
from typing import Any

from bot.mirror import MirrorImage, MirrorOptions
from bot.registry import Secret

SERIALIZER = "pickle"


class MirrorProxy(BaseProxy):
    """A worker's `SharedMirror`: the copies run in the sweep's process, each image once."""

    _exposed_ = ("__call__",)

    def __call__(self, moves: Sequence[tuple[str, str]], options: MirrorOptions, *,
                 pulls: Mapping[str, int | None] | None = None) -> list[MirrorImage]:
        result: list[MirrorImage] = self._callmethod(
            "__call__", (list(moves), options), {"pulls": None if pulls is None else dict(pulls)})
        return result


class LimiterProxy(BaseProxy):
    """A worker's `RateLimiter`."""

    _exposed_ = ("before", "observe")

    def before(self) -> None:
        self._callmethod("before")

    def observe(self, remaining: int, reset: float | None) -> None:
        self._callmethod("observe", (remaining, reset))

    def observe_requester(self, requester: Any) -> None:
        # The PyGithub requester stays in the worker: only its two numbers travel.
        remaining, _limit = requester.rate_limiting
        self.observe(remaining, requester.rate_limiting_resettime or None)


class TokensProxy(BaseProxy):
    """A worker's `TokenSource`."""

    _exposed_ = ("current",)

    def current(self) -> Secret | None:
        token: Secret | None = self._callmethod("current")
        return token


class SharedObjects:
    """A manager server for objects this process owns. `share` registers one and returns its proxy,
    which is handed to worker processes when they start (the proxy carries the key then)."""

    def __init__(self) -> None:
        self._authkey = bytes(current_process().authkey)
        self._server = Server({}, None, self._authkey, SERIALIZER)  # address None: a private socket
        self._server.stop_event = threading.Event()  # read by the threads serving each connection
        self._accepting = threading.Thread(target=self._accept, name="sweep-shared", daemon=True)
        self._accepting.start()

    def __enter__(self) -> SharedObjects:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def share(self, obj: Any, proxytype: type[BaseProxy]) -> Any:
        typeid = proxytype.__name__
        self._server.registry[typeid] = (None, proxytype._exposed_, None, proxytype)
        ident, _exposed = self._server.create(None, typeid, obj)  # held until the server stops
        return proxytype(Token(typeid, self._server.address, ident), SERIALIZER, authkey=self._authkey, incref=False)

    def _accept(self) -> None:
        # `Server.serve_forever` is not used: when it stops it resets sys.stdout and sys.stderr, and
        # its accept loop never ends; this one ends when the server is stopped.
        while True:
            try:
                conn: Connection = self._server.listener.accept()
            except OSError:
                return
            if self._server.stop_event.is_set():
                conn.close()
                return
            threading.Thread(target=self._server.handle_request, args=(conn,), name="sweep-shared-client",
                             daemon=True).start()

    def close(self) -> None:
        if self._server.stop_event.is_set():
            return
        self._server.stop_event.set()
        try:
            Client(self._server.address).close()  # wakes the accept loop (the key is checked after accept)
        except OSError:
            pass
        self._accepting.join(5)
        self._server.listener.close()
