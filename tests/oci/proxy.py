"""A loopback HTTP proxy in front of a real registry: records requests, injects faults, stands in for
features the 2.8 registry lacks (the OCI referrers API, `OCI-Chunk-Min-Length`)."""
from __future__ import annotations

import dataclasses
import re
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HANG_LIMIT = 60.0
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}


@dataclasses.dataclass
class Fault:
    """Do `action` to the first `times` requests matching `method` and the `path` regex.

    Actions: an int status (answered instead of forwarding, with `headers`), "reset-request" (drop the
    connection without forwarding), "reset-body" (forward, send half the body, drop the connection),
    "corrupt" (forward, flip one byte of the body), "hang" (forward, send half the body, then go silent
    until the proxy is reset or stopped, at most `HANG_LIMIT` seconds), "silent" (answer nothing at all,
    as long as "hang" stays silent).
    """

    method: str
    path: str
    action: int | str
    times: int = 1
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.fired < self.times and method == self.method and re.search(self.path, path) is not None


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Proxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        # Stand-ins: called before forwarding; an Answer replaces the registry's.
        self.routes: list[Callable[[str, str], Answer | None]] = []
        # Extra headers added to forwarded answers, by (method, path regex).
        self.add_headers: list[tuple[str, str, dict[str, str]]] = []
        self._client = httpx.Client(base_url=f"http://{upstream}", timeout=30.0)
        self._lock = threading.Lock()
        self._silence_over = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._silence_over.set()
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def reset(self) -> None:
        self._silence_over.set()  # what hangs ends now; what hangs from here on waits again
        self._silence_over = threading.Event()
        with self._lock:
            self.faults.clear()
            self.requests.clear()
            self.routes.clear()
            self.add_headers.clear()

    def count(self, method: str, path_regex: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and re.search(path_regex, p))

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.fired += 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _reset(self) -> None:
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True

            def _send(self, answer: Answer, head: bool, body: bytes | None = None) -> None:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", answer.headers.get("Content-Length", str(len(answer.body))) if head else str(len(answer.body)))
                self.end_headers()
                if not head:
                    self.wfile.write(answer.body if body is None else body)

            def _handle(self) -> None:
                method = self.command
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._fault_for(method, self.path)
                if fault is not None and isinstance(fault.action, int):
                    return self._send(Answer(fault.action, fault.headers, fault.body), head=False)
                if fault is not None and fault.action == "reset-request":
                    return self._reset()
                if fault is not None and fault.action == "silent":
                    proxy._silence_over.wait(HANG_LIMIT)
                    return self._reset()
                for route in proxy.routes:
                    answer = route(method, self.path)
                    if answer is not None:
                        return self._send(answer, head=method == "HEAD")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                response = proxy._client.request(method, self.path, headers=headers, content=body)
                out = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
                if method == "HEAD" and "content-length" in response.headers:
                    out["Content-Length"] = response.headers["content-length"]
                for add_method, pattern, extra in proxy.add_headers:
                    if add_method == method and re.search(pattern, self.path):
                        out.update(extra)
                answer = Answer(response.status_code, out, response.content)
                if fault is not None and fault.action in ("reset-body", "hang"):
                    self.send_response(answer.status)
                    for name, value in out.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body[: len(answer.body) // 2])
                    self.wfile.flush()
                    if fault.action == "hang":
                        proxy._silence_over.wait(HANG_LIMIT)
                    return self._reset()
                if fault is not None and fault.action == "corrupt" and answer.body:
                    corrupted = bytearray(answer.body)
                    corrupted[len(corrupted) // 2] ^= 0xFF
                    return self._send(answer, head=False, body=bytes(corrupted))
                self._send(answer, head=method == "HEAD")

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        return Handler
