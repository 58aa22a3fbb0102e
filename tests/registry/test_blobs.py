"""Blob uploads against a real loopback registry: chunks tried again, upload sessions cancelled."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import pytest

from bot.registry import Registries, blobs
from bot.registry.blobs import UploadSessions
from bot.registry.errors import RetryableError
from bot.registry.manifests import Descriptor
from tests.helpers import logged
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo
from tests.oci.proxy import Fault
from tests.registry.test_copy import has_blob, wait_until


def layer(size: int) -> tuple[bytes, Descriptor]:
    data = os.urandom(size)
    return data, Descriptor(images.DOCKER_LAYER, images.digest_of(data), size)


def test_a_chunk_refused_with_retry_after_is_sent_again_after_the_wait_asked(
        proxies: Loopback, paced: tuple[Registries, list[float]]) -> None:
    registries, pauses = paced
    registry, repo = registries.get(proxies.target_proxy.host), unique_repo("mirror")
    data, descriptor = layer(3000)
    proxies.target_proxy.faults.append(Fault("PATCH", f"/v2/{repo}/blobs/uploads/", 429, headers={"Retry-After": "7"}))
    with logged(logging.INFO) as messages:
        blobs.put_chunked(registry, repo, blobs.start_upload(registry, repo), [data], descriptor, 1000)
    assert messages == [f"{proxies.target_proxy.host}/{repo}: chunk 0-999 broke (HTTP 429); asking where to resume"]
    assert pauses == [7.0]
    assert proxies.target_proxy.count("PATCH", f"/v2/{repo}/blobs/uploads/") == 3 + 1
    assert has_blob(proxies.target.host, repo, descriptor.digest)


def test_a_cancel_is_sent_even_after_an_interrupt(proxies: Loopback, registries: Registries) -> None:
    registry, repo = registries.get(proxies.target_proxy.host), unique_repo("mirror")
    upload = blobs.start_upload(registry, repo)
    registries.cancel()
    with logged(logging.DEBUG) as messages:
        blobs.cancel_upload(registry, repo, upload)
    assert (messages, proxies.target_proxy.count("DELETE", f"/v2/{repo}/blobs/uploads/")) == ([], 1)
    assert proxies.target.upload_sessions(repo) == {}


def broken_off(sent: bytes) -> Iterator[bytes]:
    """A body that stops part way, as one streamed from a download that stalled does."""
    yield sent
    raise RetryableError("source", "download blob", "no answer within the timeout mid-blob")


def test_a_cancel_the_registry_refuses_is_logged_and_the_session_left_to_it(
        proxies: Loopback, registries: Registries) -> None:
    """A session holding part of a blob: the upload URL's state says it holds nothing, and the 2.8 registry
    refuses (and fails) to cancel it; it stays until the registry purges unfinished uploads."""
    registry, repo = registries.get(proxies.target.host), unique_repo("mirror")
    data, descriptor = layer(200_000)
    upload = blobs.start_upload(registry, repo)
    with pytest.raises(RetryableError):
        blobs.put_monolithic(registry, repo, upload, broken_off(data[:65536]), descriptor)
    wait_until(lambda: list(proxies.target.upload_sessions(repo).values()) == [65536])
    with logged(logging.DEBUG) as messages:
        blobs.cancel_upload(registry, repo, upload)
    assert messages == [f"{proxies.target.host}/{repo}: cancel blob upload: HTTP 404 (BLOB_UPLOAD_INVALID: blob upload "
                        "invalid)"]
    assert list(proxies.target.upload_sessions(repo).values()) == [65536]


def test_a_cancel_left_unanswered_gives_up_after_its_timeout(
        proxies: Loopback, registries: Registries, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs, "CANCEL_TIMEOUT", 0.5)
    registry, repo = registries.get(proxies.target_proxy.host), unique_repo("mirror")
    upload = blobs.start_upload(registry, repo)
    proxies.target_proxy.faults.append(Fault("DELETE", "/blobs/uploads/", "silent"))
    started = time.monotonic()
    with logged(logging.DEBUG) as messages:
        blobs.cancel_upload(registry, repo, upload)
    assert 0.5 <= time.monotonic() - started < 1.5
    assert messages == [f"{proxies.target_proxy.host}/{repo}: cancel blob upload: no answer within the timeout "
                        "(ReadTimeout: timed out)"]


def test_the_sessions_left_open_are_cancelled_all_at_once(
        proxies: Loopback, registries: Registries, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many copies an interrupt left stuck, cancelling their sessions takes one cancel's timeout at most."""
    monkeypatch.setattr(blobs, "CANCEL_TIMEOUT", 1.0)
    registry, repo = registries.get(proxies.target_proxy.host), unique_repo("mirror")
    sessions = UploadSessions()
    stuck = [sessions.open(registry, repo, None) for _ in range(4)]  # copies that never come back
    for copy in stuck:
        copy.__enter__()
    proxies.target_proxy.faults.append(Fault("DELETE", "/blobs/uploads/", "silent", times=4))
    started = time.monotonic()
    sessions.cancel_all()
    assert 1.0 <= time.monotonic() - started < 2.0
    assert proxies.target_proxy.count("DELETE", f"/v2/{repo}/blobs/uploads/") == 4
