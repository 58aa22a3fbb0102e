"""A fault-injecting proxy in front of real registries: every copy ends verified or clearly failed."""
from __future__ import annotations

import json
import logging
import os
import time

import httpx

from bot.mirror import ensure_images
from bot.registry import Copier, CredentialStore, Registries
from bot.registry.client import Registry
from tests.helpers import logged
from tests.oci import images
from tests.oci.fixtures import FAST_RETRY, Loopback, unique_repo
from tests.oci.proxy import Answer, Fault


def target_has(host: str, repo: str, reference: str) -> bool:
    return httpx.head(f"http://{host}/v2/{repo}/manifests/{reference}",
                      headers={"Accept": images.DOCKER_MANIFEST}).status_code == 200


def copy_through_faults(proxies: Loopback, registries: Registries, faults: list[Fault],
                        image: images.Image | None = None) -> tuple[images.Image, str, object]:
    image = image or images.image((30_000, 40_000))
    src = unique_repo("upstream")
    images.push(proxies.upstream.host, src, image, "v1")
    for fault in faults:
        fault.path = fault.path.format(src=src, config=image.blobs[0].digest, layer=image.blobs[-1].digest)
    proxies.upstream_proxy.faults.extend(faults)
    dst = unique_repo("mirror")
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1")
    return image, dst, result


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


def test_a_registry_gone_silent_mid_blob_is_named_and_its_retries_shown(proxies: Loopback, tmp_path) -> None:
    silent = Registries(credentials=CredentialStore(environ={"DOCKER_CONFIG": str(tmp_path)}), retry=FAST_RETRY,
                        timeout=0.5)
    with silent, logged(logging.INFO) as messages:
        image, dst, result = copy_through_faults(proxies, silent, [Fault("GET", "/blobs/{layer}", "hang", times=99)])
    layer, src = image.blobs[-1].digest, result.source.split("/", 1)[1].rsplit(":", 1)[0]
    problem = f"{proxies.upstream_proxy.host}/{src}: download blob {layer}: no answer within the timeout mid-blob " \
              "(ReadTimeout: timed out)"
    assert (result.status, result.error) == ("failed", problem)
    retries = [m for m in messages if "trying again" in m]
    assert len(retries) == FAST_RETRY.tries - 1
    assert retries[0].startswith(f"{proxies.upstream_proxy.host}/{src}: download blob {layer}: no answer within the "
                                 "timeout mid-blob (ReadTimeout: timed out); trying again in ")
    assert retries[-1].endswith(f"(try {FAST_RETRY.tries} of {FAST_RETRY.tries})")
    assert not target_has(proxies.target.host, dst, "v1")


def test_a_blob_refused_on_every_try_is_asked_for_only_as_often_as_retries_allow(
        proxies: Loopback, registries: Registries) -> None:
    image, dst, result = copy_through_faults(proxies, registries, [Fault("GET", "/blobs/{layer}", 503, times=99)])
    layer = image.blobs[-1].digest
    assert result.status == "failed"
    assert result.error.endswith(f"download blob {layer}: HTTP 503 after {registries.retry.tries} tries")
    assert proxies.upstream_proxy.count("GET", f"/blobs/{layer}") == registries.retry.tries


def test_a_credential_helper_that_fails_fails_only_its_registrys_images(proxies: Loopback, tmp_path, monkeypatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-broken"
    helper.parent.mkdir()
    helper.write_text("#!/bin/sh\necho 'cannot reach the keychain' >&2\nexit 1\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{os.environ['PATH']}")
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
    assert "docker-credential-broken get failed" in found[helped[0]].error
