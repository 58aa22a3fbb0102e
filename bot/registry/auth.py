"""Registry authentication: Basic, and the Bearer token flow with a per-scope token cache."""
from __future__ import annotations

import base64
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import httpx

from bot import jsontext
from bot.registry.credentials import Credential
from bot.registry.errors import RegistryError, after_tries, describe, login_fix
from bot.registry.secret import Secret

_PARAM_RE = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
DEFAULT_TOKEN_LIFETIME = 60  # seconds, the token spec's default for a missing expires_in


@dataclasses.dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lowercase
    params: dict[str, str]

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())


def parse_challenge(header: str) -> Challenge:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)


def normalise_scope(scope: str) -> str:
    """`repository:a/b:push,pull` → `repository:a/b:pull,push` (actions sorted, once each)."""
    resource, sep, actions = scope.rpartition(":")
    if not sep:
        return scope
    return f"{resource}:{','.join(sorted(set(filter(None, actions.split(',')))))}"


def scope_key(scopes: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({normalise_scope(s) for s in scopes}))


def _basic_header(credential: Credential) -> str:
    assert credential.password is not None
    raw = f"{credential.username or ''}:{credential.password.reveal()}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclasses.dataclass
class _Token:
    value: Secret
    expires_at: float


class Retrying(Protocol):
    """`Registry.retrying`: send(), where, step -> the answer, retried as the registry's requests are."""

    def __call__(self, send: Callable[[], httpx.Response], where: str, step: str, *,
                 unreachable_hint: str | None = None, asked: str = "the registry") -> httpx.Response: ...


def _token_refusal_hint(status: int, credential: Credential, where: str, source_only: bool) -> str | None:
    if status in (401, 403):
        return f"the token service refused {_sent(credential)}; {login_fix(where, credential, source_only)}"
    if status == 429 or status >= 500:
        return "the token service is down or overloaded: try again later"
    return None


def _sent(credential: Credential) -> str:
    return "anonymous access" if credential.anonymous else f"the credentials from {credential.source}"


class Authenticator:
    """The Authorization header for one registry host, learnt from its challenges."""

    def __init__(
        self,
        host: str,
        credential: Callable[[], Credential],
        http: httpx.Client,
        retrying: Retrying,
        clock: Callable[[], float] = time.monotonic,
        source_only: bool = False,
    ) -> None:
        self.host = host
        self.source_only = source_only
        self._credential = credential
        self._http = http
        self._retrying = retrying  # the registry's retries (connection errors, 429, 5xx), for the token service
        self._clock = clock
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._wanted: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._lock = threading.Lock()
        self.token_requests = 0

    @property
    def credential(self) -> Credential:
        return self._credential()

    def headers(self, scopes: Iterable[str], where: str) -> dict[str, str]:
        """The header to send for a request to `where` (`host/repository`) needing `scopes`; empty until a challenge
        asked for one."""
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            credential = self._credential()
            return {} if credential.password is None else {"Authorization": _basic_header(credential)}
        if challenge.scheme == "bearer":
            return {"Authorization": f"Bearer {self._token(challenge, scope_key(scopes), where).reveal()}"}
        return {}

    def challenged(self, response: httpx.Response, scopes: Iterable[str], where: str) -> None:
        """Remember the 401's challenge and drop the token that was refused, so the next `headers` renews it."""
        header = response.headers.get("WWW-Authenticate")
        if not header:
            raise RegistryError(where, "authenticate", "HTTP 401 without a WWW-Authenticate challenge")
        challenge = parse_challenge(header)
        if challenge.scheme not in ("basic", "bearer"):
            raise RegistryError(where, "authenticate", f"unsupported authentication scheme {challenge.scheme!r}")
        key = scope_key(scopes)
        with self._lock:
            self._challenge = challenge
            self._tokens.pop(key, None)
            # Ask for what the registry says it needs as well as what this request needs.
            self._wanted[key] = scope_key([*key, *challenge.scopes])

    def _token(self, challenge: Challenge, key: tuple[str, ...], where: str) -> Secret:
        with self._lock:
            token = self._tokens.get(key)
            if token is not None and token.expires_at > self._clock():
                return token.value
            token = self._fetch_token(challenge, key, where)
            self._tokens[key] = token
            return token.value

    def _token_answer(self, send: Callable[[], httpx.Response], realm: str, step: str) -> httpx.Response:
        """The token service's answer, retried as the registry's are; no answer at all is the token service's
        failure, whose fix is not the registry's (which answered: it sent the challenge)."""
        hint = f"check that the token service at {realm} runs: {self.host} answers, and sends clients there for a token"
        return self._retrying(send, self.host, step, unreachable_hint=hint, asked="the registry's token service")

    def _fetch_token(self, challenge: Challenge, key: tuple[str, ...], where: str) -> _Token:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(self.host, "authenticate", "the Bearer challenge names no realm")
        service = challenge.params.get("service")
        scopes = self._wanted.get(key, key)
        credential = self._credential()
        self.token_requests += 1
        step = f"get a token from {realm} for {' '.join(scopes)}"
        if credential.identity_token is not None:
            data = {"grant_type": "refresh_token", "refresh_token": credential.identity_token.reveal(),
                    "client_id": "rehome", "scope": " ".join(scopes)}
            if service:
                data["service"] = service
            response = self._token_answer(lambda: self._http.post(realm, data=data), realm, step)
        else:
            params = [("scope", s) for s in scopes]
            if service:
                params.insert(0, ("service", service))
            headers = {} if credential.password is None else {"Authorization": _basic_header(credential)}
            response = self._token_answer(lambda: self._http.get(realm, params=params, headers=headers), realm, step)
        if response.status_code != 200:
            raise RegistryError(self.host, step, after_tries(describe(response), response),
                                _token_refusal_hint(response.status_code, credential, where, self.source_only),
                                response.status_code)
        try:
            body = jsontext.loads(response.content)
            value = body.get("token") or body.get("access_token")
            lifetime = int(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            value = None
        if not value:
            raise RegistryError(self.host, f"get a token from {realm}", "the answer holds no token")
        # Renew a little early so a token does not expire between being chosen and being checked.
        return _Token(Secret(value), self._clock() + lifetime * 0.8)

