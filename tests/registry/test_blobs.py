"""Blob uploads against a real loopback registry: chunks tried again."""
from __future__ import annotations

import logging
import os

from bot.registry import Registries, blobs
from bot.registry.manifests import Descriptor
from tests.helpers import logged
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo
from tests.oci.proxy import Fault
from tests.registry.test_copy import has_blob


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
