"""The small rules of the client: schemes, URLs, challenges, retries, error messages."""
from __future__ import annotations

import logging

import httpx
import pytest

from bot import __version__
from bot.registry import CredentialStore, Registries, RetryPolicy
from bot.registry.auth import normalise_scope, parse_challenge, scope_key
from bot.registry.blobs import with_digest
from bot.registry.client import _PoolPerHost, parse_rate_limit, retry_after_seconds
from bot.registry.errors import Cancelled, ImmutableTagError, Unreachable, from_response
from bot.registry.manifests import head_digest, list_tags
from tests.helpers import DEEP_JSON, logged
from tests.oci.fixtures import FAST_RETRY, Loopback
from tests.oci.servers import SilentServer, free_port


def test_https_unless_loopback_or_insecure() -> None:
    with Registries(insecure=["registry.lan:5000"]) as registries:
        assert registries.get("quay.io").base_url == "https://quay.io"
        assert registries.get("docker.io").base_url == "https://registry-1.docker.io"
        assert registries.get("localhost:5000").base_url == "http://localhost:5000"
        assert registries.get("registry.lan:5000").base_url == "http://registry.lan:5000"
        assert registries.get("registry.lan").base_url == "https://registry.lan"
        assert registries.http.headers["User-Agent"] == f"rehome/{__version__}"


def test_urls_of_paths_and_upload_locations() -> None:
    with Registries() as registries:
        registry = registries.get("localhost:5000")
        assert [registry.url(u) for u in (
            "/v2/a/b/blobs/uploads/",
            "http://localhost:5000/v2/a/b/blobs/uploads/12?_state=x%3D",
            "https://storage.example/blob?sig=1",
            "12?_state=y",
            "//mirror.example/v2/a/b/blobs/uploads/13",
        )] == [
            "http://localhost:5000/v2/a/b/blobs/uploads/",
            "http://localhost:5000/v2/a/b/blobs/uploads/12?_state=x%3D",
            "https://storage.example/blob?sig=1",
            "http://localhost:5000/12?_state=y",
            "http://mirror.example/v2/a/b/blobs/uploads/13",
        ]


def test_a_pool_per_host_and_certificates_only_for_https(loopback: Loopback) -> None:
    transport = _PoolPerHost(httpx.Limits(max_connections=4))
    with httpx.Client(transport=transport) as client:
        for host in (loopback.upstream.host, loopback.target.host, loopback.upstream.host):
            assert client.get(f"http://{host}/v2/").status_code == 200
        assert sorted(transport._pools) == sorted(
            ("http", "127.0.0.1", int(host.rpartition(":")[2])) for host in (loopback.upstream.host, loopback.target.host))
        assert transport._tls is None
        with pytest.raises(httpx.ConnectError):
            client.get("https://127.0.0.1:1/v2/")
        assert transport._tls is not None
    assert transport._pools == {}


def test_a_registry_that_gave_no_answer_is_not_asked_again_in_the_run(registries: Registries) -> None:
    host = f"127.0.0.1:{free_port()}"
    with logged(logging.INFO) as messages:
        with pytest.raises(Unreachable) as first:
            list_tags(registries.get(host), "lib/one")
        with pytest.raises(Unreachable) as again:
            head_digest(registries.get(host), "lib/two", "1")
    refused = f"connection failed after {FAST_RETRY.tries} tries (ConnectError: [Errno 111] Connection refused)"
    assert (str(first.value), str(again.value)) == (
        f"{host}/lib/one: list tags: {refused}",
        f"{host}/lib/two: look up manifest: not asked: the registry gave no answer earlier in this run: {refused}",
    )
    assert len(messages) == FAST_RETRY.tries - 1  # the first request's retries, and no more
    with Registries() as next_run:
        assert next_run.get(host).down is None


