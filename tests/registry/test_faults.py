"""A fault-injecting proxy in front of real registries: every copy ends verified or clearly failed."""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from bot.mirror import ensure_images
from bot.registry import Copier, CredentialStore, Registries
from bot.registry.blobs import UploadSettings
from bot.registry.client import Registry
from bot.registry.copy import CopyOptions, CopyResult
from tests.helpers import install_credential_helper, logged
from tests.oci import images
from tests.oci.fixtures import FAST_RETRY, Loopback, unique_repo
from tests.oci.proxy import Answer, Fault
from tests.registry.test_copy import has_blob

# Seconds a try that gets no more bytes waits. Requests the faults leave alone must answer within it, and a
# loaded machine has taken more than 0.5 s to answer one.
TIMEOUT = 1.0


def target_has(host: str, repo: str, reference: str) -> bool:
    return httpx.head(f"http://{host}/v2/{repo}/manifests/{reference}",
                      headers={"Accept": images.DOCKER_MANIFEST}).status_code == 200


def arm(proxies: Loopback, faults: list[Fault], image: images.Image | None = None,
        target_faults: Sequence[Fault] = ()) -> tuple[images.Image, str, str]:
    """Push `image` upstream, and give the upstream proxy `faults`, the target proxy `target_faults` (their paths
    may name `{src}`, `{dst}`, `{config}`, `{layer}`): (image, source repository, target repository)."""
    image = image or images.image((30_000, 40_000))
    src, dst = unique_repo("upstream"), unique_repo("mirror")
    images.push(proxies.upstream.host, src, image, "v1")
    for fault in [*faults, *target_faults]:
        fault.path = fault.path.format(src=src, dst=dst, config=image.blobs[0].digest, layer=image.blobs[-1].digest)
    proxies.upstream_proxy.faults.extend(faults)
    proxies.target_proxy.faults.extend(target_faults)
    return image, src, dst


def copy(registries: Registries, source: str, target: str, options: CopyOptions = CopyOptions()) -> CopyResult:
    with Copier(registries, options) as copier:
        return copier.ensure(source, target)


