"""Registry failures as `RehomeError`s that name the registry, repository and step."""
from __future__ import annotations

import re

import httpx

from bot import jsontext
from bot.errors import RehomeError
from bot.registry.credentials import Credential

_ARTIFACT_REGISTRY_RE = re.compile(r"(?P<location>[a-z0-9-]+)-docker\.pkg\.dev")


class RegistryError(RehomeError):
    """A registry request that failed: `where` is `host/repository`, `step` what was being done,
    `status` the HTTP status that said no (None when no answer said it)."""

    def __init__(self, where: str, step: str, detail: str, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(f"{where}: {step}: {detail}", hint)
        self.where = where
        self.step = step
        self.detail = detail
        self.status = status


class NotFound(RegistryError):
    """The registry answered that it has no such repository, tag, manifest or blob (HTTP 404): unlike a
    refused login or no answer at all, a dry run can tell the real run would fail on it just the same."""


class NotARegistry(NotFound):
    """A 404 from an address whose `/v2/` does not answer as a registry's does (a web server): no registry said it
    lacks the image, but the real run fails on it just the same."""


class RetryableError(RegistryError):
    """A failure worth trying again (connection lost, 429, 5xx, bytes that did not match); `retry_after` is how
    many seconds the registry asked to wait before the next try (its `Retry-After`), None when it did not say."""

    def __init__(self, where: str, step: str, detail: str, hint: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(where, step, detail, hint, status)
        self.retry_after = retry_after


class TimedOut(RetryableError):
    """A failure worth one more try at most: it waited the whole timeout already (a download that stalled
    part way, an upload not answered)."""


class Unreachable(RegistryError):
    """No answer from the registry (connection refused, timeouts), after every try."""


class HostNotFound(Unreachable):
    """The registry's host name does not resolve: no address to ask at all."""


class Cancelled(RegistryError):
    """The run was interrupted (Ctrl-C): this step was not started, or stopped part way."""


class ImmutableTagError(RegistryError):
    """The repository refuses to move an existing tag."""


class InsufficientScope(RegistryError):
    """A 401 whose challenge says `error="insufficient_scope"` to credentials that were sent: the registry took
    them, but they do not reach what was asked (a push, where they may only pull)."""


_INSUFFICIENT_SCOPE_RE = re.compile(r'\berror\s*=\s*"?insufficient_scope\b')


def error_codes(response: httpx.Response) -> list[tuple[str, str]]:
    """The `(code, message)` pairs of an OCI error body; empty when the body is not one."""
    try:
        body = jsontext.loads(response.content)
    except (ValueError, httpx.ResponseNotRead):
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [(str(e.get("code", "")), str(e.get("message", ""))) for e in errors if isinstance(e, dict)]


API_VERSION_HEADER = "Docker-Distribution-API-Version"
PUSH_METHODS = frozenset({"POST", "PUT", "PATCH"})  # the requests that write: uploads, mounts, manifest pushes


def sent_by_a_registry(response: httpx.Response) -> bool:
    """An answer that shows a registry sent it: the registry API's version header, or an OCI error body (a registry's
    404 names what it lacks: MANIFEST_UNKNOWN, NAME_UNKNOWN)."""
    return API_VERSION_HEADER in response.headers or bool(error_codes(response))


def speaks_registry_api(response: httpx.Response, *, header_required: bool = False) -> bool:
    """A registry answers `/v2/` with a challenge (401), or with 200 and its API version header. The header is only
    a SHOULD of the spec, and some registries leave it out: a 200 with a JSON body passes too, unless
    `header_required` (the host already gave an answer no registry gives)."""
    if response.status_code != 200:
        return response.status_code == 401
    if API_VERSION_HEADER in response.headers:
        return True
    if header_required:
        return False
    try:
        jsontext.loads(response.content or b"{}")
    except ValueError:
        return False
    return True


def not_a_registry(host: str, url: str, status: int) -> str:
    """What a server at `host` whose `/v2/` (`url`) answered `status` otherwise than a registry does is."""
    return f"{host} does not speak the registry API: {url} answered HTTP {status}, not as a registry does"


TRIES = "rehome.tries"  # in a response's extensions: how many times its request was sent


def tries_of(response: httpx.Response) -> int:
    return response.extensions.get(TRIES, 1)


def with_tries(detail: str, tries: int) -> str:
    """`detail`, saying how many times the request was sent when it was retried."""
    return f"{detail} after {tries} tries" if tries > 1 else detail


def after_tries(detail: str, response: httpx.Response) -> str:
    return with_tries(detail, tries_of(response))


def describe(response: httpx.Response) -> str:
    codes = error_codes(response)
    text = "; ".join(f"{code}: {message}" if message else code for code, message in codes)
    return f"HTTP {response.status_code}" + (f" ({text})" if text else "")


def artifact_registry_create_hint(host: str, repository: str) -> str | None:
    """The `gcloud` command that creates the Artifact Registry repository holding `repository`."""
    match = _ARTIFACT_REGISTRY_RE.fullmatch(host)
    parts = repository.split("/")
    if match is None or len(parts) < 2:
        return None
    project, name = parts[0], parts[1]
    return (
        f"the Artifact Registry repository does not exist; create it with: "
        f"gcloud artifacts repositories create {name} --repository-format=docker "
        f"--location={match.group('location')} --project={project}"
    )


def _login_action(credential: Credential | None) -> str:
    return "log in" if credential is None or credential.anonymous else "check them, or log in again"


def source_login_fix(host: str, credential: Credential | None) -> str:
    """What to do when a source's registry refuses: `rehome doctor --to` checks the destination's
    credentials, and `--username` gives only those."""
    return (f"{_login_action(credential)} with `docker login {host}`: a source's credentials come from Docker's "
            "config.json (`auths`, `credHelpers`, `credsStore`), never from --username/--password-stdin")


def destination_login_fix(where: str, credential: Credential | None) -> str:
    """What to do when the destination's registry refuses `where` (`host/repository`): log in, and check the
    credentials with `rehome doctor` on that repository."""
    host = where.split("/", 1)[0]
    return (f"{_login_action(credential)} with `docker login {host}` or --username USER --password-stdin; "
            f"`rehome doctor --to {where}` checks them")


def login_fix(where: str, credential: Credential | None, source_only: bool) -> str:
    """The fix for credentials the registry of `where` (`host/repository`) refused."""
    if source_only:
        return source_login_fix(where.split("/", 1)[0], credential)
    return destination_login_fix(where, credential)


def credentials_hint(where: str, credential: Credential | None, source_only: bool) -> str:
    """The hint for a 401 or 403: the credentials sent, and how to fix them."""
    used = f"the credentials used: {credential.source if credential else 'unknown'}"
    return f"{used}; {login_fix(where, credential, source_only)}"


def _insufficient_scope(response: httpx.Response) -> bool:
    return (response.status_code == 401
            and _INSUFFICIENT_SCOPE_RE.search(response.headers.get("WWW-Authenticate", "")) is not None)


def from_response(host: str, repository: str, step: str, response: httpx.Response,
                  credential: Credential | None = None, source_only: bool = False) -> RegistryError:
    """The error for an unexpected response, with a hint where one is known. `source_only`: the host is
    a source's registry, not the destination's."""
    where = f"{host}/{repository}"
    codes = error_codes(response)
    detail = describe(response)
    if any("immutable" in message.lower() for _, message in codes):
        return ImmutableTagError(where, step, f"refused because the repository has immutable tags ({detail})")
    hint = None
    if response.status_code == 404 and any(code == "NAME_UNKNOWN" for code, _ in codes):
        hint = artifact_registry_create_hint(host, repository)
    elif credential is not None and not credential.anonymous and _insufficient_scope(response):
        access = "push" if response.request.method in PUSH_METHODS else "pull"
        hint = (f"the credentials used: {credential.source} were accepted, but they have no {access} access to "
                f"{where}: grant it to them")
        return InsufficientScope(where, step, detail, hint, response.status_code)
    elif response.status_code in (401, 403):
        hint = credentials_hint(where, credential, source_only)
    elif response.status_code == 405 and response.request.method in PUSH_METHODS:
        hint = (f"{host} does not accept pushes (a read-only registry, or a pull-through cache, answers so): "
                "choose a destination that does")
    error = NotFound if response.status_code == 404 else RegistryError
    return error(where, step, detail, hint, response.status_code)
