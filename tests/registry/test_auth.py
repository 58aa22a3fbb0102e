"""Authentication against real registries: htpasswd Basic, token auth, Docker's config.json and helpers."""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from bot.registry import Copier, CredentialStore, Registries, RegistryError, Secret
from bot.registry.credentials import ANONYMOUS, Credential, google_credential
from bot.registry.errors import Unreachable
from bot.registry.manifests import head_digest
from tests.helpers import DEEP_JSON
from tests.oci import images
from tests.oci.fixtures import (BASIC_USER, CANARY_PASSWORD, FAST_RETRY, IDENTITY_TOKEN, READER_USER, TOKEN_USER,
                                Loopback, basic_credential, make_registries, token_credential, unique_repo)
from tests.oci.proxy import Answer, Proxy
from tests.oci.servers import free_port


def copy_into(loopback: Loopback, registries: Registries, target_host: str) -> tuple[images.Image, str, object]:
    image = images.image()
    src = unique_repo("upstream")
    images.push(loopback.upstream.host, src, image, "v1")
    dst = unique_repo("mirror")
    with Copier(registries) as copier:
        return image, dst, copier.ensure(f"{loopback.upstream.host}/{src}:v1", f"{target_host}/{dst}:v1")


def docker_config(tmp_path: Path, config: dict) -> dict[str, str]:
    folder = tmp_path / "docker"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(folder), "PATH": os.environ.get("PATH", "")}


def no_docker_config(tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "none")}


def test_basic_auth_with_explicit_credentials(loopback: Loopback, tmp_path: Path) -> None:
    with make_registries(no_docker_config(tmp_path), {loopback.basic.host: basic_credential()}) as registries:
        image, dst, result = copy_into(loopback, registries, loopback.basic.host)
        assert (result.status, result.error) == ("copied", None)
        assert head_digest(registries.get(loopback.basic.host), dst, "v1") == image.digest


def test_basic_auth_refused_says_where_and_what_to_do(loopback: Loopback, tmp_path: Path) -> None:
    with make_registries(no_docker_config(tmp_path), destination=loopback.basic.host) as registries:
        _, dst, anonymous = copy_into(loopback, registries, loopback.basic.host)
    assert anonymous.status == "failed"
    assert anonymous.error == (
        f"{loopback.basic.host}/{dst}: check target: HTTP 401 (UNAUTHORIZED: authentication required)\n"
        f"hint: the credentials used: anonymous (no credentials found); {destination_fix('log in', f'{loopback.basic.host}/{dst}')}")
    with make_registries(no_docker_config(tmp_path), {loopback.basic.host: basic_credential("wrong")}) as registries:
        _, _, wrong = copy_into(loopback, registries, loopback.basic.host)
    assert wrong.status == "failed" and "HTTP 401" in wrong.error


def destination_fix(action: str, where: str) -> str:
    return (f"{action} with `docker login {where.split('/')[0]}` or --username USER --password-stdin; "
            f"`rehome doctor --to {where}` checks them")


def wrong_password(loopback: Loopback, tmp_path: Path, auth: str) -> tuple[str, dict[str, str]]:
    """The registry that takes `auth` ("basic" or "token"), and an environment whose Docker config gives it a wrong
    password."""
    host, user = (loopback.basic.host, BASIC_USER) if auth == "basic" else (loopback.token.host, TOKEN_USER)
    return host, docker_config(tmp_path, {"auths": {host: {"username": user, "password": "wrong"}}})


def refused(loopback: Loopback, auth: str, environ: dict[str, str], host: str, repo: str, step: str) -> str:
    """The error for the wrong password of `wrong_password`, up to its hint's fix."""
    used = f"{environ['DOCKER_CONFIG']}/config.json auths"
    if auth == "basic":
        return (f"{host}/{repo}: {step}: HTTP 401 (UNAUTHORIZED: authentication required)\n"
                f"hint: the credentials used: {used}")
    return (f"{host}: get a token from {loopback.token_server.realm} for repository:{repo}:pull: HTTP 401\n"
            f"hint: the token service refused the credentials from {used}")


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_a_destination_that_refuses_the_credentials_names_itself_for_doctor(loopback: Loopback, tmp_path: Path,
                                                                            auth: str) -> None:
    host, environ = wrong_password(loopback, tmp_path, auth)
    with make_registries(environ, destination=host) as registries:
        _, dst, result = copy_into(loopback, registries, host)
    assert result.error == (f"{refused(loopback, auth, environ, host, dst, 'check target')}; "
                            f"{destination_fix('check them, or log in again', f'{host}/{dst}')}")