def test_a_request_already_tried_stops_when_another_finds_the_registry_down(registries: Registries) -> None:
    host = f"127.0.0.1:{free_port()}"
    registry = registries.get(host)
    gone = f"connection failed after {FAST_RETRY.tries} tries (ConnectError: refused)"
    sent = []

    def send() -> httpx.Response:
        sent.append(len(sent) + 1)
        if len(sent) == 2:  # meanwhile another request to the registry used up its tries
            registry.down = Unreachable(f"{host}/lib/one", "list tags", gone)
        raise httpx.ConnectError("refused")

    with pytest.raises(Unreachable) as stopped:
        registry.retrying(send, f"{host}/lib/two", "look up manifest")
    assert str(stopped.value) == (f"{host}/lib/two: look up manifest: gave up after 2 tries: the registry gave no "
                                  f"answer to another request in this run: {gone}")
    assert sent == [1, 2]


def test_a_registry_that_takes_connections_and_never_answers_is_tried_twice_not_for_every_try(tmp_path) -> None:
    """Each try waits the whole timeout: the second ends the request, and the registry is down for the run."""
    credentials = CredentialStore(environ={"DOCKER_CONFIG": str(tmp_path)})
    with SilentServer() as silent, Registries(credentials=credentials, retry=FAST_RETRY, timeout=0.5) as registries:
        with logged(logging.INFO) as messages, pytest.raises(Unreachable) as caught:
            list_tags(registries.get(silent.host), "lib/app")
        assert silent.accepted(at_least=2) == 2
    assert str(caught.value) == (f"{silent.host}/lib/app: list tags: no answer within the timeout after 2 tries "
                                 "(ReadTimeout: timed out)")
    assert messages == [f"{silent.host}/lib/app: list tags: no answer within the timeout (ReadTimeout: timed out); "
                        "trying again in 0.0s (try 2 of 2)"]
    assert registries.get(silent.host).down is caught.value


def test_fast_failures_keep_their_retries_and_a_timeout_allows_one_more_try(registries: Registries) -> None:
    registry = registries.get("registry.example")
    sent: list[str] = []

    def send() -> httpx.Response:  # refused twice, then silent
        sent.append("refused" if len(sent) < 2 else "timed out")
        raise httpx.ConnectError("refused") if sent[-1] == "refused" else httpx.ReadTimeout("timed out")

    with pytest.raises(Unreachable) as caught:
        registry.retrying(send, "registry.example/lib/app", "list tags", tries=6)
    assert str(caught.value) == ("registry.example/lib/app: list tags: no answer within the timeout after 4 tries "
                                 "(ReadTimeout: timed out)")
    assert sent == ["refused", "refused", "timed out", "timed out"]


def test_a_try_that_fails_after_an_interrupt_is_not_tried_again_nor_said_to_be(registries: Registries) -> None:
    sent = []

    def send() -> httpx.Response:
        sent.append(len(sent) + 1)
        registries.cancel()  # Ctrl-C while the request was under way
        raise httpx.ReadError("connection reset")

    with logged(logging.INFO) as messages, pytest.raises(Cancelled) as caught:
        registries.get("registry.example").retrying(send, "registry.example/lib/app", "list tags")
    assert (str(caught.value), messages, sent) == (
        "registry.example/lib/app: list tags: interrupted before it finished", [], [1])


