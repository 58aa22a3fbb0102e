"""What a sweep's worker processes share: the mirror step, the GitHub rate limiter and the token
source stay single objects in the sweep's own process; each worker holds proxies that call them.

So an image is ensured once per sweep, the rate limit is counted once, and a GitHub App's token is
refreshed once, whatever the number of workers.

The calls travel over `multiprocessing.connection`: `SharedObjects` listens on a private socket,
and serves each worker's connection on a thread of its own. A worker opens one connection, at its
first call, proves it holds the key the proxies carry, then sends `(object name, method, args,
kwargs)` and reads `("ok", result)` or `("error", exception)`; the exception is raised again in the
worker. What cannot be pickled on its way (arguments, a result, an exception) becomes a
`SharedError` that says so, and the connection stays usable.

A worker whose sweep process is gone fails at its next call with a `SharedError`: a new connection
is refused, an open one reads end-of-file (the system closes a process's end when it ends). Waiting
for the server's greeting is bounded; a call itself waits as long as the object takes (a copy, the
rate limit's reset). Closing `SharedObjects` wakes and ends its threads: the one accepting connections
and each one waiting for a worker's next call.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import threading
from collections.abc import Mapping, Sequence
from multiprocessing import AuthenticationError, Pipe
from multiprocessing.connection import Client, Connection, Listener, answer_challenge, deliver_challenge, wait
from types import TracebackType
from typing import Any

from bot.errors import RehomeError
from bot.mirror import MirrorImage, MirrorOptions
from bot.registry import Secret

CONNECT_TIMEOUT = 30.0  # seconds a worker waits for the sweep's process to greet a new connection
CLOSE_TIMEOUT = 5.0  # seconds `close` waits for the accepting thread


class SharedError(RehomeError):
    """A call to the sweep's process could not be made, or its answer not be read."""


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where a worker reaches the shared objects, and the key it proves itself with."""

    address: Any  # a Listener address: a socket path, or (host, port) where there are no Unix sockets
    authkey: bytes = dataclasses.field(repr=False)


class SharedProxy:
    """A worker's stand-in for one object of the sweep's process; `methods` are the ones it may call.
    It holds no connection, so it pickles as it is: it is handed to a worker when the worker starts."""

    methods: tuple[str, ...] = ()

    def __init__(self, endpoint: Endpoint, name: str) -> None:
        self.endpoint = endpoint
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _channel(self.endpoint).call(self.name, method, args, kwargs)


class MirrorProxy(SharedProxy):
    """A worker's `SharedMirror`: the copies run in the sweep's process, each image once."""

    methods = ("__call__",)

    def __call__(self, moves: Sequence[tuple[str, str]], options: MirrorOptions, *,
                 pulls: Mapping[str, int | None] | None = None, repo: str | None = None) -> list[MirrorImage]:
        result: list[MirrorImage] = self._call("__call__", list(moves), options,
                                               pulls=None if pulls is None else dict(pulls), repo=repo)
        return result


class LimiterProxy(SharedProxy):
    """A worker's `RateLimiter`."""

    methods = ("before", "observe")

    def before(self) -> None:
        self._call("before")

    def observe(self, remaining: int, reset: float | None) -> None:
        self._call("observe", remaining, reset)

    def observe_requester(self, requester: Any) -> None:
        # The PyGithub requester stays in the worker: only its two numbers travel.
        remaining, _limit = requester.rate_limiting
        self.observe(remaining, requester.rate_limiting_resettime or None)


class TokensProxy(SharedProxy):
    """A worker's `TokenSource`."""

    methods = ("current",)

    def current(self) -> Secret | None:
        token: Secret | None = self._call("current")
        return token


# --- in the sweep's process --------------------------------------------------------------------

