"""The GitHub forge (PyGithub): clone with the token, push the bot's branch, open or edit its one
pull request. GitHub Enterprise through `base_url` (`--github-url`).

PyGithub's own pauses are silent, so they are turned off and done here instead, logged:
against GitHub, a pause between requests and a longer one between writes (GitHub's guidance for
mutating requests); against a loopback stand-in, none. Rate-limit retries are logged too.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlparse

import requests
from github import Auth, Github, GithubException, GithubRetry, UnknownObjectException
from github.Repository import Repository
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from bot import git, jsontext
from bot.errors import RehomeError
from bot.forge.base import PullRequest, PullRequestRequest
from bot.git import Checkout
from bot.registry import Secret

log = logging.getLogger("rehome")

GITHUB_API = "https://api.github.com"
SECONDS_BETWEEN_REQUESTS = 0.25
SECONDS_BETWEEN_WRITES = 1.0
LABEL_COLOR = "0e8a16"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_TIMEOUT = 15  # seconds for each answer (PyGithub's default; it takes whole seconds)

T = TypeVar("T")


# What PyGithub raises for an answer it cannot decode: one that starts like JSON but is not, or one nested
# deeper than JSON can be read.
UNREADABLE_ANSWER = (json.JSONDecodeError, RecursionError)
# What a call to GitHub raises when GitHub says no (GithubException) or cannot be reached, or keeps
# failing (requests' ConnectionError, RetryError, …), or answers what cannot be read.
FAILURES = (GithubException, requests.RequestException, *UNREADABLE_ANSWER)


class GaveUp(ResponseError):
    """GitHub answered every try with an error status: the last one, and how many tries were made."""

    def __init__(self, status: int, reason: str | None, tries: int) -> None:
        super().__init__(f"HTTP {status} {reason or ''}".strip() + f" after {tries} tries")


def _gave_up(exc: Exception) -> GaveUp | None:
    """What LoggingRetry said when it gave up, inside the error requests raises then."""
    cause = exc.args[0] if isinstance(exc, requests.exceptions.RetryError) and exc.args else None
    reason = getattr(cause, "reason", None)
    return reason if isinstance(reason, GaveUp) else None


def failure_text(what: str, exc: Exception) -> str:
    if (gave_up := _gave_up(exc)) is not None:
        return f"GitHub: {what}: {gave_up}"
    if isinstance(exc, GithubException):
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        return f"GitHub: {what}: {exc.status} {message or exc.data or ''}".strip()
    if isinstance(exc, UNREADABLE_ANSWER):
        problem = jsontext.TOO_DEEP if isinstance(exc, RecursionError) else exc
        return f"GitHub: {what}: the answer is not JSON ({problem})"
    return f"GitHub: {what}: {type(exc).__name__}: {exc}"


class GitHubError(RehomeError):
    """A GitHub API call that failed: the status and GitHub's own message."""


class LoggingRetry(GithubRetry):
    """PyGithub's retry (rate limits, 5xx), saying how long each wait is. A POST whose answer was lost
    (a read timeout, a dropped connection) is not sent again: GitHub got it and may have acted on it,
    and a second one would open a second pull request."""

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> Retry:
        if error is not None and method == "POST" and self._is_read_error(error):
            raise error
        try:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError:
            if response is None or error is not None:
                raise
            # urllib3 says only "too many 502 error responses"; this says how many tries that was.
            raise MaxRetryError(_pool, url, GaveUp(response.status, response.reason, len(self.history) + 1)) from None

    def sleep(self, response: Any = None) -> None:
        wait = self.get_retry_after(response) if response is not None else None
        if wait is None:
            wait = self.get_backoff_time()
        if wait:
            log.warning("GitHub: waiting %.1fs before retrying (rate limit or server error)", wait)
        super().sleep(response)


def api_url(github_url: str | None) -> str:
    """The REST API root: api.github.com, or `https://HOST/api/v3` for a GitHub Enterprise host."""
    if not github_url:
        return GITHUB_API
    url = github_url.rstrip("/")
    host = urlparse(url).hostname or ""
    if host == "github.com":
        return GITHUB_API
    if host == "api.github.com" or host in LOOPBACK or url.endswith("/api/v3"):
        return url
    return url + "/api/v3"


