"""A local stand-in for a Google REST API: records each request, answers from a handler function."""
from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: Any


Handler = Callable[[Request], "tuple[int, Any]"]  # an answer of bytes is sent as it is, anything else as JSON


@dataclasses.dataclass
class StandIn:
    url: str
    requests: list[Request]


@contextmanager
def serve(handler: Handler) -> Iterator[StandIn]:
    requests: list[Request] = []

    class RequestHandler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            content_type = self.headers.get("Content-Type", "")
            body: Any = json.loads(raw) if raw and "json" in content_type else raw.decode()
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Request(self.command, parts.path, parse_qs(parts.query), headers, body)
            requests.append(request)
            try:
                status, answer = handler(request)
            except Exception as exc:  # noqa: BLE001 - shown to the client instead of a dropped connection
                status, answer = 400, {"error": {"code": 400, "message": f"stand-in: {exc!r}"}}
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StandIn(f"http://127.0.0.1:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_adc(path: Any, token_url: str) -> Any:
    """Application Default Credentials: a service account key whose token endpoint is the stand-in
    (google-auth honours a key file's `token_uri`)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "acme-ops", "private_key_id": "test-key", "private_key": pem,
        "client_email": "rehome@acme-ops.iam.gserviceaccount.com", "client_id": "1", "token_uri": token_url,
    }))
    return path


def token_answer(request: Request) -> tuple[int, Any] | None:
    if request.path == "/token":
        return 200, {"access_token": "test-token", "expires_in": 3600, "token_type": "Bearer"}
    return None
