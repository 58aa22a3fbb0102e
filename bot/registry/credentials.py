"""Where the credentials for a registry come from.

Order, per registry host: credentials given on the command line (`--username` /
`--password-stdin`, for the destination), Docker's `config.json` (`credHelpers`
for that host, then `credsStore`, then `auths`), Google Application Default
Credentials for `*.pkg.dev` and `*gcr.io`, else anonymous.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot import jsontext
from bot.errors import ConfigError, RehomeError
from bot.registry.secret import Secret

log = logging.getLogger("rehome.registry")

DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_DOCKER_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")
GOOGLE_USERNAME = "oauth2accesstoken"
GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
HELPER_TIMEOUT = 30
# The answer of a helper that has no credentials for the server (docker-credential-helpers'
# `ErrCredentialsNotFound`, which every helper built on that library prints): on stdout, exit 1. Docker takes this
# exact text as "none", and any other failure as the helper's error.
NOT_FOUND_ANSWER = "credentials not found in native keychain"
# The exit code a shell gives for a command it cannot find: a helper script whose program is missing.
COMMAND_NOT_FOUND_EXIT = 127

class CredentialHelperError(RehomeError):
    """A credential helper that gave no usable answer: `server` is what it was asked about, `detail` what went wrong."""

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(f"{server}: credentials: {detail}")
        self.server = server
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Credential:
    """What to authenticate with; `source` says where it came from (safe to print)."""

    username: str | None = None
    password: Secret | None = None
    identity_token: Secret | None = None
    source: str = "anonymous (no credentials found)"

    @property
    def anonymous(self) -> bool:
        return self.password is None and self.identity_token is None


ANONYMOUS = Credential()


def _server_key(text: str) -> str:
    """`https://host/v1/` → `host`; Docker Hub's aliases → `docker.io`."""
    host = text.split("://", 1)[-1].split("/", 1)[0].lower()
    return "docker.io" if host in _DOCKER_HUB_NAMES else host


def is_google_host(host: str) -> bool:
    return host.endswith(".pkg.dev") or host == "gcr.io" or host.endswith(".gcr.io")


def docker_config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


_JSON_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
               float: "a number", type(None): "null"}
# The fields of an `auths` entry that rehome reads.
AUTHS_FIELDS = ("auth", "username", "password", "identitytoken")


def _checked(value: Any, kind: type, where: str, what: str) -> Any:
    """`value` when it is a `kind` or null (Docker takes null as absent); else a `ConfigError` saying what it
    must be."""
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"{where} must be {what}, not {_JSON_KINDS.get(type(value), type(value).__name__)}")
    return value


@dataclasses.dataclass(frozen=True)
class DockerConfig:
    """The credential settings of Docker's `config.json`; a file of another shape is refused, as Docker refuses it."""

    path: Path
    auths: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    cred_helpers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    creds_store: str | None = None

    @classmethod
    def from_json(cls, path: Path, data: Any) -> DockerConfig:
        top = _checked(data, dict, str(path), "a JSON object") or {}
        helpers = _checked(top.get("credHelpers"), dict, f'{path}: "credHelpers"',
                           "an object of registry -> helper name") or {}
        for host, name in helpers.items():
            _checked(name, str, f'{path}: "credHelpers" entry "{host}"', "a helper name (a string)")
        auths = _checked(top.get("auths"), dict, f'{path}: "auths"', "an object of registry -> credentials") or {}
        entries = {host: cls._auths_entry(f'{path}: "auths" entry "{host}"', entry) for host, entry in auths.items()}
        store = _checked(top.get("credsStore"), str, f'{path}: "credsStore"', "a helper name (a string)")
        return cls(path, entries, helpers, store or None)

    @staticmethod
    def _auths_entry(where: str, entry: Any) -> Mapping[str, str]:
        entry = _checked(entry, dict, where, 'an object such as {"auth": "base64 of user:password"}') or {}
        for field in AUTHS_FIELDS:
            _checked(entry.get(field), str, f'{where}: "{field}"', "a string")
        return entry


def load_docker_config(path: Path) -> DockerConfig:
    if not path.exists():
        return DockerConfig(path)
    if not path.is_file():
        raise ConfigError(f"{path}: Docker's credentials file is not a file")
    try:
        data = jsontext.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read Docker's credentials file: {exc}") from None
    return DockerConfig.from_json(path, data)


