"""One registry host: base URL, scheme, authentication, retries, Docker Hub's pull quota."""
from __future__ import annotations

import dataclasses
import email.utils
import http.cookiejar
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx

from bot import __version__
from bot.imageref import on_loopback
from bot.output import plural
from bot.registry.auth import Authenticator
from bot.registry.credentials import Credential, CredentialStore
from bot.registry.errors import (
    TRIES, Cancelled, HostNotFound, RegistryError, RetryableError, TimedOut, Unreachable, after_tries, from_response,
    tries_of, with_tries,
)
from bot.registry.network import Transport

log = logging.getLogger("rehome.registry")

USER_AGENT = f"rehome/{__version__}"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DOCKER_HUB_API = "registry-1.docker.io"
# Below this many pulls left, say so; at or below `quota_reserve`, stop pulling.
QUOTA_WARNING = 20


class _PoolPerHost(httpx.BaseTransport):
    """A connection pool per host: httpcore's pool looks at every connection it holds for each request it
    places (quadratically when busy), so one pool shared by every registry costs noticeable CPU.

    Verifying certificates means loading the CA bundle, which costs a noticeable part of a second: it is
    loaded at the first HTTPS request, once for all hosts, and never when only plain-HTTP registries are used.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._pools: dict[tuple[str, str, int | None], Transport] = {}
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def _pool(self, url: httpx.URL) -> Transport:
        key = (url.scheme, url.host, url.port)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if url.scheme == "https":
                    self._tls = self._tls or httpx.create_ssl_context()
                pool = Transport(self._limits, self._tls if url.scheme == "https" else None)
                self._pools[key] = pool
            return pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._pool(request.url).handle_request(request)

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


class _NoCookies(http.cookiejar.CookieJar):
    """Registries authenticate by header, and Docker's own clients keep no cookies either; keeping each
    response's cookies costs a noticeable part of every request."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass

    def add_cookie_header(self, request: Any) -> None:
        pass


_TIMEOUTS = {
    httpx.ConnectTimeout: "no connection within the timeout",
    httpx.WriteTimeout: "could not send within the timeout",
    httpx.PoolTimeout: "no free connection within the timeout",
    httpx.ReadTimeout: "no answer within the timeout",
}


def transport_failure(exc: httpx.TransportError) -> tuple[str, str]:
    """What went wrong on the wire, and the exception's words: a timeout says which wait ran out."""
    what = _TIMEOUTS.get(type(exc), "connection failed")
    return what, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def retryable(exc: httpx.TransportError, where: str, step: str, detail: str) -> RetryableError:
    """A transport failure worth trying the whole step again for: `TimedOut` when it waited the whole timeout."""
    kind = TimedOut if isinstance(exc, httpx.TimeoutException) else RetryableError
    return kind(where, step, detail)


def tries_after(failure: Exception, attempt: int, tries: int) -> int:
    """How many tries a step gets once try `attempt` failed with `failure`. A try that timed out waited the whole
    timeout already: one more at most, so a registry that takes connections and never answers (or stalls mid-blob)
    holds the step for about two timeouts, not `tries` (minutes)."""
    if isinstance(failure, (httpx.TimeoutException, TimedOut)):
        return min(tries, attempt + 1)
    return tries


def _unknown_host(exc: httpx.TransportError) -> bool:
    """A name that does not resolve at all will not resolve on the next try either."""
    cause = exc.__context__ or exc.__cause__
    while cause is not None and not isinstance(cause, socket.gaierror):
        cause = cause.__context__ or cause.__cause__
    return isinstance(cause, socket.gaierror) and cause.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))


def _host_not_found(exc: httpx.TransportError) -> str:
    """Which host's name did not resolve: the registry's, or another it sends clients to (its token service)."""
    try:
        return f"host {exc.request.url.host} not found"
    except RuntimeError:  # an error raised without its request
        return "host not found"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    tries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; the server's Retry-After wins when it asks for longer."""
        backoff = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        if retry_after is not None:
            return min(self.max_delay, max(retry_after, backoff))
        return backoff


@dataclasses.dataclass(frozen=True)
class RateLimit:
    remaining: int
    limit: int | None
    window: int | None  # seconds


