"""How a sweep reaches GitHub: a token, or a GitHub App's installation tokens (refreshed before
they expire); the organisation's repositories (paginated) or a `--repos-file`."""
from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from github import Auth, Github, GithubException, GithubIntegration

from bot import textfile
from bot.errors import RehomeError, UsageError
from bot.forge.github import FAILURES, LOOPBACK, UNREADABLE_ANSWER, LoggingRetry, api_url, failure_text
from bot.options import missing_token, unset_variable
from bot.registry import Secret
from bot.sweep.ratelimit import RateLimiter
from bot.sweep.select import RepoInfo, Unreadable

log = logging.getLogger("rehome")

# An installation token lives an hour; a new one is asked for when less than this is left, so
# no repository's clone, push or pull request ever starts with a token about to expire.
REFRESH_BEFORE = datetime.timedelta(minutes=10)


class SweepError(RehomeError):
    """The sweep as a whole cannot go on (the organisation cannot be listed, no App installation)."""


@dataclasses.dataclass(frozen=True)
class AppCredentials:
    app_id: str
    private_key: Secret = dataclasses.field(repr=False)


class TokenSource:
    """The token for the next repository: a fixed one, or a GitHub App installation token."""

    def __init__(self, token: Secret | None = None, app: AppCredentials | None = None, *, org: str | None = None,
                 base_url: str = "https://api.github.com",
                 now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.timezone.utc)) -> None:
        if app is not None and org is None:
            raise UsageError("GitHub App authentication needs --org (the organisation it is installed in)")
        self._token, self._app, self._org, self._base_url, self._now = token, app, org, base_url, now
        self._lock = threading.Lock()
        self._installation: int | None = None
        self._expires: datetime.datetime | None = None

    def __repr__(self) -> str:
        return f"TokenSource(app={self._app!r}, org={self._org!r})"

    def current(self) -> Secret | None:
        if self._app is None:
            return self._token
        with self._lock:
            if self._token is None or self._expires is None or self._expires - self._now() < REFRESH_BEFORE:
                self._token, self._expires = self._new_installation_token()
            return self._token

    def _new_installation_token(self) -> tuple[Secret, datetime.datetime]:
        assert self._app is not None and self._org is not None
        integration = GithubIntegration(auth=Auth.AppAuth(self._app.app_id, self._app.private_key.reveal()),
                                        base_url=self._base_url, retry=LoggingRetry(total=5))
        try:
            if self._installation is None:
                self._installation = integration.get_org_installation(self._org).id
            granted = integration.get_access_token(self._installation)
        except FAILURES as exc:
            raise SweepError(failure_text(f"App {self._app.app_id}: no installation token for {self._org}", exc)) from None
        expires = granted.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=datetime.timezone.utc)
        log.info("GitHub App %s: new installation token for %s, valid until %s", self._app.app_id, self._org,
                 expires.strftime("%H:%M:%S UTC"), extra={"sweep_wide": True})  # for all repositories
        return Secret(granted.token), expires


def token_source(token_env: str, app_id: str | None, app_key_file: str | None, app_key_env: str | None,
                 environ: Mapping[str, str], *, org: str | None, github_url: str | None, required: bool) -> TokenSource:
    base_url = api_url(github_url)
    if app_id:
        if app_key_file:
            try:
                key = textfile.read_text(Path(app_key_file))
            except OSError as exc:
                raise UsageError(f"--app-key-file {app_key_file}: {exc.strerror}") from None
        elif app_key_env and environ.get(app_key_env):
            key = environ[app_key_env]
        elif app_key_env:
            raise UsageError(f"no GitHub App key: {unset_variable(app_key_env, environ)}",
                             hint=f"export {app_key_env}=… (the App's private key, PEM), name another variable "
                                  "with --app-key-env, or give --app-key-file FILE")
        else:
            raise UsageError("--app-id needs the App's private key: --app-key-file FILE or --app-key-env NAME")
        _check_private_key(key, f"--app-key-file {app_key_file}" if app_key_file else f"--app-key-env {app_key_env}")
        return TokenSource(app=AppCredentials(app_id, Secret(key)), org=org, base_url=base_url)
    value = environ.get(token_env)
    if not value and required:
        raise missing_token(token_env, environ, ", or use --app-id")
    return TokenSource(Secret(value) if value else None, base_url=base_url)