def copy_from(loopback: Loopback, environ: dict[str, str], source_host: str) -> tuple[str, str | None]:
    """Copy from a repository of `source_host` to the target registry (the destination); (the source repository,
    the error)."""
    src = unique_repo("private")
    with make_registries(environ, destination=loopback.target.host) as registries, Copier(registries) as copier:
        result = copier.ensure(f"{source_host}/{src}:v1", f"{loopback.target.host}/{unique_repo('mirror')}:v1")
    return src, result.error


def source_fix(action: str, host: str) -> str:
    return (f"{action} with `docker login {host}`: a source's credentials come from Docker's config.json "
            "(`auths`, `credHelpers`, `credsStore`), never from --username/--password-stdin")


def test_a_source_that_refuses_anonymous_pulls_says_to_log_in_with_docker(loopback: Loopback, tmp_path: Path) -> None:
    host = loopback.basic.host
    src, error = copy_from(loopback, no_docker_config(tmp_path), host)
    assert error == (f"{host}/{src}: resolve tag v1: HTTP 401 (UNAUTHORIZED: authentication required)\n"
                     f"hint: the credentials used: anonymous (no credentials found); {source_fix('log in', host)}")


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_a_source_that_refuses_the_docker_config_credentials_says_to_log_in_again(loopback: Loopback, tmp_path: Path,
                                                                                  auth: str) -> None:
    host, environ = wrong_password(loopback, tmp_path, auth)
    src, error = copy_from(loopback, environ, host)
    assert error == (f"{refused(loopback, auth, environ, host, src, 'resolve tag v1')}; "
                     f"{source_fix('check them, or log in again', host)}")


def test_token_auth_with_credentials(loopback: Loopback, tmp_path: Path) -> None:
    loopback.token_server.requests.clear()
    with make_registries(no_docker_config(tmp_path), {loopback.token.host: token_credential()}) as registries:
        image, dst, result = copy_into(loopback, registries, loopback.token.host)
        assert (result.status, result.error) == ("copied", None)
        assert head_digest(registries.get(loopback.token.host), dst, "v1") == image.digest
    asked = loopback.token_server.requests
    assert {r["user"] for r in asked} == {TOKEN_USER}
    assert all(r["granted"] for r in asked)
    # One token for the push scope, whatever order the actions were asked in.
    assert sorted(s for r in asked for s in r["scopes"]) == [f"repository:{dst}:pull", f"repository:{dst}:pull,push"]


def test_token_cache_key_ignores_action_order(loopback: Loopback, tmp_path: Path) -> None:
    with make_registries(no_docker_config(tmp_path), {loopback.token.host: token_credential()}) as registries:
        registry = registries.get(loopback.token.host)
        repo = unique_repo("scopes")
        registry.request("GET", f"/v2/{repo}/tags/list", repo=repo, step="list", actions=("push", "pull")).close()
        before = registry.auth.token_requests
        registry.request("GET", f"/v2/{repo}/tags/list", repo=repo, step="list", actions=("pull", "push")).close()
        assert (before, registry.auth.token_requests) == (1, 1)


def test_expired_token_is_renewed(loopback: Loopback, tmp_path: Path) -> None:
    loopback.token_server.lifetime = 1
    try:
        with make_registries(no_docker_config(tmp_path), {loopback.token.host: token_credential()}) as registries:
            registry = registries.get(loopback.token.host)
            repo = unique_repo("expiry")
            first = registry.request("GET", f"/v2/{repo}/tags/list", repo=repo, step="list")
            time.sleep(1.1)
            second = registry.request("GET", f"/v2/{repo}/tags/list", repo=repo, step="list")
            assert (first.status_code, second.status_code, registry.auth.token_requests) == (404, 404, 2)
    finally:
        loopback.token_server.lifetime = 300