class Pacer:
    """Waits between requests (and longer between writes), logging every wait."""

    def __init__(self, between_requests: float, between_writes: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.between_requests = between_requests
        self.between_writes = between_writes
        self._clock, self._sleep = clock, sleep
        self._last: float | None = None
        self._last_write: float | None = None

    def wait(self, write: bool) -> None:
        now = self._clock()
        due = 0.0
        if self._last is not None:
            due = max(due, self._last + self.between_requests - now)
        if write and self._last_write is not None:
            due = max(due, self._last_write + self.between_writes - now)
        if due > 0:
            log.info("GitHub: waiting %.2fs between %s", due, "writes" if write else "requests")
            self._sleep(due)
        self._last = self._clock()
        if write:
            self._last_write = self._last


class GitHubForge:
    name = "github"

    def __init__(self, repository: str, token: Secret | None, *, github_url: str | None = None,
                 polite: bool | None = None, limiter: Any = None, listed: Mapping[str, str] | None = None,
                 timeout: int = DEFAULT_TIMEOUT) -> None:
        self.repository = repository
        # `clone_url` and `default_branch` as a listing of the organisation gave them (a sweep): the
        # repository is then not read again, one request fewer for each repository.
        self.listed = listed
        self.limiter = limiter  # a sweep's shared rate limiter (bot.sweep.ratelimit.RateLimiter)
        self.token = token
        self.base_url = api_url(github_url)
        if polite is None:
            polite = (urlparse(self.base_url).hostname or "") not in LOOPBACK
        self.pacer = Pacer(SECONDS_BETWEEN_REQUESTS, SECONDS_BETWEEN_WRITES) if polite else Pacer(0.0, 0.0)
        self.github = Github(
            auth=Auth.Token(token.reveal()) if token else None,
            base_url=self.base_url,
            retry=LoggingRetry(total=5, backoff_factor=1.0 if polite else 0.0),
            seconds_between_requests=0,
            seconds_between_writes=0,
            timeout=timeout,
        )
        self._repo: Any = None
        self._found: dict[int, Any] = {}  # the pull requests find_pull_request found, by number
        self._pulls: dict[str, list[Any]] = {}  # each branch's pull requests, open or not, newest first

    def _call(self, what: str, call: Callable[[], T], write: bool = False) -> T:
        self.pacer.wait(write)
        if self.limiter is not None:
            self.limiter.before()
        try:
            return call()
        except FAILURES as exc:
            error = self._error(what, exc)
            if write and isinstance(exc, (requests.Timeout, requests.ConnectionError)):
                error.hint = ("the answer was lost, so GitHub may have done it; a rerun finds what it did "
                              "(its pull request, its labels) and does not do it twice")
            raise error from None
        finally:
            if self.limiter is not None:
                self.limiter.observe_requester(self.github.requester)

    def _error(self, what: str, exc: Exception) -> GitHubError:
        text = failure_text(what, exc)
        return GitHubError(text.replace(self.token.reveal(), "***") if self.token else text)

    @property
    def repo(self) -> Any:
        if self._repo is None and self.listed is not None:
            known = {**self.listed, "full_name": self.repository, "url": f"{self.base_url}/repos/{self.repository}"}
            self._repo = self.github.create_from_raw_data(Repository, known)
        if self._repo is None:
            self._repo = self._call(f"read repository {self.repository}", lambda: self.github.get_repo(self.repository))
        return self._repo

    @contextlib.contextmanager
    def checkout(self, dry_run: bool = False) -> Iterator[Checkout]:
        repo = self.repo
        with git.clone(repo.clone_url, repo.default_branch, self.token) as checkout:
            yield checkout

    def _branch_pulls(self, branch: str) -> list[Any]:
        """The pull requests from `branch`, open, merged or closed, newest first: one listing serves
        both the open one and the last closed one. Not filtered by base: the open one may be into the
        default branch as it was before it changed."""
        if branch not in self._pulls:
            owner = self.repository.split("/", 1)[0]
            pulls = self._call(f"list pull requests of {self.repository}", lambda: list(
                self.repo.get_pulls(state="all", head=f"{owner}:{branch}")))
            self._pulls[branch] = sorted((p for p in pulls if p.head.ref == branch), key=lambda p: -p.number)
        return self._pulls[branch]

    def find_pull_request(self, branch: str, base: str) -> PullRequest | None:
        # The one into `base` first: then one into the default branch as it was.
        opened = sorted((p for p in self._branch_pulls(branch) if p.state == "open"), key=lambda p: p.base.ref != base)
        if not opened:
            return None
        self._found[opened[0].number] = opened[0]  # as listed: with its labels, reviewers and assignees
        return _plain(opened[0])

    def closed_pull_request(self, branch: str) -> PullRequest | None:
        pulls = self._branch_pulls(branch)
        if pulls and pulls[0].state == "closed" and pulls[0].merged_at is None:
            return _plain(pulls[0])
        return None

    @property
    def reads_pull_requests(self) -> bool:
        return self.token is not None

    def retarget_pull_request(self, existing: PullRequest, base: str) -> PullRequest:
        pull = self._pull(existing)
        self._call(f"change the base of pull request {self.repository}#{pull.number} to {base}",
                   lambda: pull.edit(base=base), write=True)
        log.info("%s: its base is now %s, not %s", pull.html_url, base, existing.base)
        return dataclasses.replace(existing, base=base)

    def _pull(self, existing: PullRequest) -> Any:
        """The pull request as find_pull_request listed it, or else read."""
        number = existing.number
        return self._found.get(number) or self._call(f"read pull request {self.repository}#{number}",
                                                     lambda: self.repo.get_pull(number))

    def open_pull_request(self, request: PullRequestRequest, existing: PullRequest | None) -> PullRequest:
        if existing is not None:
            pull = self._pull(existing)
            self._call(f"edit pull request {self.repository}#{existing.number}",
                       lambda: pull.edit(title=request.title, body=request.body), write=True)
            log.info("updated %s", pull.html_url)
        else:
            pull = self._call(f"create pull request in {self.repository}", lambda: self.repo.create_pull(
                base=request.base, head=request.branch, title=request.title, body=request.body, draft=request.draft),
                write=True)
            log.info("opened %s", pull.html_url)
        warnings = self._complete(pull, request, existing_pull=existing is not None)
        return PullRequest(pull.number, pull.html_url, request.title, request.body, warnings, request.base)

    def complete_pull_request(self, request: PullRequestRequest, existing: PullRequest | None) -> PullRequest | None:
        if existing is None or existing.number is None:
            return existing
        return dataclasses.replace(existing, warnings=self._complete(self._pull(existing), request, existing_pull=True))

    def no_pull_request(self) -> None:
        pass

    def _complete(self, pull: Any, request: PullRequestRequest, existing_pull: bool) -> tuple[str, ...]:
        """Adds the labels, reviewers and assignees asked for and missing. The pull request is open
        whatever happens here: a failure is a warning, and the next run adds what is still missing."""
        steps = (("labels", self._add_labels), ("reviewers", self._add_reviewers), ("assignees", self._add_assignees))
        warnings = []
        for what, add in steps:
            try:
                add(pull, request, existing_pull)
            except GitHubError as exc:
                warnings.append(f"{pull.html_url}: its {what} could not be set ({exc.message}); the next run "
                                "tries again")
        return tuple(warnings)

    def _add_reviewers(self, pull: Any, request: PullRequestRequest, existing_pull: bool) -> None:
        """On a pull request that was there before, someone asked already, or who already reviewed
        it, is not asked again."""
        reviewers = list(request.reviewers)
        if existing_pull and reviewers:
            asked = {user.login for user in pull.requested_reviewers}
            reviewers = [name for name in reviewers if name not in asked]
        if existing_pull and reviewers:
            reviewed = self._call("list reviews", lambda: {review.user.login for review in pull.get_reviews()
                                                           if review.user is not None})
            reviewers = [name for name in reviewers if name not in reviewed]
        if reviewers:
            self._call("request reviewers", lambda: pull.create_review_request(reviewers=reviewers), write=True)

    def _add_assignees(self, pull: Any, request: PullRequestRequest, existing_pull: bool) -> None:
        assignees = list(request.assignees)
        if existing_pull and assignees:
            assignees = [name for name in assignees if name not in {user.login for user in pull.assignees}]
        if assignees:
            self._call("add assignees", lambda: pull.add_to_assignees(*assignees), write=True)

    def _add_labels(self, pull: Any, request: PullRequestRequest, existing_pull: bool) -> None:
        have = {label.name for label in pull.labels} if existing_pull else set()
        missing = [label for label in request.labels if label not in have]
        if not missing:
            return
        for label in missing:
            self._ensure_label(label)
        self._call("add labels", lambda: pull.add_to_labels(*missing), write=True)

    def _ensure_label(self, name: str) -> None:
        self.pacer.wait(write=False)
        try:
            self.repo.get_label(name)
            return
        except UnknownObjectException:
            pass
        except FAILURES as exc:
            raise self._error(f"read label {name!r}", exc) from None
        self._call(f"create label {name!r}", lambda: self.repo.create_label(
            name, LABEL_COLOR, "Pull requests that move container images to the team's mirror"), write=True)


def _plain(pull: Any) -> PullRequest:
    return PullRequest(pull.number, pull.html_url, pull.title, pull.body or "", base=pull.base.ref,
                       head_sha=pull.head.sha, head_ref=f"refs/pull/{pull.number}/head")
