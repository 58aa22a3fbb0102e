"""The pieces of the forge and git modules that need no repository: URLs, identities, waits."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import UsageError
from bot.forge.github import GITHUB_API, GitHubError, GitHubForge, Pacer, api_url
from bot.git import BOT, Identity, origin_repository
from bot.pipeline import split_list
from bot.registry import Secret
from tests.github.server import GitHubServer
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP, git, logged


@pytest.fixture
def debug_log() -> Iterator[list[str]]:
    with logged(logging.DEBUG) as messages:
        yield messages


def test_api_url_for_github_enterprise_and_loopback() -> None:
    assert api_url(None) == GITHUB_API
    assert api_url("https://github.com") == GITHUB_API
    assert api_url("https://ghe.example.com/") == "https://ghe.example.com/api/v3"
    assert api_url("https://ghe.example.com/api/v3") == "https://ghe.example.com/api/v3"
    assert api_url("http://127.0.0.1:8080/api/v3") == "http://127.0.0.1:8080/api/v3"


def test_politeness_is_kept_for_github_and_off_on_loopback() -> None:
    assert (GitHubForge("a/b", None).pacer.between_writes, GitHubForge("a/b", None).pacer.between_requests) == (1.0, 0.25)
    ghe = GitHubForge("a/b", None, github_url="https://ghe.example.com")
    assert (ghe.base_url, ghe.pacer.between_writes) == ("https://ghe.example.com/api/v3", 1.0)
    local = GitHubForge("a/b", None, github_url="http://127.0.0.1:9/api/v3")
    assert (local.pacer.between_requests, local.pacer.between_writes) == (0.0, 0.0)


def test_every_wait_is_logged(debug_log: list[str]) -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(0.25, 1.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait(write=True)
    now[0] += 0.1
    pacer.wait(write=False)
    pacer.wait(write=True)
    assert slept == [pytest.approx(0.15), pytest.approx(0.75)]
    assert debug_log == ["GitHub: waiting 0.15s between requests", "GitHub: waiting 0.75s between writes"]


def test_a_rate_limited_request_is_retried_after_a_logged_wait(debug_log: list[str]) -> None:
    server = GitHubServer()
    try:
        server.add_repo("acme/shop", "file:///nowhere.git")
        server.faults.append(("GET", r"/pulls$", 403, {"Retry-After": "1"}, {"message": "You have exceeded a secondary rate limit"}))
        forge = GitHubForge("acme/shop", Secret("t"), github_url=server.base_url)
        assert forge.find_pull_request("rehome/mirror-images", "main") is None
        assert [path for method, path in server.calls()] == ["/repos/acme/shop", "/repos/acme/shop/pulls",
                                                             "/repos/acme/shop/pulls"]
        assert any("waiting 1.0s before retrying" in m for m in debug_log), debug_log
    finally:
        server.stop()


@pytest.mark.parametrize(("faults", "message"), [
    pytest.param([("POST", r"/pulls$", 422, {}, {"message": "Validation Failed: secret-token-123"})],
                 "GitHub: create pull request in acme/shop: 422 Validation Failed: ***", id="refused"),
    pytest.param([("POST", r"/pulls$", 502, {}, b"<html><body>Bad gateway</body></html>")] * 6,
                 "GitHub: create pull request in acme/shop: HTTP 502 Bad Gateway after 6 tries", id="failing-each-try"),
])
def test_api_errors_carry_githubs_message_and_never_the_token(faults: list, message: str) -> None:
    server = GitHubServer()
    try:
        server.add_repo("acme/shop", "file:///nowhere.git")
        server.faults += faults
        forge = GitHubForge("acme/shop", Secret("secret-token-123"), github_url=server.base_url)
        from bot.forge import PullRequestRequest
        with pytest.raises(GitHubError) as caught:
            forge.open_pull_request(PullRequestRequest("b", "main", "t", "body"), None)
        assert str(caught.value) == message
        assert [path for method, path in server.calls() if method == "POST"] == ["/repos/acme/shop/pulls"] * len(faults)
    finally:
        server.stop()


def test_identity_and_lists() -> None:
    assert Identity.parse("Platform Bot <platform@example.com>") == Identity("Platform Bot", "platform@example.com")
    assert str(BOT) == "rehome-bot <rehome-bot@users.noreply.github.com>"
    with pytest.raises(UsageError):
        Identity.parse("no email")
    assert (split_list(None), split_list(""), split_list("a, b,,c")) == (None, (), ("a", "b", "c"))


@pytest.mark.parametrize("url", ["https://github.com/acme/shop.git", "https://github.com/acme/shop",
                                 "git@github.com:acme/shop.git", "ssh://git@ghe.example.com/acme/shop.git",
                                 "https://x-access-token@ghe.example.com/acme/shop/"])
def test_owner_and_name_from_the_origin_remote(tmp_path: Path, url: str) -> None:
    git(tmp_path, "init", "-q")
    git(tmp_path, "remote", "add", "origin", url)
    assert origin_repository(tmp_path) == "acme/shop"


def test_a_pull_request_whose_answer_is_lost_is_not_created_twice() -> None:
    """A POST that timed out reached GitHub, which may have opened the pull request: it is not sent again
    (a GET that timed out is)."""
    server = GitHubServer()
    try:
        server.add_repo("acme/shop", "file:///nowhere.git")
        server.delays.append(("POST", r"/pulls$", 2.0))
        forge = GitHubForge("acme/shop", Secret("token-0001"), github_url=server.base_url, timeout=1)
        from bot.forge import PullRequestRequest
        with pytest.raises(GitHubError) as caught:
            forge.open_pull_request(PullRequestRequest("b", "main", "t", "body"), None)
        assert str(caught.value).startswith("GitHub: create pull request in acme/shop: ReadTimeout: ")
        assert caught.value.hint == ("the answer was lost, so GitHub may have done it; a rerun finds what it did "
                                     "(its pull request, its labels) and does not do it twice")
        assert [path for method, path in server.calls() if method == "POST"] == ["/repos/acme/shop/pulls"]
    finally:
        server.stop()


@pytest.mark.parametrize(("answer", "problem"), [
    pytest.param(f'{{"full_name": {DEEP_JSON}}}'.encode(), NESTED_TOO_DEEP, id="nested-too-deep"),
    (b'{"full_name": ', "Expecting value: line 1 column 15 (char 14)"),
])
def test_an_answer_github_gave_that_is_not_json_is_named_with_the_call(answer: bytes, problem: str) -> None:
    server = GitHubServer()
    try:
        server.add_repo("acme/shop", "file:///nowhere.git")
        server.faults.append(("GET", r"^/repos/acme/shop$", 200, {}, answer))
        forge = GitHubForge("acme/shop", Secret("token-0001"), github_url=server.base_url)
        with pytest.raises(GitHubError) as caught:
            forge.find_pull_request("rehome/mirror-images", "main")
        assert str(caught.value) == f"GitHub: read repository acme/shop: the answer is not JSON ({problem})"
    finally:
        server.stop()