class SharedObjects:
    """Serves objects this process owns. `share` registers one and returns its proxy."""

    def __init__(self) -> None:
        self._authkey = os.urandom(32)
        # No key given to the Listener: each connection's thread checks it (below), so a client
        # that stalls in the handshake holds up no other.
        self._listener = Listener(backlog=16)  # room for every worker connecting at once
        self.endpoint = Endpoint(self._listener.address, self._authkey)
        self._objects: dict[str, tuple[Any, tuple[str, ...]]] = {}
        self._closed = False
        self._stopping, self._stop = Pipe(duplex=False)  # a message on it wakes every thread waiting for a call
        self._accepting = threading.Thread(target=self._accept, name="sweep-shared", daemon=True)
        self._accepting.start()

    def __enter__(self) -> SharedObjects:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def share(self, obj: Any, proxytype: type[SharedProxy]) -> Any:
        name = f"{type(obj).__name__}-{len(self._objects) + 1}"
        self._objects[name] = (obj, proxytype.methods)
        return proxytype(self.endpoint, name)

    def _accept(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except OSError:
                return
            if self._closed:
                conn.close()
                return
            threading.Thread(target=self._serve, args=(conn,), name="sweep-shared-client", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        """One worker's calls, one after the other, until it ends or this server closes."""
        with conn:
            try:
                deliver_challenge(conn, self._authkey)
                answer_challenge(conn, self._authkey)
            except (AuthenticationError, EOFError, OSError):
                return  # a wrong key is told so by the handshake
            while self._stopping not in wait([conn, self._stopping]):
                try:
                    request = conn.recv_bytes()
                    conn.send_bytes(self._answer(request))
                except (EOFError, OSError):
                    return  # the worker has ended

    def _answer(self, request: bytes) -> bytes:
        try:
            name, method, args, kwargs = pickle.loads(request)
            where = f"{name}.{method}"
            obj, methods = self._objects.get(name, (None, ()))
            if method not in methods:
                raise SharedError(f"{where}: not a shared method")
            result = getattr(obj, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - raised again in the worker
            return _error(exc)
        try:
            return pickle.dumps(("ok", result))
        except Exception as exc:  # noqa: BLE001 - the worker is told, and the connection stays in step
            return _error(SharedError(f"{where}: its result cannot be sent to the worker: {_text(exc)}"))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.send_bytes(b"close")  # never read: `_stopping` stays ready for every thread that waits on it
        self._stop.close()
        try:
            Client(self._listener.address).close()  # wakes the accepting thread
        except OSError:
            pass
        self._accepting.join(CLOSE_TIMEOUT)
        self._listener.close()


def _error(exc: Exception) -> bytes:
    """("error", exc), pickled; when exc would not arrive whole, a SharedError with its type and text."""
    try:
        answer = pickle.dumps(("error", exc))
        pickle.loads(answer)  # as the worker will: an exception whose __init__ wants other arguments fails here
        return answer
    except Exception as failure:  # noqa: BLE001 - replaced by what can be sent
        return pickle.dumps(("error", SharedError(
            f"{_text(exc)} (raised in the sweep's process, and not sendable as it is: {failure})")))


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- in a worker process -----------------------------------------------------------------------

class _Channel:
    """This process's connection to one `SharedObjects`: opened at the first call, then reused; one
    call at a time on it, whichever thread makes it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    def call(self, name: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        where = f"{name}.{method}"
        try:
            request = pickle.dumps((name, method, args, kwargs))
        except Exception as exc:  # noqa: BLE001 - nothing was sent
            raise SharedError(f"{where}: its arguments cannot be sent to the sweep's process: {_text(exc)}") from None
        with self._lock:
            try:
                answer = self._exchange(request)
            except BaseException as exc:
                self._drop()  # a half-done exchange would leave the connection out of step
                if isinstance(exc, (EOFError, OSError)):
                    raise SharedError(f"{where}: the sweep's process cannot be reached (it has ended, or closed its "
                                      f"shared objects): {_text(exc)}") from None
                if isinstance(exc, AuthenticationError):
                    raise SharedError(f"{where}: the sweep's process refused this worker's key") from None
                raise
        try:
            status, value = pickle.loads(answer)
        except Exception as exc:  # noqa: BLE001 - the class of the answer cannot be made here
            raise SharedError(f"{where}: its answer cannot be read in this process: {_text(exc)}") from None
        if status == "error":
            raise value
        return value

    def _exchange(self, request: bytes) -> bytes:
        if self._conn is None:
            self._conn = _connect(self._endpoint)
        self._conn.send_bytes(request)
        return self._conn.recv_bytes()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _connect(endpoint: Endpoint) -> Connection:
    conn = Client(endpoint.address)  # the key is proven below, after a bounded wait for the greeting
    try:
        if not conn.poll(CONNECT_TIMEOUT):
            raise TimeoutError(f"no greeting within {CONNECT_TIMEOUT:.0f}s")
        answer_challenge(conn, endpoint.authkey)
        deliver_challenge(conn, endpoint.authkey)
    except BaseException:
        conn.close()
        raise
    return conn


_channels: dict[tuple[int, Endpoint], _Channel] = {}
_channels_lock = threading.Lock()


def _channel(endpoint: Endpoint) -> _Channel:
    # Keyed by process too: a forked child opens its own connection rather than using its parent's.
    key = (os.getpid(), endpoint)
    with _channels_lock:
        if key not in _channels:
            _channels[key] = _Channel(endpoint)
        return _channels[key]