def test_anonymous_token_can_pull_but_not_push(loopback: Loopback, tmp_path: Path) -> None:
    with make_registries(no_docker_config(tmp_path), {loopback.token.host: token_credential()}) as registries:
        image, dst, _ = copy_into(loopback, registries, loopback.token.host)
    with make_registries(no_docker_config(tmp_path)) as anonymous:
        assert head_digest(anonymous.get(loopback.token.host), dst, "v1") == image.digest
        _, _, refused = copy_into(loopback, anonymous, loopback.token.host)
    assert refused.status == "failed"
    assert "HTTP 401" in refused.error


def test_credentials_taken_that_may_only_pull_are_told_to_get_push_access_not_to_log_in(
        loopback: Loopback, tmp_path: Path) -> None:
    reader = Credential(READER_USER, Secret(CANARY_PASSWORD), source="--username/--password-stdin")
    with make_registries(no_docker_config(tmp_path), {loopback.token.host: reader}) as registries:
        _, dst, refused = copy_into(loopback, registries, loopback.token.host)
    where = f"{loopback.token.host}/{dst}"
    assert (refused.status, refused.error) == ("failed", (
        f"{where}: start blob upload: HTTP 401 (UNAUTHORIZED: authentication required)\n"
        f"hint: the credentials used: --username/--password-stdin were accepted, but they have no push access to "
        f"{where}: grant it to them"))


def test_identity_token_from_docker_config(loopback: Loopback, tmp_path: Path) -> None:
    loopback.token_server.requests.clear()
    environ = docker_config(tmp_path, {"auths": {loopback.token.host: {"identitytoken": IDENTITY_TOKEN}}})
    with make_registries(environ) as registries:
        _, _, result = copy_into(loopback, registries, loopback.token.host)
    assert (result.status, result.error) == ("copied", None)
    assert {(r["method"], r["user"]) for r in loopback.token_server.requests} == {("POST", TOKEN_USER)}


def test_auth_entry_from_docker_config(loopback: Loopback, tmp_path: Path) -> None:
    encoded = base64.b64encode(f"{BASIC_USER}:{CANARY_PASSWORD}".encode()).decode()
    environ = docker_config(tmp_path, {"auths": {f"http://{loopback.basic.host}/v1/": {"auth": encoded}}})
    store = CredentialStore(environ=environ)
    found = store.lookup(loopback.basic.host)
    assert (found.username, found.password, found.source) == (
        BASIC_USER, Secret(CANARY_PASSWORD), f"{environ['DOCKER_CONFIG']}/config.json auths")
    with make_registries(environ) as registries:
        assert copy_into(loopback, registries, loopback.basic.host)[2].status == "copied"


def test_username_and_password_in_docker_config(tmp_path: Path) -> None:
    environ = docker_config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"username": "u", "password": "p"}}})
    found = CredentialStore(environ=environ).lookup("docker.io")
    assert (found.username, found.password) == ("u", Secret("p"))


