"""`rehome doctor --to DEST`: one line per check, against loopback registries."""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import pytest

from bot.cli import main
from bot.doctor import ArtifactRepository, check_credentials, check_read_grant
from bot.imageref import parse
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP, install_credential_helper
from tests.oci import images
from tests.oci.fixtures import (BASIC_USER, CANARY_PASSWORD, READER_USER, TOKEN_USER, Loopback, make_registries,
                                unique_repo)
from tests.oci.proxy import Answer, Fault
from tests.oci.servers import SilentServer, free_port


@pytest.fixture(autouse=True)
def no_docker_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.chdir(tmp_path)


def test_doctor_all_ok(proxies: Loopback, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    src = unique_repo("upstream")
    images.push(proxies.upstream.host, src, images.image((10,)), "v1")
    proxies.upstream_proxy.add_headers.append(("HEAD", "/manifests/", {"ratelimit-remaining": "76;w=21600",
                                                                        "ratelimit-limit": "100;w=21600"}))
    dest, source = f"{proxies.basic.host}/team/mirror", f"{proxies.upstream_proxy.host}/{src}:v1"
    monkeypatch.setattr("sys.stdin", io.StringIO(CANARY_PASSWORD))
    code = main(["doctor", "--to", dest, "--source", source, "--username", BASIC_USER, "--password-stdin"])
    assert capsys.readouterr().out.splitlines() == [
        f"ok      credentials: {proxies.basic.host}: --username/--password-stdin",
        f"ok      registry: http://{proxies.basic.host}/v2/ answers",
        f"ok      repository: {dest} has no images yet; the registry creates repositories on first push",
        f"ok      push: {dest}/rehome-doctor: a test upload was accepted, then cancelled",
        f"ok      source {source}: the registry answers; pull quota: 76 of 100 per 6h left",
    ]
    assert code == 0


def test_doctor_failures_say_why_and_how_to_fix(loopback: Loopback, capsys: pytest.CaptureFixture[str]) -> None:
    dest = f"{loopback.basic.host}/team/mirror"
    source = f"{loopback.upstream.host}/{unique_repo('absent')}:v1"
    assert main(["doctor", "--to", dest, "--source", source, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    anonymous = f"log in with `docker login {loopback.basic.host}`, or give --username USER --password-stdin"
    assert report == {"version": 1, "destination": dest, "checks": [
        {"check": "credentials", "status": "ok", "detail": f"{loopback.basic.host}: anonymous (no credentials found)", "fix": None},
        {"check": "registry", "status": "ok", "detail": f"http://{loopback.basic.host}/v2/ answers", "fix": None},
        {"check": "repository", "status": "failed", "detail": f"{dest}: list tags: HTTP 401 (UNAUTHORIZED: authentication required)",
         "fix": anonymous},
        {"check": "push", "status": "failed",
         "detail": f"{dest}/rehome-doctor: start blob upload: HTTP 401 (UNAUTHORIZED: authentication required)",
         "fix": anonymous},
        {"check": f"source {source}", "status": "failed", "detail": "the registry answers, but has no such image",
         "fix": "check the repository and the tag or digest: --source takes an image as docker pull does"},
    ]}


def doctor_lines(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, dest: str, source: str,
                 username: str | None = None) -> list[str]:
    """`rehome doctor` with exit 1, its lines; with `username`, a wrong password on standard input."""
    login = ["--username", username, "--password-stdin"] if username else []
    monkeypatch.setattr("sys.stdin", io.StringIO(CANARY_PASSWORD + "-wrong"))
    assert main(["doctor", "--to", dest, "--source", source, *login]) == 1
    return capsys.readouterr().out.splitlines()


def present_source(loopback: Loopback) -> tuple[str, str]:
    repo = unique_repo("upstream")
    images.push(loopback.upstream.host, repo, images.image((20,)), "v1")
    source = f"{loopback.upstream.host}/{repo}:v1"
    return source, f"ok      source {source}: the registry answers"


@pytest.mark.parametrize("auth", ["token", "basic"])
def test_refused_credentials_say_so_and_what_to_check(loopback: Loopback, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch, auth: str) -> None:
    host, (source, source_ok) = getattr(loopback, auth).host, present_source(loopback)
    refused = {
        "token": f"{host}: get a token from {loopback.token_server.realm} for repository:team/mirror:pull: HTTP 401",
        "basic": f"http://{host}/v2/ answered HTTP 401",
    }[auth]
    user = TOKEN_USER if auth == "token" else BASIC_USER
    assert doctor_lines(capsys, monkeypatch, f"{host}/team/mirror", source, user) == [
        f"ok      credentials: {host}: --username/--password-stdin",
        f"failed  registry: {refused}: the credentials were refused (fix: check the username and password "
        f"(--username/--password-stdin), or log in again with `docker login {host}`)",
        source_ok,
    ]


def test_a_source_that_refuses_anonymous_pulls_says_to_log_in_with_docker(loopback: Loopback,
                                                                         capsys: pytest.CaptureFixture[str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    dest, host = f"{loopback.target.host}/team/mirror", loopback.basic.host
    source = f"{host}/{unique_repo('private')}:v1"
    assert doctor_lines(capsys, monkeypatch, dest, source)[-1] == (
        f"failed  source {source}: look up manifest: HTTP 401: anonymous access was refused (fix: log in with `docker login {host}`: a source's credentials come from Docker's config.json "
        "(`auths`, `credHelpers`, `credsStore`), never from --username/--password-stdin)")


def test_forbidden_asks_for_a_grant(proxies: Loopback, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    host, (source, source_ok) = proxies.target_proxy.host, present_source(proxies)
    denied = b'{"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}'
    proxies.target_proxy.faults += [Fault("GET", "/tags/list", 403, body=denied),
                                    Fault("POST", "/blobs/uploads/", 403, body=denied)]
    dest = f"{host}/team/mirror"
    assert doctor_lines(capsys, monkeypatch, dest, source, BASIC_USER) == [
        f"ok      credentials: {host}: --username/--password-stdin",
        f"ok      registry: http://{host}/v2/ answers",
        f"failed  repository: {dest}: list tags: HTTP 403 (DENIED: requested access to the resource is denied) "
        "(fix: grant the credentials read access (roles/artifactregistry.reader on Artifact Registry))",
        f"failed  push: {dest}/rehome-doctor: start blob upload: HTTP 403 (DENIED: requested access to the resource is "
        "denied) (fix: grant the credentials write access (roles/artifactregistry.writer on Artifact Registry))",
        source_ok,
    ]


def test_a_registry_that_takes_no_pushes_says_so(proxies: Loopback, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # What a read-only registry, or a pull-through cache, answers an upload.
    host, (source, source_ok) = proxies.target_proxy.host, present_source(proxies)
    unsupported = b'{"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}'
    proxies.target_proxy.faults.append(Fault("POST", "/blobs/uploads/", 405, body=unsupported, headers={
        "Content-Type": "application/json", "Docker-Distribution-Api-Version": "registry/2.0"}))
    dest = f"{host}/team/mirror"
    assert doctor_lines(capsys, monkeypatch, dest, source, BASIC_USER) == [
        f"ok      credentials: {host}: --username/--password-stdin",
        f"ok      registry: http://{host}/v2/ answers",
        f"ok      repository: {dest} has no images yet; the registry creates repositories on first push",
        f"failed  push: {dest}/rehome-doctor: start blob upload: HTTP 405 (UNSUPPORTED: The operation is unsupported.) "
        f"(fix: {host} does not accept pushes (a read-only registry, or a pull-through cache, answers so): choose a "
        "destination that does)",
        source_ok,
    ]


@pytest.mark.parametrize(("answer", "failure"), [
    (Answer(404, {"Content-Type": "text/plain"}, b"404 page not found\n"),
     "HOST does not speak the registry API: http://HOST/v2/ answered HTTP 404, not as a registry does "
     "(fix: check the host name: DEST must start with a container registry's host)"),
    (Answer(200, {"Content-Type": "text/html"}, b"<html><body>Welcome</body></html>"),
     "HOST does not speak the registry API: http://HOST/v2/ answered HTTP 200, not as a registry does "
     "(fix: check the host name: DEST must start with a container registry's host)"),
    pytest.param(Answer(200, {"Content-Type": "application/json"}, DEEP_JSON.encode()),
                 "HOST does not speak the registry API: http://HOST/v2/ answered HTTP 200, not as a registry does "
                 "(fix: check the host name: DEST must start with a container registry's host)", id="nested-too-deep"),
    (Answer(503, {"Content-Type": "text/plain"}, b"busy"),
     "http://HOST/v2/ answered HTTP 503 (fix: the registry is down or overloaded: try again later)"),
])
def test_a_server_that_is_not_a_registry_is_named_as_such(proxies: Loopback, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, answer: Answer,
                                                          failure: str) -> None:
    monkeypatch.setattr("bot.registry.client.random.uniform", lambda low, high: 0.0)  # no backoff waits
    host, (source, source_ok) = proxies.target_proxy.host, present_source(proxies)
    proxies.target_proxy.routes.append(lambda method, path: answer)
    assert doctor_lines(capsys, monkeypatch, f"{host}/team/mirror", source) == [
        f"ok      credentials: {host}: anonymous (no credentials found)",
        f"failed  registry: {failure.replace('HOST', host)}",
        source_ok,
    ]


@pytest.mark.parametrize(("answer", "failure"), [
    (Answer(404, {"Content-Type": "text/html"}, b"<html><body>Not Found</body></html>"), "look up manifest: HOST does "
     "not speak the registry API: http://HOST/v2/ answered HTTP 404"),
    (Answer(200, {"Content-Type": "text/html"}, b"<html><body>app</body></html>"), "get manifest 1: HOST does not "
     "speak the registry API: http://HOST/v2/ answered HTTP 200"),
    (Answer(200, {"Content-Type": "application/json"}, b'{"ok": true}'), "get manifest 1: HOST does not speak the "
     "registry API: http://HOST/v2/ answered HTTP 200"),
])
def test_a_web_server_at_a_source_address_is_said_to_be_no_registry(
        proxies: Loopback, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, answer: Answer,
        failure: str) -> None:
    host = proxies.upstream_proxy.host
    proxies.upstream_proxy.routes.append(lambda method, path: answer)
    assert doctor_lines(capsys, monkeypatch, f"{proxies.target.host}/team/mirror", f"{host}/x:1")[-1] == (
        f"failed  source {host}/x:1: {failure.replace('HOST', host)}, not as a registry does (fix: check the image's "
        "host name and port: no registry answers there)")


HEALTH = Answer(200, {"Content-Type": "application/json"}, b'{"status": "ok"}')


@pytest.mark.parametrize("elsewhere", [
    HEALTH,  # the same JSON for every path
    Answer(404, {"Content-Type": "text/html"}, b"<html><body>Not Found</body></html>"),
    Answer(405, {"Content-Type": "text/html"}, b"<html><body>Method Not Allowed</body></html>"),
], ids=["JSON everywhere", "404 page", "405 page"])
def test_a_json_service_at_the_destination_address_is_no_registry(
        proxies: Loopback, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        elsewhere: Answer) -> None:
    host, (source, source_ok) = proxies.target_proxy.host, present_source(proxies)
    proxies.target_proxy.routes.append(lambda method, path: HEALTH if path == "/v2/" else elsewhere)
    assert doctor_lines(capsys, monkeypatch, f"{host}/team", source) == [
        f"ok      credentials: {host}: anonymous (no credentials found)",
        f"failed  registry: {host} does not speak the registry API: http://{host}/v2/ answered HTTP 200, not as a "
        "registry does (fix: check the host name: DEST must start with a container registry's host)",
        source_ok,
    ]


def test_a_registry_that_leaves_out_the_api_header_passes_the_registry_check(
        proxies: Loopback, capsys: pytest.CaptureFixture[str]) -> None:
    """Its `/v2/` answers JSON without the header; its tag list answers as a registry's."""
    host, dest = proxies.target_proxy.host, f"{proxies.target_proxy.host}/{unique_repo('mirror')}"
    proxies.target_proxy.routes.append(lambda method, path: HEALTH if path == "/v2/" else None)
    assert main(["doctor", "--to", dest, "--source", present_source(proxies)[0]]) == 0
    assert capsys.readouterr().out.splitlines()[:3] == [
        f"ok      credentials: {host}: anonymous (no credentials found)",
        f"ok      registry: http://{host}/v2/ answers",
        f"ok      repository: {dest} has no images yet; the registry creates repositories on first push",
    ]


def test_a_low_pull_quota_is_said_once_in_the_sources_check(
        proxies: Loopback, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    src = unique_repo("upstream")
    images.push(proxies.upstream.host, src, images.image((10,)), "v1")
    source = f"{proxies.upstream_proxy.host}/{src}:v1"
    proxies.upstream_proxy.add_headers.append(("HEAD", "/manifests/", {"ratelimit-remaining": "2;w=21600",
                                                                        "ratelimit-limit": "100;w=21600"}))
    assert main(["doctor", "--to", f"{proxies.target.host}/team", "--source", source]) == 1
    out, err = capsys.readouterr()
    assert (out.splitlines()[-1], err) == (
        f"failed  source {source}: the registry answers; pull quota: 2 of 100 per 6h left (fix: wait for the window to "
        "pass, or log in (docker login) for a higher limit)", "")


def test_a_source_on_the_destinations_registry_that_refuses_says_to_log_in_there(
        loopback: Loopback, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    host = loopback.basic.host
    source = f"{host}/private/app:1"
    assert doctor_lines(capsys, monkeypatch, f"{host}/team/mirror", source)[-1] == (
        f"failed  source {source}: look up manifest: HTTP 401 (fix: log in with `docker login {host}`, or give "
        "--username USER --password-stdin)")


def test_a_source_whose_registry_does_not_answer_says_what_to_check(
        loopback: Loopback, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.registry.client.random.uniform", lambda low, high: 0.0)  # no backoff waits
    gone = f"127.0.0.1:{free_port()}"
    line = doctor_lines(capsys, monkeypatch, f"{loopback.target.host}/team/mirror", f"{gone}/app:1")[-1]
    assert line == (f"failed  source {gone}/app:1: look up manifest: connection failed after 2 tries (ConnectError: "
                    f"[Errno 111] Connection refused) (fix: check that a registry runs at http://{gone})")


def test_a_source_whose_host_name_does_not_resolve_says_to_check_it_and_the_dns(
        loopback: Loopback, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # As Docker Hub's default probe does on a machine without DNS: no --insecure-registry would help.
    line = doctor_lines(capsys, monkeypatch, f"{loopback.target.host}/team/mirror", "registry.invalid/app:1")[-1]
    assert line.startswith("failed  source registry.invalid/app:1: look up manifest: host registry.invalid not found (")
    assert line.endswith(") (fix: check the host name registry.invalid, and that this machine can resolve host names "
                         "(DNS))")


def test_a_token_service_that_does_not_answer_is_the_fix_not_the_registry(
        proxies: Loopback, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.registry.client.random.uniform", lambda low, high: 0.0)  # no backoff waits
    host, (source, source_ok) = proxies.target_proxy.host, present_source(proxies)
    realm = f"http://127.0.0.1:{free_port()}/token"
    challenge = Answer(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="registry"'}, b"")
    proxies.target_proxy.routes.append(lambda method, path: challenge)
    assert doctor_lines(capsys, monkeypatch, f"{host}/team/mirror", source) == [
        f"ok      credentials: {host}: anonymous (no credentials found)",
        f"failed  registry: {host}: get a token from {realm} for repository:team/mirror:pull: connection failed after "
        f"2 tries (ConnectError: [Errno 111] Connection refused) (fix: check that the token service at {realm} runs: "
        f"{host} answers, and sends clients there for a token)",
        source_ok,
    ]


def test_doctor_unreachable_registry(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.registry.client.random.uniform", lambda low, high: 0.0)  # no backoff waits
    dest = f"127.0.0.1:{free_port()}/mirror"
    assert main(["doctor", "--to", dest, "--source", dest + "/x:1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"failed  registry: {dest}: ping the registry API: connection failed after 2 tries (ConnectError")
    assert lines[1].endswith(f"(fix: check that a registry runs at http://{dest.split('/')[0]})")
    assert len(lines) == 3


def test_doctor_refuses_a_docker_config_of_the_wrong_shape(loopback: Loopback, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text('{"auths": {"registry.example": "dXNlcjpwdw=="}}')
    assert main(["doctor", "--to", f"{loopback.basic.host}/team/mirror"]) == 2
    assert capsys.readouterr() == ("", f"rehome: error: {tmp_path}/docker/config.json: \"auths\" entry \"registry.example\" "
                                       "must be an object such as {\"auth\": \"base64 of user:password\"}, not a string\n")


@pytest.mark.parametrize(("script", "detail"), [
    (None, "docker-credential-rehome-qa is configured in Docker's config.json but is not installed"),
    # its words say "not found", but it is broken, not without credentials
    ("echo '/bin/sh: 1: gcloud: not found' >&2; exit 127",
     "docker-credential-rehome-qa get failed (exit 127, which a shell gives for a command it cannot find); what it "
     "printed is not shown, as it may hold credentials: `echo HOST | docker-credential-rehome-qa get` shows it"),
    # a helper's words that are not UTF-8 are not read at all
    ("printf 'Passwort f\\374r bot ung\\374ltig\\n' >&2; exit 1",
     "docker-credential-rehome-qa get failed (exit 1); what it printed is not shown, as it may hold credentials: "
     "`echo HOST | docker-credential-rehome-qa get` shows it"),
])
def test_a_credential_helper_that_is_missing_or_fails_is_said_once(
        loopback: Loopback, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        script: str | None, detail: str) -> None:
    host = loopback.basic.host
    if script is not None:
        install_credential_helper(tmp_path, monkeypatch, "rehome-qa", script)
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"credHelpers": {host: "rehome-qa"}}))
    assert main(["doctor", "--to", f"{host}/team/mirror"]) == 1
    assert capsys.readouterr() == (
        f"failed  credentials: {host}: {detail.replace('HOST', host)} (fix: fix the credential helper named in "
        "Docker's config.json)\n", "")


@pytest.mark.parametrize(("argv", "message"), [
    ([], "no destination: give --to DEST or set `destination` in rehome.yaml"),
    (["--to", "127.0.0.1:5000"], "--to: destination '127.0.0.1:5000' is not a registry path: 127.0.0.1:5000 names a registry but no repository; add a repository path, e.g. "
                                 "127.0.0.1:5000/NAME"),
    (["--to", "registry.example.com"], "--to: destination 'registry.example.com' is not a registry path: "
                                       "registry.example.com names a registry but no repository; add a repository path, e.g. registry.example.com/NAME"),
    (["--to", "r.example/m", "--source", "localhost:5000"],
     "--source 'localhost:5000': localhost:5000 names a registry but no repository; add a repository path, e.g. localhost:5000/NAME"),
])
def test_doctor_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", *argv]) == 2
    assert capsys.readouterr() == ("", f"rehome: error: {message}\n")


REPOSITORY = ArtifactRepository("europe-west1", "acme-prod", "mirror")
EMAIL = "nodes@acme-gke.iam.gserviceaccount.com"
GRANT = ("gcloud artifacts repositories add-iam-policy-binding mirror --location=europe-west1 --project=acme-prod "
         f"--member=serviceAccount:{EMAIL} --role=roles/artifactregistry.reader")


def policy_client(bindings: list[dict], status: int = 200, content: bytes | None = None
                  ) -> tuple[httpx.Client, list[httpx.Request]]:
    """Artifact Registry's API (mocked) answering `bindings`, or `content` as it is."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=json.dumps({"bindings": bindings}).encode() if content is None else content)

    return httpx.Client(transport=httpx.MockTransport(answer)), seen


def test_runtime_service_account_read_grant() -> None:
    email = EMAIL
    assert ArtifactRepository.from_destination(parse("europe-west1-docker.pkg.dev/acme-prod/mirror")) == REPOSITORY
    http, seen = policy_client([{"role": "roles/artifactregistry.reader", "members": [f"serviceAccount:{email}"]}])
    granted = check_read_grant(REPOSITORY, email, http, "ya29.x")
    assert granted.line() == f"ok      read grant for {email}: mirror grants it roles/artifactregistry.reader"
    assert str(seen[0].url) == ("https://artifactregistry.googleapis.com/v1/projects/acme-prod/locations/europe-west1"
                                "/repositories/mirror:getIamPolicy")
    http, _ = policy_client([{"role": "roles/artifactregistry.reader", "members": ["user:someone@example.com"]}])
    assert check_read_grant(REPOSITORY, email, http, "ya29.x").line() == (
        f"failed  read grant for {email}: the repository's policy does not grant it read access "
        f"(a project-level grant cannot be seen from here) (fix: {GRANT})")
    assert check_read_grant(REPOSITORY, email, http, None).fix == GRANT
    http, _ = policy_client([], status=403)
    assert check_read_grant(REPOSITORY, email, http, "ya29.x").detail == (
        "cannot confirm: reading the repository's IAM policy gave HTTP 403")
    assert check_read_grant(None, email, http, "ya29.x").line() == (
        f"failed  read grant for {email}: the destination is not an Artifact Registry repository "
        "(LOCATION-docker.pkg.dev/PROJECT/REPOSITORY) (fix: leave out --runtime-sa: it checks Artifact Registry's "
        "IAM policy only)")


@pytest.mark.parametrize(("content", "detail"), [
    (b"<html>", "cannot confirm: the repository's IAM policy is not JSON (Expecting value: line 1 column 1 (char 0))"),
    pytest.param(f'{{"bindings": {DEEP_JSON}}}'.encode(),
                 f"cannot confirm: the repository's IAM policy is not JSON ({NESTED_TOO_DEEP})", id="nested-too-deep"),
    (b'["bindings"]', "the repository's policy does not grant it read access (a project-level grant cannot be "
                      "seen from here)"),
    (b'{"bindings": [5, {"role": "roles/artifactregistry.reader", "members": "x"}]}',
     "the repository's policy does not grant it read access (a project-level grant cannot be seen from here)"),
])
def test_an_iam_policy_answer_that_cannot_be_read_confirms_no_grant(content: bytes, detail: str) -> None:
    http, _ = policy_client([], content=content)
    assert check_read_grant(REPOSITORY, EMAIL, http, "ya29.x").detail == detail


def test_no_credentials_for_artifact_registry_is_a_failure_with_the_login_to_run(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.registry.credentials.google_credential", lambda: None)
    monkeypatch.setattr("bot.doctor.google_credential", lambda: None)
    registries = make_registries({"DOCKER_CONFIG": "/nonexistent"})
    with registries:
        check = check_credentials(registries.get("europe-west1-docker.pkg.dev"))
    assert check.line() == (
        "failed  credentials: europe-west1-docker.pkg.dev: no credentials found; Google's registries take no "
        "anonymous pushes (fix: pip install 'rehome-bot[gcp]' and run `gcloud auth application-default login` "
        "(or point GOOGLE_APPLICATION_CREDENTIALS at a service account key), or `gcloud auth configure-docker HOST`)")


def test_doctor_does_not_wait_long_on_a_registry_that_never_answers(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check is a quick question: doctor's own short timeout and two tries, not a copy's 60 s and five."""
    monkeypatch.setattr("bot.doctor.CHECK_TIMEOUT", 0.5)
    monkeypatch.setattr("bot.registry.client.random.uniform", lambda low, high: 0.0)
    with SilentServer() as silent:
        dest = f"{silent.host}/mirror"
        started = time.monotonic()
        assert main(["doctor", "--to", dest, "--source", dest + "/x:1"]) == 1
    assert time.monotonic() - started < 10
    line = capsys.readouterr().out.splitlines()[1]
    assert line == (f"failed  registry: {dest}: ping the registry API: no answer within the timeout after 2 tries "
                    f"(ReadTimeout: timed out) (fix: check that a registry runs at http://{dest.split('/')[0]})")


def test_credentials_the_registry_takes_but_that_may_not_push_say_to_grant_push(
        loopback: Loopback, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # A token service that grants the account `pull` only: the registry answers the upload 401, insufficient_scope.
    host, (source, source_ok) = loopback.token.host, present_source(loopback)
    dest = f"{host}/team/mirror"
    monkeypatch.setattr("sys.stdin", io.StringIO(CANARY_PASSWORD))
    assert main(["doctor", "--to", dest, "--source", source, "--username", READER_USER, "--password-stdin"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"ok      credentials: {host}: --username/--password-stdin",
        f"ok      registry: http://{host}/v2/ answers",
        f"ok      repository: {dest} has no images yet; the registry creates repositories on first push",
        f"failed  push: {dest}/rehome-doctor: start blob upload: HTTP 401 (UNAUTHORIZED: authentication required) "
        "(fix: grant the credentials write access (roles/artifactregistry.writer on Artifact Registry))",
        source_ok,
    ]