def _from_auths_entry(entry: Mapping[str, str], where: str, source: str) -> Credential | None:
    identity = entry.get("identitytoken")
    username, password = entry.get("username"), entry.get("password")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, colon, password = decoded.partition(":")
        if not colon:
            raise ConfigError(f'{where}: "auth" must be base64 of user:password')
    if identity:
        return Credential(username or None, None, Secret(identity), source)
    if username and password:
        return Credential(username, Secret(password), None, source)
    return None


def run_credential_helper(name: str, server: str, source: str) -> Credential | None:
    """`docker-credential-<name> get`; None when the helper has nothing for `server`."""
    program = f"docker-credential-{name}"
    try:
        proc = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=HELPER_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise CredentialHelperError(
            server, f"{program} is configured in Docker's config.json but is not installed") from None
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(server, f"{program} get did not answer in {HELPER_TIMEOUT}s") from None
    except OSError as exc:  # found on PATH but not runnable: not executable, or not a program
        raise CredentialHelperError(server, f"{program} cannot be run: {exc.strerror}") from None
    if proc.returncode != 0:
        if proc.stdout.strip() == NOT_FOUND_ANSWER.encode():
            return None
        raise CredentialHelperError(server, _helper_failure(program, server, proc.returncode))
    try:
        username, secret = _helper_answer(proc.stdout)
    except ValueError:
        raise CredentialHelperError(server, f"{program} get printed something that is not its JSON answer") from None
    if not secret:
        return None
    if username == "<token>":
        return Credential(None, None, Secret(secret), source)
    return Credential(username, Secret(secret), None, source)


def _helper_answer(stdout: bytes) -> tuple[str, str]:
    """The `Username` and `Secret` of a helper's JSON answer, a null read as empty (as Docker's Go decoder reads it);
    a ValueError for anything else (bytes that are not UTF-8 too)."""
    try:
        answer = jsontext.loads(stdout)
        username, secret = _null_as_empty(answer["Username"]), _null_as_empty(answer["Secret"])
    except (KeyError, TypeError):
        raise ValueError("not a helper's answer") from None
    if not isinstance(username, str) or not isinstance(secret, str):
        raise ValueError("not a helper's answer")
    return username, secret


def _null_as_empty(value: Any) -> Any:
    return "" if value is None else value


def _helper_failure(program: str, server: str, exit_code: int) -> str:
    """The exit code and the command that shows the helper's message. The message itself is never shown: a helper
    may put credentials in it (its own, or echoed back), and no masking catches every form they take."""
    why = ", which a shell gives for a command it cannot find" if exit_code == COMMAND_NOT_FOUND_EXIT else ""
    return (f"{program} get failed (exit {exit_code}{why}); what it printed is not shown, as it may hold "
            f"credentials: `echo {server} | {program} get` shows it")


def google_credential() -> Credential | None:
    """An access token from Application Default Credentials (needs the `gcp` extra)."""
    try:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests
    except ImportError:
        log.debug("google-auth is not installed (extra 'gcp'): not trying Application Default Credentials")
        return None
    try:
        credentials, _project = google.auth.default(scopes=[GOOGLE_SCOPE])
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as exc:
        log.debug("Application Default Credentials unavailable: %s", type(exc).__name__)
        return None
    return Credential(GOOGLE_USERNAME, Secret(credentials.token), None, "Google Application Default Credentials")


class CredentialStore:
    """Finds (once per host, thread-safely) the credentials for a registry host."""

    def __init__(
        self,
        explicit: Mapping[str, Credential] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._explicit = {_server_key(host): cred for host, cred in (explicit or {}).items()}
        self._environ = os.environ if environ is None else environ
        self._cache: dict[str, Credential] = {}
        self._lock = threading.Lock()

    def lookup(self, host: str) -> Credential:
        key = _server_key(host)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._find(key)
            return self._cache[key]

    def _find(self, key: str) -> Credential:
        if key in self._explicit:
            return self._explicit[key]
        config = load_docker_config(docker_config_path(self._environ))
        path = config.path
        server = DOCKER_HUB_SERVER if key == "docker.io" else key
        helper = next((name for host, name in config.cred_helpers.items() if _server_key(host) == key), None)
        if helper:
            found = run_credential_helper(helper, server, f"{path} credHelpers (docker-credential-{helper})")
            if found:
                return found
        if config.creds_store:
            store = config.creds_store
            found = run_credential_helper(store, server, f"{path} credsStore (docker-credential-{store})")
            if found:
                return found
        for host, entry in config.auths.items():
            if _server_key(host) == key:
                found = _from_auths_entry(entry, f'{path}: "auths" entry "{host}"', f"{path} auths")
                if found:
                    return found
        if is_google_host(key):
            found = google_credential()
            if found:
                return found
        return ANONYMOUS