def write_helper(folder: Path, name: str, username: str, secret: str) -> None:
    """A `docker-credential-<name>` that answers for any server, as the real helpers do."""
    folder.mkdir(exist_ok=True)
    script = folder / f"docker-credential-{name}"
    answer = json.dumps({"Username": username, "Secret": secret})
    script.write_text(f"#!{sys.executable}\nimport sys\nserver = sys.stdin.read()\nprint({answer!r})\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("key", ["credHelpers", "credsStore"])
def test_credential_helpers(loopback: Loopback, tmp_path: Path, key: str) -> None:
    write_helper(tmp_path / "bin", "rehometest", BASIC_USER, CANARY_PASSWORD)
    setting = {loopback.basic.host: "rehometest"} if key == "credHelpers" else "rehometest"
    environ = docker_config(tmp_path, {key: setting})
    environ["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{environ['PATH']}"
    old_path = os.environ["PATH"]
    os.environ["PATH"] = environ["PATH"]
    try:
        found = CredentialStore(environ=environ).lookup(loopback.basic.host)
        assert found.source == f"{environ['DOCKER_CONFIG']}/config.json {key} (docker-credential-rehometest)"
        with make_registries(environ) as registries:
            assert copy_into(loopback, registries, loopback.basic.host)[2].status == "copied"
    finally:
        os.environ["PATH"] = old_path


def test_google_application_default_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    class FakeCredentials:
        token = None

        def refresh(self, request: object) -> None:
            self.token = "ya29.canary"

    monkeypatch.setattr(google.auth, "default", lambda scopes: (FakeCredentials(), "proj"))
    assert google_credential() == Credential("oauth2accesstoken", Secret("ya29.canary"), None,
                                             "Google Application Default Credentials")
    store = CredentialStore(environ={"DOCKER_CONFIG": "unused-folder"})
    assert store.lookup("europe-west1-docker.pkg.dev").username == "oauth2accesstoken"
    assert store.lookup("eu.gcr.io").username == "oauth2accesstoken"
    assert store.lookup("quay.io") == ANONYMOUS


def test_secrets_never_show_in_reprs() -> None:
    credential = Credential(BASIC_USER, Secret(CANARY_PASSWORD), Secret(IDENTITY_TOKEN), "somewhere")
    for text in (repr(credential), str(credential), repr(credential.password), f"{credential.identity_token}"):
        assert CANARY_PASSWORD not in text and IDENTITY_TOKEN not in text


def _token_outage(answers: list[int | httpx.TransportError], token_answer: bytes = b'{"token": "t-123"}'
                  ) -> tuple[Registries, list[str]]:
    """A registry (mocked transport) whose token service answers `answers` in turn (a status, or a connection
    failure raised), then 200 with `token_answer`."""
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        if request.url.host == "auth.example":
            status = answers.pop(0) if answers else 200
            if isinstance(status, httpx.TransportError):
                raise status
            return httpx.Response(status, content=token_answer if status == 200 else b"{}")
        if request.headers.get("Authorization") != "Bearer t-123":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example/token",'
                                                                    'service="registry.example"'})
        return httpx.Response(200)

    credentials = CredentialStore(environ={"DOCKER_CONFIG": "/nonexistent-docker-config"})
    return Registries(credentials=credentials, retry=FAST_RETRY, transport=httpx.MockTransport(handle)), asked


def test_a_token_service_outage_is_retried_like_any_request() -> None:
    registries, asked = _token_outage([503, 429])
    with registries:
        response = registries.get("registry.example").request("GET", "/v2/app/manifests/v1", repo="app", step="look")
    assert response.status_code == 200
    assert asked == ["registry.example", "auth.example", "auth.example", "auth.example", "registry.example"]


def test_a_token_service_that_stays_down_is_said_to_be_down_not_to_refuse_credentials() -> None:
    registries, _ = _token_outage([503] * 10)
    with registries, pytest.raises(RegistryError) as caught:
        registries.get("registry.example").request("GET", "/v2/app/manifests/v1", repo="app", step="look")
    assert str(caught.value) == (
        f"registry.example: get a token from https://auth.example/token for repository:app:pull: HTTP 503 after "
        f"{FAST_RETRY.tries} tries\nhint: the token service is down or overloaded: try again later")


def test_a_token_service_that_gives_no_answer_is_the_one_to_check_not_the_registry() -> None:
    registries, _ = _token_outage([httpx.ConnectError("[Errno 111] Connection refused")] * 10)
    with registries, pytest.raises(Unreachable) as caught:
        registries.get("registry.example").request("GET", "/v2/app/manifests/v1", repo="app", step="look")
    assert str(caught.value) == (
        f"registry.example: get a token from https://auth.example/token for repository:app:pull: connection failed "
        f"after {FAST_RETRY.tries} tries (ConnectError: [Errno 111] Connection refused)\n"
        "hint: check that the token service at https://auth.example/token runs: registry.example answers, and sends "
        "clients there for a token")


