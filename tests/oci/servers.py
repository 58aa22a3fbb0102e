"""Real registries (`docker-registry serve`) and a token server, on loopback, for the tests and the benchmark."""
from __future__ import annotations

import base64
import contextlib
import datetime
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

READY_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SilentServer:
    """A registry gone silent: accepts connections and never answers (nor reads) on any of them."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone may not
        self._socket.close()
        with self._changed:
            for connection in self._held:
                connection.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:  # shut down
                return
            with self._changed:
                self._held.append(connection)
                self._changed.notify_all()

    def accepted(self, at_least: int, timeout: float = 10.0) -> int:
        """How many connections it took, once it took `at_least` (or `timeout` seconds passed)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._held) >= at_least, timeout)
            return len(self._held)


def wait_until_ready(url: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05)):
        try:
            if httpx.get(url, timeout=1.0).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not become ready in {timeout}s")


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"


class RegistryServer:
    """`docker-registry serve` with filesystem storage in `root`, on 127.0.0.1:<free port>."""

    def __init__(self, root: Path, auth: dict | None = None) -> None:
        self.root = root
        self.auth = auth
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def config(self) -> dict:
        config: dict = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "rehome-tests"},
        }
        if self.auth:
            config["auth"] = self.auth
        return config

    def start(self) -> RegistryServer:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "config.yml"
        path.write_text(json.dumps(self.config()))  # JSON is YAML
        log = open(self.root / "registry.log", "wb")
        self._process = subprocess.Popen(["docker-registry", "serve", str(path)], stdout=log, stderr=log)
        try:
            wait_until_ready(f"http://{self.host}/v2/")
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"registry did not start: {(self.root / 'registry.log').read_text()[-2000:]}")
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def wipe(self) -> None:
        shutil.rmtree(self.root / "data", ignore_errors=True)

    def upload_sessions(self, repo: str) -> dict[str, int]:
        """The blob upload sessions the registry holds for `repo`, from its storage: id -> bytes received. (After
        answering a cancel, the 2.8 registry writes the session's hash state back: a folder holding only that is no
        session, the registry answers it is unknown.)"""
        uploads = self.root / "data" / "docker" / "registry" / "v2" / "repositories" / repo / "_uploads"
        if not uploads.is_dir():
            return {}
        return {session.name: (session / "data").stat().st_size if (session / "data").exists() else 0
                for session in uploads.iterdir() if (session / "startedat").exists()}


def self_signed(key: ec.EllipticCurvePrivateKey, common_name: str,
                extension: x509.ExtensionType = x509.BasicConstraints(ca=True, path_length=None)) -> x509.Certificate:
    """A certificate for a day, signed by its own `key`."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(extension, critical=isinstance(extension, x509.BasicConstraints))
        .sign(key, hashes.SHA256())
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues ES256 JWTs (certificate in `x5c`) for `docker-registry`'s token auth.

    GET with Basic credentials of a known user grants every action asked, `pull` only to `readers`;
    anonymous gets `pull` only; POST with `grant_type=refresh_token` accepts the known identity tokens.
    """

    service = "rehome-test"
    issuer = "rehome-test-issuer"

    def __init__(self, root: Path, users: dict[str, str], identity_tokens: dict[str, str] | None = None,
                 lifetime: int = 300, readers: frozenset[str] = frozenset()) -> None:
        self.users = users
        self.readers = readers
        self.identity_tokens = identity_tokens or {}
        self.lifetime = lifetime
        self.requests: list[dict] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._cert = self_signed(self._key, "rehome test token signer")
        root.mkdir(parents=True, exist_ok=True)
        self.cert_path = root / "token-cert.pem"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def registry_auth(self) -> dict:
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": str(self.cert_path)}}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def token(self, subject: str, scopes: list[str], anonymous: bool) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")[0], ":".join(scope.split(":")[1:-1]), scope.split(":")[-1].split(",")
            granted = ["pull"] if anonymous or subject in self.readers else actions
            access.append({"type": kind, "name": name, "actions": [a for a in actions if a in granted]})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + self.lifetime,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                scopes = query.get("scope", [])
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(user) != password:
                        server.requests.append({"method": "GET", "user": user, "scopes": scopes, "granted": False})
                        return self._answer(401, {"details": "bad credentials"})
                server.requests.append({"method": "GET", "user": user, "scopes": scopes, "granted": True})
                token = server.token(user or "", scopes, anonymous=user is None)
                self._answer(200, {"token": token, "expires_in": server.lifetime})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                scopes = " ".join(form.get("scope", [])).split()
                refresh = form.get("refresh_token", [""])[0]
                user = next((u for u, t in server.identity_tokens.items() if t == refresh), None)
                server.requests.append({"method": "POST", "user": user, "scopes": scopes, "granted": user is not None})
                if form.get("grant_type") != ["refresh_token"] or user is None:
                    return self._answer(401, {"error": "invalid_grant"})
                self._answer(200, {"access_token": server.token(user, scopes, anonymous=False),
                                   "expires_in": server.lifetime})

        return Handler
