"""The transport: bursts of what has arrived instead of httpcore's 64 KiB reads (16 KiB records over TLS)."""
from __future__ import annotations

import ipaddress
import os
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.registry.network import BURST, Transport, _BurstStream
from tests.oci.servers import free_port, self_signed

LIMITS = httpx.Limits(max_connections=4)


class _Arrived(httpcore.NetworkStream):
    """A stream over bytes that have all arrived: each read returns as much as it asks for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[int] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.asked.append(max_bytes)
        piece, self.data = self.data[:max_bytes], self.data[max_bytes:]
        return piece


def test_small_answers_are_read_as_httpcore_asks_and_a_streaming_one_in_bursts() -> None:
    arrived = _Arrived(b"x" * 500)
    stream = _BurstStream(arrived)
    assert len(stream.read(65536)) == 500
    arrived.data = b"y" * (3 << 20)
    assert [len(stream.read(65536)) for _ in range(4)] == [65536, BURST, BURST, (3 << 20) - 65536 - 2 * BURST]
    arrived.data = b"z" * 500  # the next answer on the connection, once the last burst ended it
    assert len(stream.read(65536)) == 500
    assert len(stream.read(65536)) == 0
    assert arrived.asked == [65536, 65536, BURST, BURST, BURST, BURST, 65536]


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext, bytes]]:
    """An HTTPS server on loopback answering GET with 4 MB at once; the client's context trusts it."""
    body = os.urandom(4 << 20)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, "127.0.0.1", x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = serving.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trusting = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/blob", trusting, body
    finally:
        server.shutdown()
        server.server_close()


def test_over_tls_the_records_already_received_come_in_one_read(tls_server: tuple[str, ssl.SSLContext, bytes]) -> None:
    url, trusting, body = tls_server
    with httpx.Client(transport=Transport(LIMITS, trusting)) as client, client.stream("GET", url) as response:
        chunks = []
        for chunk in response.iter_raw():
            chunks.append(chunk)
            if len(chunks) == 1:
                time.sleep(0.2)  # the server keeps sending meanwhile: many records are waiting at the next read
    assert b"".join(chunks) == body
    assert max(len(chunk) for chunk in chunks) > 16 << 10  # more than one record at a time
    assert len(chunks) < len(body) // (16 << 10) // 2


def test_failures_are_httpx_errors_naming_their_cause(tls_server: tuple[str, ssl.SSLContext, bytes]) -> None:
    url, _, _ = tls_server
    with httpx.Client(transport=Transport(LIMITS, ssl.create_default_context())) as client:
        with pytest.raises(httpx.ConnectError) as untrusted:
            client.get(url)
        assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.value)
        with pytest.raises(httpx.ConnectError) as refused:
            client.get(f"http://127.0.0.1:{free_port()}/v2/")
        assert isinstance(refused.value.__cause__, httpcore.ConnectError)
        assert refused.value.request.url.path == "/v2/"
