"""The HTTP transport under every registry request: httpcore's connection pool, reading in bursts.

httpcore asks the network for at most 64 KiB at a time, and over TLS each read returns one record, 16 KiB.
Every read then makes a trip through h11, httpx, the blob's hashing and its re-sending, all in Python: a
gigabyte over TLS is 65,000 of them. Once a response is streaming, `_BurstStream` hands over everything that
has already arrived, up to `BURST` bytes: a blob copy spends its time moving bytes, not making trips.

httpx takes neither a read size nor a network backend, hence `Transport`: what `httpx.HTTPTransport` does for
a direct connection, on the public APIs of httpx and httpcore. (Proxies from the environment keep httpx's own
transport: the client mounts those over this one.)
"""
from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterable, Iterator

import httpcore
import httpx

BURST = 1 << 20
# A read that brought at least a whole TLS record means a response is streaming: more is probably waiting.
STREAMING = 16 << 10

# httpcore's errors as httpx's (the same hierarchy), the most specific first.
_AS_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """Raise httpcore's errors as httpx's, chained to the original (which names a cause such as a DNS failure)."""
    try:
        yield
    except Exception as exc:
        for theirs, ours in _AS_HTTPX_ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _BurstStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self._streaming = False

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # Small answers are read as httpcore asks: a 1 MiB buffer for each would cost more than it saves.
        data = self._stream.read(BURST if self._streaming else max_bytes, timeout)
        self._streaming = len(data) >= STREAMING
        return self._with_records_waiting(data) if self._streaming else data

    def _with_records_waiting(self, data: bytes) -> bytes:
        """Over TLS, the records already received after `data`, without waiting for more (plain TCP gave them
        all in one read). An error here is left for the next read, which reports it as httpcore does."""
        sock = self._stream.get_extra_info("socket")
        if not isinstance(sock, ssl.SSLSocket):
            return data
        pieces, size = [data], len(data)
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            while size < BURST:
                piece = sock.recv(BURST - size)
                if not piece:
                    break
                pieces.append(piece)
                size += len(piece)
        except OSError:  # ssl.SSLWantReadError above all: nothing more has arrived
            pass
        finally:
            sock.settimeout(timeout)
        return b"".join(pieces)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _BurstStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _BurstReads(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        return _BurstStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        return _BurstStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class Transport(httpx.BaseTransport):
    """Direct connections to one or more hosts, HTTP/1.1, `limits` as httpx's; `ssl_context` for https."""

    def __init__(self, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_BurstReads(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = request.url
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            answer = self._pool.handle_request(sent)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(status_code=answer.status, headers=answer.headers, stream=_Body(answer.stream),
                              extensions=answer.extensions)

    def close(self) -> None:
        self._pool.close()