def test_every_image_failed_by_a_token_service_that_gives_no_answer_says_to_check_it(
        proxies: Loopback, registries: Registries) -> None:
    """The first image waits for the tries; the next is not asked, and says what to check all the same."""
    host, realm = proxies.upstream_proxy.host, f"http://127.0.0.1:{free_port()}/token"
    challenge = Answer(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="registry"'}, b"")
    proxies.upstream_proxy.routes.append(lambda method, path: challenge)
    first, second = unique_repo("upstream"), unique_repo("upstream")
    target = f"{proxies.target.host}/{unique_repo('mirror')}"
    with Copier(registries) as copier:
        failed = [copier.ensure(f"{host}/{repo}:v1", f"{target}:{tag}") for repo, tag in ((first, "1"), (second, "2"))]
    refused = f"connection failed after {FAST_RETRY.tries} tries (ConnectError: [Errno 111] Connection refused)"
    hint = f"hint: check that the token service at {realm} runs: {host} answers, and sends clients there for a token"
    assert [(result.status, result.error) for result in failed] == [
        ("failed", f"{host}: get a token from {realm} for repository:{first}:pull: {refused}\n{hint}"),
        ("failed", f"{host}/{second}: resolve tag v1: not asked: the registry's token service gave no answer earlier "
                   f"in this run: {refused}\n{hint}"),
    ]


def test_a_token_service_whose_host_name_does_not_resolve_is_named_not_the_registry() -> None:
    unresolved = httpx.ConnectError("[Errno -2] Name or service not known")
    unresolved.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    registries, asked = _token_outage([unresolved])
    with registries, pytest.raises(Unreachable) as caught:
        registries.get("registry.example").request("GET", "/v2/app/manifests/v1", repo="app", step="look")
    assert str(caught.value) == (
        "registry.example: get a token from https://auth.example/token for repository:app:pull: host auth.example not "
        "found ([Errno -2] Name or service not known)\n"
        "hint: check that the token service at https://auth.example/token runs: registry.example answers, and sends "
        "clients there for a token")
    assert asked == ["registry.example", "auth.example"]


def test_a_token_answer_nested_too_deep_holds_no_token() -> None:
    registries, _ = _token_outage([], f'{{"token": {DEEP_JSON}}}'.encode())
    with registries, pytest.raises(RegistryError) as caught:
        registries.get("registry.example").request("GET", "/v2/app/manifests/v1", repo="app", step="look")
    assert str(caught.value) == "registry.example: get a token from https://auth.example/token: the answer holds no token"


class _SignedStorage:
    """Blob storage on another host, as Docker Hub, gcr.io and quay.io send blob downloads to: it serves a
    URL whose query signs it, and refuses a request that carries an `Authorization` header too (as S3 does:
    only one auth mechanism is allowed). It fetches the bytes from the registry it stands behind."""

    def __init__(self, registry: str, credentials: tuple[str, str]) -> None:
        self.asked: list[tuple[str, str | None]] = []  # (path, the Authorization header sent)
        fetch = httpx.Client(base_url=f"http://{registry}", auth=credentials, timeout=30.0)
        storage = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                storage.asked.append((self.path, self.headers.get("Authorization")))
                repo, _, digest = self.path.partition("?")[0].removeprefix("/storage/").rpartition("/")
                if self.headers.get("Authorization"):
                    status, body = 400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>"
                else:
                    answer = fetch.get(f"/v2/{repo}/blobs/{digest}")
                    status, body = answer.status_code, answer.content
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._fetch = fetch
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._fetch.close()


def test_a_blob_download_redirected_to_storage_elsewhere_is_fetched_there_without_the_registry_credentials(
        loopback: Loopback, tmp_path: Path) -> None:
    with make_registries(no_docker_config(tmp_path), {loopback.basic.host: basic_credential()}) as registries:
        image, src, placed = copy_into(loopback, registries, loopback.basic.host)
    assert placed.status == "copied"
    storage = _SignedStorage(loopback.basic.host, (BASIC_USER, CANARY_PASSWORD))
    front = Proxy(loopback.basic.host)  # the registry, whose blob downloads go to the storage
    blob_path = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")

    def redirect(method: str, path: str) -> Answer | None:
        found = blob_path.match(path)
        if method != "GET" or found is None:
            return None
        location = f"http://{storage.host}/storage/{found['repo']}/{found['digest']}?X-Amz-Signature=5ca1ab1e"
        return Answer(307, {"Location": location}, b"")

    front.routes.append(redirect)
    dst = unique_repo("mirror")
    try:
        with make_registries(no_docker_config(tmp_path), {front.host: basic_credential()}) as registries:
            with Copier(registries) as copier:
                result = copier.ensure(f"{front.host}/{src}:v1", f"{loopback.target.host}/{dst}:v1")
    finally:
        front.stop()
        storage.stop()
    assert (result.status, result.digest, result.error) == ("copied", image.digest, None)
    assert sorted(storage.asked) == sorted(
        (f"/storage/{src}/{blob.digest}?X-Amz-Signature=5ca1ab1e", None) for blob in image.blobs)
    assert front.count("GET", r"/blobs/") == len(image.blobs)
    assert head_digest(Registries().get(loopback.target.host), dst, "v1") == image.digest