def copy_through_faults(proxies: Loopback, registries: Registries, faults: list[Fault],
                        image: images.Image | None = None) -> tuple[images.Image, str, CopyResult]:
    image, src, dst = arm(proxies, faults, image)
    return image, dst, copy(registries, f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1")


def test_429_with_retry_after_is_waited_for(proxies: Loopback, registries: Registries) -> None:
    started = time.monotonic()
    image, dst, result = copy_through_faults(
        proxies, registries, [Fault("GET", "/v2/{src}/manifests/v1", 429, headers={"Retry-After": "1"})])
    assert time.monotonic() - started >= 1.0
    assert (result.status, result.digest) == ("copied", image.digest)
    assert target_has(proxies.target.host, dst, "v1")


def test_503_on_blob_download_is_retried(proxies: Loopback, registries: Registries) -> None:
    image, dst, result = copy_through_faults(proxies, registries, [Fault("GET", "/blobs/{layer}", 503, times=2)])
    assert (result.status, result.digest) == ("copied", image.digest)
    assert proxies.upstream_proxy.count("GET", f"/blobs/{image.blobs[-1].digest}") == 3


def test_connection_reset_mid_blob_is_retried(proxies: Loopback, registries: Registries) -> None:
    image, dst, result = copy_through_faults(proxies, registries, [Fault("GET", "/blobs/{layer}", "reset-body")])
    assert (result.status, result.digest) == ("copied", image.digest)
    assert target_has(proxies.target.host, dst, "v1")


def test_corrupted_blob_once_is_fetched_again(proxies: Loopback, registries: Registries) -> None:
    image, dst, result = copy_through_faults(proxies, registries, [Fault("GET", "/blobs/{layer}", "corrupt")])
    assert (result.status, result.digest) == ("copied", image.digest)
    assert httpx.get(f"http://{proxies.target.host}/v2/{dst}/blobs/{image.blobs[-1].digest}").content == image.blobs[-1].data


def test_corrupted_or_lost_config_is_fetched_again(proxies: Loopback, registries: Registries) -> None:
    image, dst, result = copy_through_faults(proxies, registries, [Fault("GET", "/blobs/{config}", "corrupt"),
                                                                   Fault("GET", "/blobs/{config}", "reset-body")])
    config = image.blobs[0]
    assert (result.status, result.digest, result.platforms) == ("copied", image.digest, ["linux/amd64"])
    assert proxies.upstream_proxy.count("GET", f"/blobs/{config.digest}") == 3
    assert httpx.get(f"http://{proxies.target.host}/v2/{dst}/blobs/{config.digest}").content == config.data


def test_always_corrupted_blob_fails_clearly_and_pushes_no_manifest(proxies: Loopback, registries: Registries) -> None:
    image, dst, result = copy_through_faults(proxies, registries, [Fault("GET", "/blobs/{layer}", "corrupt", times=99)])
    layer = image.blobs[-1]
    assert result.status == "failed"
    assert result.verified_digest is None
    assert result.error == (f"{proxies.upstream_proxy.host}/{result.source.split('/', 1)[1].rsplit(':', 1)[0]}: "
                            f"copy blob {layer.digest}: content does not match: the bytes hash to "
                            f"{images.digest_of(_flipped(layer.data))}")
    assert not target_has(proxies.target.host, dst, "v1")
    assert httpx.head(f"http://{proxies.target.host}/v2/{dst}/blobs/{layer.digest}").status_code == 404


def test_persistent_503_fails_after_bounded_tries(proxies: Loopback, registries: Registries) -> None:
    image, dst, result = copy_through_faults(proxies, registries, [Fault("GET", "/v2/{src}/manifests/v1", 503, times=99)])
    assert result.status == "failed"
    assert result.error.endswith(f"resolve tag v1: HTTP 503 after {registries.retry.tries} tries")
    assert proxies.upstream_proxy.count("GET", "/manifests/v1") == registries.retry.tries
    assert not target_has(proxies.target.host, dst, "v1")


def test_corrupted_manifest_is_never_pushed(proxies: Loopback, registries: Registries) -> None:
    image, dst, result = copy_through_faults(
        proxies, registries, [Fault("GET", "/v2/{src}/manifests/v1", "corrupt", times=99)])
    assert result.status == "failed"
    assert "the manifest's bytes hash to" in result.error
    assert not target_has(proxies.target.host, dst, "v1")


def test_pull_quota_running_out_stops_before_pulling(proxies: Loopback, registries: Registries, monkeypatch) -> None:
    monkeypatch.setattr(Registry, "meters_pulls", True)  # as Docker Hub's does: the digest is looked up by HEAD first
    proxies.upstream_proxy.add_headers.append(("HEAD", "/manifests/", {"ratelimit-remaining": "3;w=21600",
                                                                        "ratelimit-limit": "100;w=21600"}))
    image, dst, result = copy_through_faults(proxies, registries, [])
    assert result.status == "failed"
    assert result.error.endswith(
        f"get manifest {image.digest}: stopped: only 3 pulls left in the registry's rate limit (the window is 6h)\n"
        "hint: wait for the window to pass, or log in to raise the limit (docker login)")
    assert proxies.upstream_proxy.count("GET", "/manifests/") == 0
    assert registries.get(proxies.upstream_proxy.host).rate_limit.remaining == 3


def _flipped(data: bytes) -> bytes:
    corrupted = bytearray(data)
    corrupted[len(corrupted) // 2] ^= 0xFF
    return bytes(corrupted)


def test_401_during_a_streamed_upload_renews_and_retries(proxies: Loopback, registries: Registries) -> None:
    image = images.image((30_000,))
    src, dst = unique_repo("upstream"), unique_repo("mirror")
    images.push(proxies.upstream.host, src, image, "v1")
    layer = image.blobs[-1].digest.replace(":", "%3A")
    proxies.target_proxy.faults.append(Fault("PUT", f"/v2/{dst}/blobs/uploads/.*digest={layer}", 401,
                                             headers={"WWW-Authenticate": 'Basic realm="expired"'}))
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxies.upstream.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1")
    assert (result.status, result.digest) == ("copied", image.digest)
    assert proxies.target_proxy.count("PUT", f"digest={layer}") == 2
    assert target_has(proxies.target.host, dst, "v1")


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[Registries]:
    """Fast retries, more of them than a timed-out try is allowed, and a short timeout: a try that gets no more
    bytes costs half a second."""
    credentials = CredentialStore(environ={"DOCKER_CONFIG": str(tmp_path / "no-docker-config")})
    retry = dataclasses.replace(FAST_RETRY, tries=6)
    with Registries(credentials=credentials, retry=retry, timeout=TIMEOUT) as registries:
        yield registries


def timed_copy(registries: Registries, source: str, target: str,
               options: CopyOptions = CopyOptions()) -> tuple[CopyResult, list[str], float]:
    """The copy's result, what it logged at INFO, and the seconds it took."""
    with logged(logging.INFO) as messages:
        started = time.monotonic()
        result = copy(registries, source, target, options)
        return result, messages, time.monotonic() - started


def test_a_blob_download_that_stalls_mid_body_is_tried_once_more_not_for_every_try(
        proxies: Loopback, impatient: Registries) -> None:
    """The registry sends the headers and half the blob, then nothing: each try waits the whole timeout."""
    image, src, dst = arm(proxies, [Fault("GET", "/blobs/{layer}", "hang", times=99)])
    layer, source, target = image.blobs[-1].digest, f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1"
    result, messages, elapsed = timed_copy(impatient, source, target)
    problem = f"{proxies.upstream_proxy.host}/{src}: download blob {layer}: no answer within the timeout mid-blob " \
              "(ReadTimeout: timed out)"
    assert result == CopyResult(source, target, "failed", image.digest, error=problem)
    assert result.verified_digest is None
    assert messages == [f"{problem}; trying again in 0.0s (try 2 of 2)"]
    assert proxies.upstream_proxy.count("GET", f"/blobs/{layer}") == 2
    assert 2 * TIMEOUT <= elapsed < impatient.retry.tries * TIMEOUT  # every try would wait the timeout again
    assert not target_has(proxies.target.host, dst, "v1")
    assert not has_blob(proxies.target.host, dst, layer)


def test_a_blob_download_that_fails_fast_keeps_its_tries_until_it_stalls(proxies: Loopback, impatient: Registries) -> None:
    faults = [Fault("GET", "/blobs/{layer}", "corrupt"), Fault("GET", "/blobs/{layer}", "hang", times=99)]
    image, src, dst = arm(proxies, faults)
    layer, source, target = image.blobs[-1], f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1"
    result, messages, _ = timed_copy(impatient, source, target)
    stalled = f"{proxies.upstream_proxy.host}/{src}: download blob {layer.digest}: no answer within the timeout " \
              "mid-blob (ReadTimeout: timed out)"
    assert result == CopyResult(source, target, "failed", image.digest, error=stalled)
    assert messages == [
        f"{proxies.upstream_proxy.host}/{src}: copy blob {layer.digest}: content does not match: the bytes hash to "
        f"{images.digest_of(_flipped(layer.data))}; trying again in 0.0s (try 2 of 6)",
        f"{stalled}; trying again in 0.0s (try 3 of 3)",
    ]
    assert proxies.upstream_proxy.count("GET", f"/blobs/{layer.digest}") == 3
    assert not target_has(proxies.target.host, dst, "v1")


def test_a_blob_upload_the_mirror_never_answers_is_tried_once_more_not_for_every_try(
        proxies: Loopback, impatient: Registries) -> None:
    image = images.image((30_000, 40_000))
    layer = image.blobs[-1].digest
    put_layer = Fault("PUT", "/v2/{dst}/blobs/uploads/.*digest=" + layer.replace(":", "%3A"), "silent", times=99)
    image, src, dst = arm(proxies, [], image, target_faults=[put_layer])
    source, target = f"{proxies.upstream.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1"
    result, messages, elapsed = timed_copy(impatient, source, target)
    problem = f"{proxies.target_proxy.host}/{dst}: upload blob {layer}: no answer within the timeout (ReadTimeout: timed out)"
    assert result == CopyResult(source, target, "failed", image.digest, error=problem)
    assert messages == [f"{problem}; trying again in 0.0s (try 2 of 2)"]
    assert proxies.target_proxy.count("PUT", f"/v2/{dst}/blobs/uploads/.*{layer.replace(':', '%3A')}") == 2
    assert 2 * TIMEOUT <= elapsed < impatient.retry.tries * TIMEOUT
    assert not target_has(proxies.target.host, dst, "v1")
    assert not has_blob(proxies.target.host, dst, layer)


@pytest.mark.parametrize(("answers", "last", "timeouts"), [
    # Two tries of the chunk, two of the blob: four timeouts, not one per try of each (thirty-six).
    (("silent",), "no answer within the timeout (ReadTimeout: timed out)", 4),
    # A 503 after each unanswered try: the timeout still limits the blob to two tries.
    (("silent", 503), "HTTP 503 (and no answer within the timeout (ReadTimeout: timed out) before)", 2),
], ids=["no answer", "no answer then 503"])
def test_a_chunk_the_mirror_left_unanswered_is_sent_once_more_and_its_blob_copied_once_more(
        proxies: Loopback, impatient: Registries, answers: tuple[str | int, ...], last: str, timeouts: int) -> None:
    chunks = CopyOptions(upload=UploadSettings(monolithic_max=1000, chunk_size=1000))
    patches = [Fault("PATCH", "/v2/{dst}/blobs/uploads/", answer, times=1) for _ in range(12) for answer in answers]
    image, src, dst = arm(proxies, [], images.image((3_000,)), target_faults=patches)
    layer, source, target = image.blobs[-1].digest, f"{proxies.upstream.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1"
    result, messages, elapsed = timed_copy(impatient, source, target, chunks)
    problem = f"{proxies.target_proxy.host}/{dst}: upload blob {layer}: chunk 0-999 failed 2 times: {last}"
    assert result == CopyResult(source, target, "failed", image.digest, error=problem)
    why = {"silent": "no answer within the timeout (ReadTimeout: timed out)", 503: "HTTP 503"}
    broke = [f"{proxies.target_proxy.host}/{dst}: chunk 0-999 broke ({why[answer]}); asking where to resume"
             for answer in (answers * 2)[:2]]
    assert messages == [*broke, f"{problem}; trying again in 0.0s (try 2 of 2)", *broke]
    assert proxies.target_proxy.count("PATCH", f"/v2/{dst}/blobs/uploads/") == 4
    assert timeouts * TIMEOUT <= elapsed < 3 * timeouts * TIMEOUT
    assert not target_has(proxies.target.host, dst, "v1")
    assert not has_blob(proxies.target.host, dst, layer)


def test_a_blob_refused_on_every_try_is_asked_for_only_as_often_as_retries_allow(
        proxies: Loopback, registries: Registries) -> None:
    image, dst, result = copy_through_faults(proxies, registries, [Fault("GET", "/blobs/{layer}", 503, times=99)])
    layer = image.blobs[-1].digest
    assert result.status == "failed"
    assert result.error.endswith(f"download blob {layer}: HTTP 503 after {registries.retry.tries} tries")
    assert proxies.upstream_proxy.count("GET", f"/blobs/{layer}") == registries.retry.tries


def test_a_credential_helper_that_fails_fails_only_its_registrys_images(proxies: Loopback, tmp_path, monkeypatch) -> None:
    (tmp_path / "bin").mkdir()
    install_credential_helper(tmp_path / "bin", monkeypatch, "broken", "echo 'cannot reach the keychain' >&2; exit 1")
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"credHelpers": {proxies.upstream_proxy.host: "broken"}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    image = images.image((100,))
    src = unique_repo("upstream")
    images.push(proxies.upstream.host, src, image, "v1")
    proxies.upstream_proxy.routes.append(  # through the proxy the registry asks for credentials
        lambda method, path: Answer(401, {"WWW-Authenticate": 'Basic realm="x"'}, b"") if src in path else None)
    helped, plain = (f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{unique_repo('m')}:v1"), \
        (f"{proxies.upstream.host}/{src}:v1", f"{proxies.target.host}/{unique_repo('m')}:v1")
    found = {image.source: image for image in ensure_images([helped, plain])}
    assert found[plain[0]].status == "copied"
    assert found[helped[0]].status == "failed"
    host = proxies.upstream_proxy.host
    assert found[helped[0]].error == (f"{host}: credentials: docker-credential-broken get failed (exit 1); what it "
                                      "printed is not shown, as it may hold credentials: "
                                      f"`echo {host} | docker-credential-broken get` shows it")