def _check_private_key(key: str, where: str) -> None:
    try:
        serialization.load_pem_private_key(key.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UsageError(f"{where}: not a PEM private key",
                         hint="give the .pem file GitHub made for the App (Settings → Developer settings → GitHub Apps)") from None


def client(tokens: TokenSource, github_url: str | None, *, lazy: bool = False) -> Github:
    """A PyGithub client for listing and status calls; its own pauses off (the limiter waits, logged)."""
    token = tokens.current()
    base_url = api_url(github_url)
    polite = (urlparse(base_url).hostname or "") not in LOOPBACK
    return Github(auth=Auth.Token(token.reveal()) if token else None, base_url=base_url,
                  retry=LoggingRetry(total=5, backoff_factor=1.0 if polite else 0.0),
                  seconds_between_requests=0, seconds_between_writes=0, per_page=100, lazy=lazy)


def _failed(what: str, exc: Exception) -> SweepError:
    return SweepError(failure_text(what, exc))


def repo_info(repo: Any) -> RepoInfo:
    """From a PyGithub repository of a listing, through its attributes: `raw_data` would fetch each
    repository again, one request per repository."""
    return RepoInfo.from_api({"full_name": repo.full_name, "default_branch": repo.default_branch,
                              "clone_url": repo.clone_url, "archived": repo.archived, "disabled": repo.disabled,
                              "fork": repo.fork, "size": repo.size, "topics": repo.topics})


def org_repositories(github: Github, org: str, limiter: RateLimiter) -> Iterator[RepoInfo]:
    """Every repository of the organisation, page by page (the limiter sees each page's answer)."""
    requester = github.requester
    limiter.before()
    last = (requester.rate_limiting, requester.rate_limiting_resettime)
    try:
        for repo in github.get_organization(org).get_repos(type="all"):
            seen = (requester.rate_limiting, requester.rate_limiting_resettime)
            if seen != last:  # a new page was fetched: its headers count, and the next page may wait
                last = seen
                limiter.observe_requester(requester)
                limiter.before()
            yield repo_info(repo)
    except FAILURES as exc:
        raise _failed(f"list the repositories of {org}", exc) from None
    finally:
        limiter.observe_requester(requester)


def read_repos_file(path: str) -> list[str]:
    """`owner/name` per line; blank lines and `#` comments ignored."""
    try:
        lines = textfile.read_text(Path(path)).splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--repos-file {path}: cannot read it: {exc}") from None
    names: dict[str, tuple[str, int]] = {}  # GitHub's names ignore case: one run per repository
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if text.count("/") != 1 or not all(text.split("/")):
            raise UsageError(f"--repos-file {path}:{number}: {text!r} is not owner/name")
        first = names.setdefault(text.lower(), (text, number))
        if first[1] != number:
            log.warning("--repos-file %s:%d: %s is already on line %d; it runs once", path, number, text, first[1])
    return [name for name, _number in names.values()]


def named_repositories(github: Github, names: list[str], limiter: RateLimiter) -> Iterator[RepoInfo | Unreadable]:
    """Each named repository's details, or its name and why it could not be read."""
    for name in names:
        limiter.before()
        try:
            yield RepoInfo.from_api(github.get_repo(name).raw_data)
        except (GithubException, *UNREADABLE_ANSWER) as exc:
            yield Unreadable(name, str(_failed(f"read repository {name}", exc)))
        except requests.RequestException as exc:  # GitHub out of reach: so for every other name too
            raise _failed(f"read repository {name}", exc) from None
        finally:
            limiter.observe_requester(github.requester)