def api_host(domain: str) -> str:
    return DOCKER_HUB_API if domain == "docker.io" else domain


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_rate_limit(response: httpx.Response) -> RateLimit | None:
    """Docker Hub's `ratelimit-remaining: 76;w=21600` (and `ratelimit-limit`)."""
    remaining = response.headers.get("ratelimit-remaining")
    if remaining is None:
        return None

    def split(value: str | None) -> tuple[int | None, int | None]:
        if not value:
            return None, None
        count, _, rest = value.partition(";")
        window = rest.strip()[2:] if rest.strip().startswith("w=") else None
        try:
            return int(count), int(window) if window else None
        except ValueError:
            return None, None

    left, window = split(remaining)
    limit, _ = split(response.headers.get("ratelimit-limit"))
    return None if left is None else RateLimit(left, limit, window)


Content = bytes | Iterable[bytes] | None


class Registry:
    """Requests to one registry host, authenticated per repository scope and retried when safe."""

    def __init__(
        self,
        domain: str,
        *,
        http: httpx.Client,
        credential: Callable[[], Credential],
        insecure: bool,
        retry: RetryPolicy,
        quota_reserve: int = 5,
        sleep: Callable[[float], object] = time.sleep,
        cancelled: threading.Event | None = None,
        source_only: bool = False,
        is_destination: bool = False,
        warns_low_quota: bool = True,
    ) -> None:
        self.domain = domain
        # The destination's registry (known to be): what is wrong with its address is the --to option's.
        self.is_destination = is_destination
        # A source's registry, not the destination's: a refusal's fix is Docker's config.json, not --username.
        self.source_only = source_only
        self.scheme = "http" if insecure or on_loopback(domain) else "https"
        self.base_url = f"{self.scheme}://{api_host(domain)}"
        self.http = http
        self.auth = Authenticator(domain, credential, http, self.retrying, source_only=source_only)
        self.retry = retry
        self.quota_reserve = quota_reserve
        # False where the caller reports the pulls left itself (`rehome doctor`'s check line).
        self.warns_low_quota = warns_low_quota
        self.rate_limit: RateLimit | None = None
        # None until asked; False once the registry answered 404 to the OCI referrers API.
        self.serves_referrers: bool | None = None
        self.sleep = sleep
        # Set when the run is interrupted: no request starts after it, and downloads stop at the next chunk.
        self.cancelled = cancelled or threading.Event()
        # Set when a request got no answer after every try: the rest of the run does not ask this registry
        # again (each of its images would wait as long for the same failure), it fails them at once.
        self.down: Unreachable | None = None
        # What gave that failure no answer: the registry, or the token service it sends clients to.
        self.down_asked = "the registry"
        # The pulls left when the warning that few are left was given; None until then.
        self.quota_warned_at: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Registry({self.base_url!r})"

    def url(self, path_or_url: str) -> str:
        # Most are this registry's paths or absolute upload Locations: no URL parsing for those.
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        if path_or_url.startswith("/") and not path_or_url.startswith("//"):
            return self.base_url + path_or_url
        return str(httpx.URL(self.base_url).join(path_or_url))

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        repo: str,
        step: str,
        actions: Sequence[str] = ("pull",),
        extra_scopes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        content: Content = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
        cleanup_within: float | None = None,
    ) -> httpx.Response:
        """Send, authenticating on a 401; retry connection errors, 429 and 5xx when `retry` (idempotent steps).
        `cleanup_within`: a request that cleans up after a failed or interrupted step (cancelling an upload): sent
        once, even after an interrupt, waiting at most that many seconds for each part of the exchange.

        The caller judges the final status; a streamed response must be closed by the caller.
        """
        scopes = [f"repository:{repo}:{','.join(actions)}", *extra_scopes]
        url = self.url(path_or_url)
        where = f"{self.domain}/{repo}"
        resendable = content is None or isinstance(content, bytes)
        tries = self.retry.tries if retry and resendable and cleanup_within is None else 1
        timeout = self.http.timeout if cleanup_within is None else httpx.Timeout(cleanup_within)
        return self.retrying(
            lambda: self._send_authenticated(method, url, scopes, headers, content, params, stream, where, timeout),
            where, step, tries, interruptible=cleanup_within is None)

    def retrying(self, send: Callable[[], httpx.Response], where: str, step: str,
                 tries: int | None = None, *, interruptible: bool = True,
                 unreachable_hint: str | None = None, asked: str = "the registry") -> httpx.Response:
        """`send()` until it answers other than 429 or 5xx, or `tries` (default: the policy's) run out.
        A try that timed out is followed by one more at most. Not `interruptible`: sent after an interrupt too.
        `unreachable_hint`: the hint of the error for no answer, and of every later request's in this run, which
        say that `asked` gave none."""
        tries = tries or self.retry.tries
        attempt = 0
        while attempt < tries:
            attempt += 1
            if interruptible:
                self.check_cancelled(where, step)
            self.check_down(where, step, attempt - 1)
            try:
                response = send()
            except httpx.TransportError as exc:
                if _unknown_host(exc):
                    raise self._gone_down(HostNotFound(where, step, f"{_host_not_found(exc)} ({exc})",
                                                       unreachable_hint), asked) from None
                what, why = transport_failure(exc)
                tries = tries_after(exc, attempt, tries)
                if attempt == tries:
                    failure = f"{with_tries(what, attempt)} ({why})"
                    if tries == 1:  # a streamed upload, sent once: the whole step may be tried again
                        raise retryable(exc, where, step, failure) from None
                    raise self._gone_down(Unreachable(where, step, failure, unreachable_hint), asked) from None
                self.pause_before_retry(where, step, f"{what} ({why})", attempt, tries)
                continue
            except httpx.TooManyRedirects:
                raise RegistryError(where, step, "the registry redirected too many times (a redirect loop)") from None
            self._note_rate_limit(response)
            if response.status_code in RETRY_STATUSES and attempt < tries:
                response.close()
                self.pause_before_retry(where, step, f"HTTP {response.status_code}", attempt, tries,
                                        retry_after_seconds(response))
                continue
            response.extensions[TRIES] = attempt
            return response
        raise AssertionError("unreachable: the last try returns or raises")

    def pause_before_retry(self, where: str, step: str, reason: str, attempt: int, tries: int,
                           retry_after: float | None = None) -> None:
        """Say why try `attempt` failed, and wait before the next one; after an interrupt, stop instead
        (`Cancelled`): nothing is tried again, or said to be."""
        self.check_cancelled(where, step)
        delay = self.retry.delay(attempt, retry_after)
        log.info("%s: %s: %s; trying again in %.1fs (try %d of %d)", where, step, reason, delay, attempt + 1, tries)
        self.sleep(delay)

    def check_cancelled(self, where: str, step: str) -> None:
        if self.cancelled.is_set():
            raise Cancelled(where, step, "interrupted before it finished")

    def check_down(self, where: str, step: str, tries_made: int = 0) -> None:
        """A registry that gave no answer earlier in this run is not asked again: the same failure, at once.
        A request already tried (`tries_made`) that meets it between two tries stops there. Each keeps the first
        failure's hint (a token service to check rather than the registry)."""
        down = self.down
        if down is None:
            return
        if tries_made:
            raise Unreachable(where, step, f"gave up after {plural(tries_made, 'try', 'tries')}: {self.down_asked} "
                                           f"gave no answer to another request in this run: {down.detail}", down.hint)
        raise Unreachable(where, step, f"not asked: {self.down_asked} gave no answer earlier in this run: "
                                       f"{down.detail}", down.hint)

    def _gone_down(self, error: Unreachable, asked: str) -> Unreachable:
        with self._lock:
            if self.down is None:
                self.down, self.down_asked = error, asked
        return error

    def _send_authenticated(
        self,
        method: str,
        url: str,
        scopes: list[str],
        headers: Mapping[str, str] | None,
        content: Content,
        params: Mapping[str, str] | None,
        stream: bool,
        where: str,
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        for challenge_round in range(2):
            request = self.http.build_request(
                method, url, params=params, content=content,
                headers={**self.auth.headers(scopes, where), **(headers or {})}, timeout=timeout,
            )
            response = self.http.send(request, stream=stream)
            if response.status_code != 401 or challenge_round == 1:
                return response
            response.read()
            response.close()
            self.auth.challenged(response, scopes, where)
            if not (content is None or isinstance(content, bytes)):
                # A consumed stream cannot be sent again; the token was dropped, so retrying the whole step renews it.
                raise RetryableError(where, f"{method} {httpx.URL(url).path}", "HTTP 401 during a streamed upload (token expired?)")
        raise AssertionError("unreachable")

    def _note_rate_limit(self, response: httpx.Response) -> None:
        limit = parse_rate_limit(response)
        if limit is None:
            return
        with self._lock:
            self.rate_limit = limit
            if limit.remaining < QUOTA_WARNING and self.quota_warned_at is None and self.warns_low_quota:
                self.quota_warned_at = limit.remaining
                log.warning("%s: only %d pulls left in the rate-limit window", self.domain, limit.remaining)

    @property
    def meters_pulls(self) -> bool:
        """Whether manifest fetches count against a pull quota (Docker Hub's; a `HEAD` does not count)."""
        return self.domain == "docker.io" or self.rate_limit is not None

    def check_quota(self, repo: str, step: str) -> None:
        """Stop before a pull that would eat into the last few of Docker Hub's quota."""
        limit = self.rate_limit
        if limit is not None and limit.remaining <= self.quota_reserve:
            window = f" (the window is {limit.window // 3600}h)" if limit.window else ""
            raise RegistryError(
                f"{self.domain}/{repo}", step,
                f"stopped: only {limit.remaining} pulls left in the registry's rate limit{window}",
                "wait for the window to pass, or log in to raise the limit (docker login)",
            )

    def fail(self, repo: str, step: str, response: httpx.Response) -> RegistryError:
        if not response.is_closed:
            response.read()
        error = from_response(self.domain, repo, step, response, self.auth.credential, self.source_only)
        if response.status_code in RETRY_STATUSES and tries_of(response) > 1:
            return RegistryError(error.where, error.step, after_tries(error.detail, response), error.hint, error.status)
        if response.status_code in RETRY_STATUSES:  # asked once (a streamed upload): worth trying again whole
            return RetryableError(error.where, error.step, error.detail, error.hint, error.status,
                                  retry_after_seconds(response))
        return error


class Registries:
    """A `Registry` per host, sharing one HTTP connection pool and one credential store."""

    def __init__(
        self,
        *,
        credentials: CredentialStore | None = None,
        insecure: Iterable[str] = (),
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 60.0,
        connections: int = 32,
        quota_reserve: int = 5,
        sleep: Callable[[float], object] | None = None,
        transport: httpx.BaseTransport | None = None,
        destination: str | None = None,
        warns_low_quota: bool = True,
    ) -> None:
        """`destination`: the destination registry's host; every other host is a source's (None: not known).
        `warns_low_quota`: False where the caller reports the pulls left itself."""
        self.credentials = credentials or CredentialStore()
        self.warns_low_quota = warns_low_quota
        self.destination = destination
        self.insecure = frozenset(insecure)
        self.retry = retry
        self.quota_reserve = quota_reserve
        self.cancelled = threading.Event()
        self._sleep = sleep or self.cancelled.wait  # a pause before a retry ends at once when interrupted
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        mounts = None
        if transport is None:
            transport = _PoolPerHost(limits)
            mounts = {"http://": transport}  # plain HTTP goes direct, whatever proxy the environment names
        self.http = httpx.Client(
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            limits=limits,
            follow_redirects=True,
            cookies=_NoCookies(),
            transport=transport,
            mounts=mounts,
        )
        self._registries: dict[str, Registry] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Registries:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def cancel(self) -> None:
        """Interrupt: every registry stops starting requests, and downloads stop at their next chunk."""
        self.cancelled.set()

    def used(self) -> list[Registry]:
        with self._lock:
            return list(self._registries.values())

    def get(self, domain: str) -> Registry:
        with self._lock:
            if domain not in self._registries:
                self._registries[domain] = Registry(
                    domain,
                    http=self.http,
                    credential=lambda: self.credentials.lookup(domain),
                    insecure=domain in self.insecure,
                    retry=self.retry,
                    quota_reserve=self.quota_reserve,
                    sleep=self._sleep,
                    cancelled=self.cancelled,
                    source_only=self.destination is not None and domain != self.destination,
                    is_destination=domain == self.destination,
                    warns_low_quota=self.warns_low_quota,
                )
            return self._registries[domain]