def test_cookies_a_registry_sets_are_not_sent_back() -> None:
    sent: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("Cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "AWSALB=sticky; Path=/"}, json={"name": "lib/app", "tags": ["1"]})

    with Registries(transport=httpx.MockTransport(answer)) as registries:
        registry = registries.get("registry.example")
        assert [list_tags(registry, "lib/app"), list_tags(registry, "lib/app"), sent] == [["1"], ["1"], [None, None]]


def test_upload_location_keeps_its_query() -> None:
    location = "http://r.example/v2/a/blobs/uploads/1234?_state=abc%3D%3D&x=1"
    assert with_digest(location, "sha256:00") == (
        "http://r.example/v2/a/blobs/uploads/1234?_state=abc%3D%3D&x=1&digest=sha256%3A00")
    assert with_digest("http://r.example/up/9", "sha256:00") == "http://r.example/up/9?digest=sha256%3A00"


def test_challenge_parsing() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull,push repository:other:pull"')
    assert challenge.scheme == "bearer"
    assert challenge.params["realm"] == "https://auth.docker.io/token"
    assert challenge.params["service"] == "registry.docker.io"
    assert challenge.scopes == ("repository:library/nginx:pull,push", "repository:other:pull")
    assert parse_challenge('Basic realm="Registry Realm"') .scheme == "basic"


def test_scope_keys_normalise_action_order() -> None:
    assert normalise_scope("repository:a/b:push,pull") == "repository:a/b:pull,push"
    assert normalise_scope("repository:a/b:pull,push,pull") == "repository:a/b:pull,push"
    assert scope_key(["repository:x:push,pull", "repository:a:pull"]) == scope_key(
        ["repository:a:pull", "repository:x:pull,push"])


def test_retry_after_and_backoff() -> None:
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_seconds(httpx.Response(429)) is None
    policy = RetryPolicy(tries=5, base_delay=1.0, max_delay=10.0)
    assert policy.delay(1, 30.0) == 10.0  # bounded even when the server asks for more
    assert policy.delay(2, 3.0) >= 3.0
    assert all(0 <= policy.delay(n, None) <= min(10.0, 2 ** (n - 1)) for n in range(1, 8) for _ in range(20))


def test_docker_hub_rate_limit_headers() -> None:
    limit = parse_rate_limit(httpx.Response(200, headers={"ratelimit-limit": "100;w=21600",
                                                          "ratelimit-remaining": "76;w=21600"}))
    assert (limit.remaining, limit.limit, limit.window) == (76, 100, 21600)
    assert parse_rate_limit(httpx.Response(200)) is None


def test_artifact_registry_missing_repository_prints_the_gcloud_command() -> None:
    response = httpx.Response(404, json={"errors": [
        {"code": "NAME_UNKNOWN", "message": 'Repository "mirror" not found'}]})
    error = from_response("europe-west1-docker.pkg.dev", "acme-prod/mirror/docker.io/library/nginx",
                          "check target", response)
    assert str(error) == (
        'europe-west1-docker.pkg.dev/acme-prod/mirror/docker.io/library/nginx: check target: '
        'HTTP 404 (NAME_UNKNOWN: Repository "mirror" not found)\n'
        "hint: the Artifact Registry repository does not exist; create it with: gcloud artifacts repositories "
        "create mirror --repository-format=docker --location=europe-west1 --project=acme-prod")
    elsewhere = from_response("quay.io", "a/b", "check target", response)
    assert elsewhere.hint is None


def test_immutable_tag_refusal_is_named() -> None:
    response = httpx.Response(400, json={"errors": [{"code": "MANIFEST_INVALID", "message":
                                                     "cannot update tag v1: the repository has immutable tags"}]})
    error = from_response("us-docker.pkg.dev", "p/r/app", "push manifest v1", response)
    assert isinstance(error, ImmutableTagError)
    assert error.detail.startswith("refused because the repository has immutable tags")


def test_an_error_answer_nested_too_deep_is_described_by_its_status() -> None:
    response = httpx.Response(400, content=f'{{"errors": {DEEP_JSON}}}'.encode())
    assert str(from_response("quay.io", "a/b", "push manifest v1", response)) == "quay.io/a/b: push manifest v1: HTTP 400"


def test_a_push_refused_with_405_says_the_registry_takes_no_pushes() -> None:
    unsupported = {"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}
    upload = httpx.Request("POST", "http://r.example/v2/a/b/blobs/uploads/")
    push = httpx.Response(405, json=unsupported, request=upload)
    assert str(from_response("r.example", "a/b", "start blob upload", push)) == (
        "r.example/a/b: start blob upload: HTTP 405 (UNSUPPORTED: The operation is unsupported.)\n"
        "hint: r.example does not accept pushes (a read-only registry, or a pull-through cache, answers so): "
        "choose a destination that does")
    read = httpx.Response(405, request=httpx.Request("GET", "http://r.example/v2/a/b/tags/list"))
    assert from_response("r.example", "a/b", "list tags", read).hint is None
