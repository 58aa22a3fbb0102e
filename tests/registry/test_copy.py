"""Copies between real loopback registries: images, indexes, referrers, what is sent and what is not."""
from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable
from urllib.parse import quote, urlencode

import httpx
import pytest

from bot.registry import Copier, CopyOptions, CopyResult, Registries
from bot.registry.blobs import CANCEL_TIMEOUT, UploadSettings
from bot.registry.client import Registry
from tests.helpers import logged
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo
from tests.oci.proxy import Answer, Fault, Proxy
from tests.oci.servers import free_port


def manifest_bytes(host: str, repo: str, reference: str) -> bytes | None:
    response = httpx.get(f"http://{host}/v2/{repo}/manifests/{reference}", headers={"Accept": ", ".join((
        images.OCI_INDEX, images.OCI_MANIFEST, images.DOCKER_MANIFEST))})
    return response.content if response.status_code == 200 else None


def has_blob(host: str, repo: str, digest: str) -> bool:
    return httpx.head(f"http://{host}/v2/{repo}/blobs/{digest}").status_code == 200


def assert_complete_copy(host: str, repo: str, image: images.Image, reference: str) -> None:
    assert manifest_bytes(host, repo, reference) == image.manifest
    for child in image.children:
        assert manifest_bytes(host, repo, child.digest) == child.manifest
    for blob in image.all_blobs():
        assert has_blob(host, repo, blob.digest), blob.digest


def upstream_image(loopback: Loopback, image: images.Image, tag: str = "v1") -> str:
    repo = unique_repo("upstream")
    images.push(loopback.upstream.host, repo, image, tag)
    return repo


def seen(proxy: Proxy) -> list[tuple[str, str]]:
    """The requests the proxy saw, sorted (blobs go concurrently), each upload session written `<session>`."""
    return sorted((method, re.sub(r"/uploads/[^/?]+\?_state=[^&]+&", "/uploads/<session>?", path))
                  for method, path in proxy.requests)


def upload(repo: str, digest: str) -> tuple[str, str]:
    return "PUT", f"/v2/{repo}/blobs/uploads/<session>?digest={quote(digest)}"


def test_copy_single_image(loopback: Loopback, registries: Registries) -> None:
    image = images.image((3000, 5000))
    src = upstream_image(loopback, image)
    dst = unique_repo("mirror")
    with Copier(registries) as copier:
        result = copier.ensure(f"{loopback.upstream.host}/{src}:v1", f"{loopback.target.host}/{dst}:v1")
    assert result == CopyResult(
        source=f"{loopback.upstream.host}/{src}:v1", target=f"{loopback.target.host}/{dst}:v1", status="copied",
        digest=image.digest, platforms=["linux/amd64"], bytes=sum(len(b.data) for b in image.blobs), error=None,
    )
    assert result.verified_digest == image.digest
    assert_complete_copy(loopback.target.host, dst, image, "v1")


def test_copy_asks_the_target_only_what_it_must(proxies: Loopback, registries: Registries) -> None:
    image = images.image((3000,))
    config, layer = image.blobs
    src = upstream_image(proxies, image)
    dst = unique_repo("mirror")
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxies.upstream.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1")
    assert (result.status, result.platforms, result.error) == ("copied", ["linux/amd64"], None)
    # The platform comes from the config as it was copied, not read back from the target; the config is
    # sent without asking whether the target has it.
    assert seen(proxies.target_proxy) == sorted([
        ("GET", f"/v2/{dst}/manifests/v1"),
        ("HEAD", f"/v2/{dst}/blobs/{layer.digest}"),
        ("POST", f"/v2/{dst}/blobs/uploads/"),
        ("POST", f"/v2/{dst}/blobs/uploads/"),
        upload(dst, config.digest),
        upload(dst, layer.digest),
        ("PUT", f"/v2/{dst}/manifests/v1"),
        ("HEAD", f"/v2/{dst}/manifests/v1"),
    ])
    assert_complete_copy(proxies.target.host, dst, image, "v1")


def test_an_image_whose_blobs_the_target_holds_sends_only_its_config(proxies: Loopback, registries: Registries) -> None:
    """The target repository has the image under another tag: the layer is not sent again; the config,
    sent without asking, is (its few bytes, verified like any blob)."""
    image = images.image((3000,))
    config, layer = image.blobs
    src = upstream_image(proxies, image)
    dst = unique_repo("mirror")
    images.push(proxies.target.host, dst, image, "old")
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxies.upstream.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1")
    assert (result.status, result.bytes, result.platforms, result.error) == (
        "copied", len(config.data), ["linux/amd64"], None)
    assert seen(proxies.target_proxy) == sorted([
        ("GET", f"/v2/{dst}/manifests/v1"),
        ("HEAD", f"/v2/{dst}/blobs/{layer.digest}"),
        ("POST", f"/v2/{dst}/blobs/uploads/"),
        upload(dst, config.digest),
        ("PUT", f"/v2/{dst}/manifests/v1"),
        ("HEAD", f"/v2/{dst}/manifests/v1"),
    ])
    assert_complete_copy(proxies.target.host, dst, image, "v1")


def test_copy_index_with_every_platform(loopback: Loopback, registries: Registries) -> None:
    index = images.multi_platform()
    src = upstream_image(loopback, index, "3.1")
    dst = unique_repo("mirror")
    with Copier(registries) as copier:
        result = copier.ensure(f"{loopback.upstream.host}/{src}:3.1", f"{loopback.target.host}/{dst}:3.1")
    assert (result.status, result.digest, result.error) == ("copied", index.digest, None)
    assert result.platforms == ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]
    assert result.bytes == sum(len(b.data) for b in index.all_blobs())
    assert_complete_copy(loopback.target.host, dst, index, "3.1")


def test_present_image_moves_no_blob(proxies: Loopback, registries: Registries) -> None:
    index = images.multi_platform()
    src = upstream_image(proxies, index)
    source = f"{proxies.upstream_proxy.host}/{src}:v1"
    target = f"{proxies.target_proxy.host}/{unique_repo('mirror')}:v1"
    with Copier(registries) as copier:
        assert copier.ensure(source, target).status == "copied"
    proxies.upstream_proxy.reset()
    proxies.target_proxy.reset()
    with Copier(registries) as copier:
        result = copier.ensure(source, target)
    assert (result.status, result.bytes, result.digest) == ("present", 0, index.digest)
    # The first copy learned that this registry does not serve the referrers API (a 404): not asked again.
    assert registries.get(proxies.upstream_proxy.host).serves_referrers is False
    assert proxies.upstream_proxy.requests == [
        ("HEAD", f"/v2/{src}/manifests/v1"),
        ("GET", f"/v2/{src}/tags/list"),
    ]
    assert [r for r in proxies.target_proxy.requests if "/blobs/" in r[1]] == []


def test_shared_layers_are_copied_once_and_mounted(proxies: Loopback, registries: Registries) -> None:
    base = images.random_layer(20_000)
    first, second = images.image((100,), shared=(base,)), images.image((200,), shared=(base,))
    src1, src2 = upstream_image(proxies, first), upstream_image(proxies, second)
    dst1, dst2 = unique_repo("mirror"), unique_repo("mirror")
    up, down = proxies.upstream_proxy.host, proxies.target_proxy.host
    with Copier(registries) as copier:
        one = copier.ensure(f"{up}/{src1}:v1", f"{down}/{dst1}:v1")
        two = copier.ensure(f"{up}/{src2}:v1", f"{down}/{dst2}:v1")
    assert (one.status, two.status) == ("copied", "copied")
    assert proxies.upstream_proxy.count("GET", f"/blobs/{base.digest}") == 1
    mount = f"/v2/{dst2}/blobs/uploads/?{urlencode({'mount': base.digest, 'from': dst1})}"
    assert proxies.target_proxy.requests.count(("POST", mount)) == 1
    assert two.bytes == sum(len(b.data) for b in second.blobs) - len(base.data)
    assert_complete_copy(proxies.target.host, dst2, second, "v1")


def test_mount_within_the_same_registry(proxies: Loopback, registries: Registries) -> None:
    image = images.image()
    src = upstream_image(proxies, image)
    dst = unique_repo("mirror")
    host = proxies.upstream_proxy.host
    with Copier(registries) as copier:
        result = copier.ensure(f"{host}/{src}:v1", f"{host}/{dst}:v1")
    assert (result.status, result.bytes) == ("copied", 0)
    assert proxies.upstream_proxy.count("GET", "/blobs/sha256:") == 1  # the config, read for the platform
    assert proxies.upstream_proxy.count("POST", f"/v2/{dst}/blobs/uploads/\\?mount=") == len(image.blobs)
    assert_complete_copy(proxies.upstream.host, dst, image, "v1")


def test_tag_and_digest_is_copied_by_digest_and_tagged(loopback: Loopback, registries: Registries) -> None:
    pinned, moved_on = images.image(), images.image()
    src = upstream_image(loopback, pinned, "1.0")
    images.push(loopback.upstream.host, src, moved_on, "1.0")  # the tag moved upstream since it was pinned
    dst = unique_repo("mirror")
    with Copier(registries) as copier:
        result = copier.ensure(f"{loopback.upstream.host}/{src}:1.0@{pinned.digest}",
                               f"{loopback.target.host}/{dst}:1.0@{pinned.digest}")
    assert (result.status, result.digest) == ("copied", pinned.digest)
    assert_complete_copy(loopback.target.host, dst, pinned, "1.0")


def test_no_tag_means_latest(loopback: Loopback, registries: Registries) -> None:
    image = images.image()
    src = upstream_image(loopback, image, "latest")
    dst = unique_repo("mirror")
    with Copier(registries) as copier:
        result = copier.ensure(f"{loopback.upstream.host}/{src}", f"{loopback.target.host}/{dst}")
    assert (result.source, result.target, result.status) == (
        f"{loopback.upstream.host}/{src}", f"{loopback.target.host}/{dst}", "copied")
    assert_complete_copy(loopback.target.host, dst, image, "latest")


def test_moved_tag_differs_unless_refresh(loopback: Loopback, registries: Registries) -> None:
    old, new = images.image(), images.image()
    src = upstream_image(loopback, old)
    dst = unique_repo("mirror")
    source, target = f"{loopback.upstream.host}/{src}:v1", f"{loopback.target.host}/{dst}:v1"
    with Copier(registries) as copier:
        assert copier.ensure(source, target).status == "copied"
    images.push(loopback.upstream.host, src, new, "v1")
    with Copier(registries) as copier:
        differs = copier.ensure(source, target)
    assert differs == CopyResult(source, target, "differs", new.digest, [], 0,
                                 f"{target} holds {old.digest}; the source is now {new.digest} "
                                 f"(left alone; --refresh replaces it)", old.digest)
    assert differs.verified_digest is None
    assert manifest_bytes(loopback.target.host, dst, "v1") == old.manifest
    with Copier(registries, CopyOptions(refresh=True)) as copier:
        refreshed = copier.ensure(source, target)
    assert (refreshed.status, refreshed.digest) == ("copied", new.digest)
    assert_complete_copy(loopback.target.host, dst, new, "v1")


def two_images_one_mirror_tag(proxies: Loopback,
                              registries: Registries) -> tuple[images.Image, images.Image, str, str, str]:
    """Two images upstream, the first copied to the mirror tag the second is then sent to, as a mapping sending
    both to one name does: (first, second, the second's repository, the mirror repository, the mirror tag)."""
    first, second = images.image(), images.image()
    first_src, second_src = upstream_image(proxies, first), upstream_image(proxies, second)
    dst = unique_repo("mirror")
    target = f"{proxies.target.host}/{dst}:v1"
    with Copier(registries) as copier:
        assert copier.ensure(f"{proxies.upstream_proxy.host}/{first_src}:v1", target).status == "copied"
    return first, second, second_src, dst, target


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_mirror_tag_holding_an_image_the_source_does_not_have_differs_saying_so(
        proxies: Loopback, registries: Registries, dry_run: bool) -> None:
    """Two images mapped to one name: the second finds the first's copy, which its source never had."""
    first, second, second_src, dst, target = two_images_one_mirror_tag(proxies, registries)
    up = proxies.upstream_proxy.host
    proxies.upstream_proxy.reset()
    source = f"{up}/{second_src}:v1"
    with Copier(registries, CopyOptions(dry_run=dry_run)) as copier:
        differs = copier.ensure(source, target)
    assert differs == CopyResult(source, target, "differs", second.digest, [], 0, (
        f"{target} holds {first.digest}, an image {up}/{second_src} does not have (another image's copy, as when a "
        f"mapping sends two images to one name, or one the source deleted); the source is {second.digest} (left "
        "alone; check the mapping first: --refresh would replace it)"), first.digest)
    assert ("HEAD", f"/v2/{second_src}/manifests/{first.digest}") in proxies.upstream_proxy.requests
    assert manifest_bytes(proxies.target.host, dst, "v1") == first.manifest


@pytest.mark.parametrize(("action", "why"), [
    (403, "HTTP 403\nhint: the credentials used: anonymous (no credentials found); log in with `docker login {up}` or "
          "--username USER --password-stdin; `rehome doctor --to {up}/{src}` checks them"),
    ("reset-request", "connection failed after 4 tries (RemoteProtocolError: Server disconnected without sending a "
                      "response.)"),
], ids=["refused", "no-answer"])
def test_a_mirror_tag_whose_image_the_source_cannot_be_asked_about_differs_saying_so(
        proxies: Loopback, registries: Registries, action: int | str, why: str) -> None:
    """The HEAD that tells a moved tag from another image's copy is refused or unanswered: the mirror tag is
    still left alone, and the reason says what could not be checked and why."""
    first, second, second_src, dst, target = two_images_one_mirror_tag(proxies, registries)
    up = proxies.upstream_proxy.host
    proxies.upstream_proxy.faults.append(Fault("HEAD", f"/v2/{second_src}/manifests/{first.digest}", action, times=99))
    source = f"{up}/{second_src}:v1"
    with Copier(registries) as copier:
        differs = copier.ensure(source, target)
    assert differs == CopyResult(source, target, "differs", second.digest, [], 0, (
        f"{target} holds {first.digest}; the source is {second.digest} (left alone; check the mapping first: "
        f"--refresh would replace it). Whether the source's tag moved or the mirror holds another image's copy could "
        f"not be checked: {up}/{second_src}: look up the mirror's image: " + why.format(up=up, src=second_src)),
        first.digest)
    assert manifest_bytes(proxies.target.host, dst, "v1") == first.manifest


def test_dry_run_copies_nothing(proxies: Loopback, registries: Registries) -> None:
    image = images.image()
    src = upstream_image(proxies, image)
    dst = unique_repo("mirror")
    source, target = f"{proxies.upstream_proxy.host}/{src}", f"{proxies.target_proxy.host}/{dst}"
    with Copier(registries, CopyOptions(dry_run=True)) as copier:
        missing = copier.ensure(f"{source}:v1", f"{target}:v1")
        gone = copier.ensure(f"{source}:nope", f"{target}:nope")
    assert (missing.status, missing.digest, missing.platforms, missing.bytes) == ("missing", image.digest, ["linux/amd64"], 0)
    assert gone == CopyResult(f"{source}:nope", f"{target}:nope", "failed",
                              error=f"{source}: resolve tag nope: no such image (manifest unknown)")
    assert [m for m, _ in proxies.target_proxy.requests] == ["GET", "GET"]  # each image's check
    assert not {m for m, _ in proxies.upstream_proxy.requests} - {"HEAD", "GET"}


@pytest.mark.parametrize("what", ["tag", "repository", "digest"])
def test_a_dry_run_fails_an_image_the_source_does_not_have_as_the_real_run_does(
        loopback: Loopback, registries: Registries, what: str) -> None:
    up, src = loopback.upstream.host, upstream_image(loopback, images.image())
    source = {"tag": f"{up}/{src}:nope", "repository": f"{up}/{unique_repo('never-pushed')}:v1",
              "digest": f"{up}/{src}@sha256:{'0' * 64}"}[what]
    target = f"{loopback.target.host}/{unique_repo('mirror')}:v1"
    no_tag = "no such image (manifest unknown)"
    reason = {"tag": f"{up}/{src}: resolve tag nope: {no_tag}",
              "repository": f"{source.rsplit(':', 1)[0]}: resolve tag v1: {no_tag}",
              "digest": f"{up}/{src}: get manifest sha256:{'0' * 64}: {no_tag}"}[what]
    with Copier(registries, CopyOptions(dry_run=True)) as dry, Copier(registries) as real:
        assert dry.ensure(source, target) == real.ensure(source, target) == CopyResult(source, target, "failed",
                                                                                       error=reason)


# Web servers that are no registry: a 404 page everywhere, a web app's page everywhere, a JSON health endpoint.
WEB_SERVERS = {
    "404 page": Answer(404, {"Content-Type": "text/html"}, b"<html><body>Not Found</body></html>"),
    "200 page": Answer(200, {"Content-Type": "text/html"}, b"<html><body>app</body></html>"),
    "200 JSON": Answer(200, {"Content-Type": "application/json"}, b'{"ok": true}'),
}


def no_registry_at(host: str, step: str, status: int) -> str:
    return (f"{step}: {host} does not speak the registry API: http://{host}/v2/ answered HTTP {status}, not as a "
            "registry does\nhint: check the image's host name and port: no registry answers there")


@pytest.mark.parametrize("server", WEB_SERVERS)
@pytest.mark.parametrize(("reference", "step"), [(":1", "resolve tag 1"),
                                                 (f"@sha256:{'0' * 64}", f"get manifest sha256:{'0' * 64}")],
                         ids=["tag", "digest"])
def test_a_web_server_at_the_source_address_is_said_to_be_no_registry_not_to_lack_the_image(
        proxies: Loopback, registries: Registries, server: str, reference: str, step: str) -> None:
    host, answer = proxies.upstream_proxy.host, WEB_SERVERS[server]
    proxies.upstream_proxy.routes.append(lambda method, path: answer)
    source, target = f"{host}/x{reference}", f"{proxies.target.host}/{unique_repo('mirror')}:1"
    reason = f"{host}/x: {no_registry_at(host, step, answer.status)}"
    with Copier(registries, CopyOptions(dry_run=True)) as dry, Copier(registries) as real:
        assert dry.ensure(source, target) == real.ensure(source, target) == CopyResult(source, target, "failed",
                                                                                       error=reason)
    assert proxies.upstream_proxy.count("GET", "^/v2/$") == 2  # one question more for each, once it failed


@pytest.mark.parametrize(("server", "uploads", "step"), [
    ("200 page", "200 page", "check target"),
    ("200 JSON", "200 JSON", "check target"),
    ("404 page", "404 page", "start blob upload"),
    ("404 page", "405 page", "start blob upload"),  # a static site, that allows no POST
])
def test_a_web_server_at_the_target_address_is_said_to_be_no_registry(
        loopback: Loopback, proxies: Loopback, registries: Registries, server: str, uploads: str, step: str) -> None:
    host, image = proxies.target_proxy.host, images.image((100,))
    src = upstream_image(loopback, image)
    answers = {**WEB_SERVERS, "405 page": Answer(405, {"Content-Type": "text/html"}, b"<html>Not Allowed</html>")}
    proxies.target_proxy.routes.append(lambda method, path: answers[uploads if method == "POST" else server])
    source, target = f"{loopback.upstream.host}/{src}:v1", f"{host}/w/x:v1"
    with Copier(registries) as copier:
        result = copier.ensure(source, target)
    digest = image.digest if step == "start blob upload" else None  # the source was asked first
    reason = f"{host}/w/x: {no_registry_at(host, step, answers[server].status)}"
    assert result == CopyResult(source, target, "failed", digest, error=reason)
    assert proxies.target_proxy.count("GET", "^/v2/$") == 1


@pytest.mark.parametrize("page", [WEB_SERVERS["404 page"], Answer(404, {}, b"")], ids=["404 page", "empty 404"])
def test_a_dry_run_says_a_web_server_at_the_target_address_is_no_registry_not_that_the_image_is_missing(
        loopback: Loopback, proxies: Loopback, registries: Registries, page: Answer) -> None:
    host, src = proxies.target_proxy.host, upstream_image(loopback, images.image((100,)))
    proxies.target_proxy.routes.append(lambda method, path: page)
    source, target = f"{loopback.upstream.host}/{src}:v1", f"{host}/w/x:v1"
    with Copier(registries, CopyOptions(dry_run=True)) as dry:
        result = dry.ensure(source, target)
    assert result == CopyResult(source, target, "failed", error=f"{host}/w/x: {no_registry_at(host, 'check target', 404)}")
    assert proxies.target_proxy.requests == [("GET", "/v2/w/x/manifests/v1"), ("GET", "/v2/")]


HEALTH = Answer(200, {"Content-Type": "application/json"}, b'{"status": "ok"}')


def test_a_health_endpoint_at_the_target_address_is_no_registry_to_a_dry_run_as_to_the_real_run(
        loopback: Loopback, proxies: Loopback, registries: Registries) -> None:
    """`/v2/` answers JSON without the registry API's header, every other path a 404 page: as `rehome doctor` does,
    the tag list tells it from a registry that leaves the header out."""
    host, image = proxies.target_proxy.host, images.image((100,))
    src = upstream_image(loopback, image)
    page = WEB_SERVERS["404 page"]
    proxies.target_proxy.routes.append(lambda method, path: HEALTH if path == "/v2/" else page)
    source, target = f"{loopback.upstream.host}/{src}:v1", f"{host}/w/x:v1"
    with Copier(registries, CopyOptions(dry_run=True)) as dry:
        dry_result = dry.ensure(source, target)
    assert dry_result == CopyResult(source, target, "failed", error=f"{host}/w/x: {no_registry_at(host, 'check target', 200)}")
    assert proxies.target_proxy.requests == [("GET", "/v2/w/x/manifests/v1"), ("GET", "/v2/"), ("GET", "/v2/w/x/tags/list")]
    with Copier(registries) as real:
        assert real.ensure(source, target) == CopyResult(source, target, "failed", image.digest, error=(
            f"{host}/w/x: {no_registry_at(host, 'start blob upload', 200)}"))


def test_a_registry_that_leaves_out_the_api_header_is_copied_to_without_asking_its_tag_list(
        loopback: Loopback, proxies: Loopback, registries: Registries) -> None:
    proxy, image = proxies.target_proxy, images.image((100,))
    src, dst = upstream_image(loopback, image), unique_repo("mirror")
    proxy.routes.append(lambda method, path: HEALTH if path == "/v2/" else None)
    source, target = f"{loopback.upstream.host}/{src}:v1", f"{proxy.host}/{dst}:v1"
    with Copier(registries, CopyOptions(dry_run=True)) as dry, Copier(registries) as real:
        assert [dry.ensure(source, target).status, real.ensure(source, target).status] == ["missing", "copied"]
    assert proxy.count("GET", "^/v2/$") == proxy.count("GET", "/tags/list") == 0
    assert_complete_copy(loopback.target.host, dst, image, "v1")


def test_a_registry_that_leaves_out_the_api_header_and_sends_manifests_as_json_is_copied_from(
        loopback: Loopback, proxies: Loopback, registries: Registries) -> None:
    proxy, image = proxies.upstream_proxy, images.image((100,))
    src = upstream_image(loopback, image)
    proxy.routes.append(lambda method, path: Answer(200, {"Content-Type": "application/json"}, b"{}") if path == "/v2/"
                        else None)
    proxy.add_headers.append(("GET", "/manifests/", {"content-type": "application/json"}))
    dst = unique_repo("mirror")
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxy.host}/{src}:v1", f"{loopback.target.host}/{dst}:v1")
    assert (result.status, result.digest) == ("copied", image.digest)
    assert_complete_copy(loopback.target.host, dst, image, "v1")


def test_a_registry_that_answers_a_page_for_a_manifest_says_the_answer_is_not_one(
        loopback: Loopback, proxies: Loopback, registries: Registries) -> None:
    proxy, src = proxies.upstream_proxy, upstream_image(loopback, images.image((100,)))
    page = WEB_SERVERS["200 page"]
    proxy.routes.append(lambda method, path: page if "/manifests/" in path else None)  # its /v2/ is the registry's
    source, target = f"{proxy.host}/{src}:v1", f"{loopback.target.host}/{unique_repo('mirror')}:v1"
    with Copier(registries) as copier:
        assert copier.ensure(source, target) == CopyResult(source, target, "failed", error=(
            f"{proxy.host}/{src}: resolve tag v1: the answer is not a manifest (Content-Type text/html)"))


@pytest.mark.parametrize("what", ["login refused", "no answer"])
def test_a_dry_run_that_cannot_tell_says_unknown_where_the_real_run_fails(
        loopback: Loopback, registries: Registries, what: str) -> None:
    repo = unique_repo("upstream")
    host = loopback.basic.host if what == "login refused" else f"127.0.0.1:{free_port()}"
    source, target = f"{host}/{repo}:v1", f"{loopback.target.host}/{unique_repo('mirror')}:v1"
    with Copier(registries, CopyOptions(dry_run=True)) as dry:
        unknown = dry.ensure(source, target)
    # The real run is another run: a registry that gave the dry run no answer is asked again.
    with Registries(credentials=registries.credentials, retry=registries.retry) as real_run, Copier(real_run) as real:
        failed = real.ensure(source, target)
    reason = {"login refused": "HTTP 401 (UNAUTHORIZED: authentication required)\nhint: the credentials used: "
                               f"anonymous (no credentials found); log in with `docker login {host}` or --username "
                               f"USER --password-stdin; `rehome doctor --to {host}/{repo}` checks them",
              "no answer": "connection failed after 4 tries (ConnectError: [Errno 111] Connection refused)"}[what]
    assert (unknown.status, failed.status) == ("unknown", "failed")
    assert unknown.error == failed.error == f"{host}/{repo}: resolve tag v1: {reason}"


def test_signatures_that_could_not_be_copied_keep_the_hint_on_its_own_line(proxies: Loopback,
                                                                           registries: Registries) -> None:
    image = images.image()
    signature = images.signature_for(image)
    src = upstream_image(proxies, image)
    images.push(proxies.upstream.host, src, signature, image.digest.replace(":", "-") + ".sig")
    for method in ("HEAD", "GET"):  # the signature's manifest would eat into the last of the pull quota
        proxies.upstream_proxy.add_headers.append((method, "/manifests/", {"ratelimit-remaining": "3;w=21600"}))
    host = proxies.upstream_proxy.host
    with Copier(registries) as copier:
        result = copier.ensure(f"{host}/{src}:v1", f"{proxies.target.host}/{unique_repo('mirror')}:v1")
    assert (result.status, result.error) == (
        "copied", f"the image is verified, but its signatures and attestations were not copied: {host}/{src}: get "
                  f"manifest {signature.digest}: stopped: only 3 pulls left in the registry's rate limit (the window "
                  "is 6h) (--no-referrers leaves them out)\n"
                  "hint: wait for the window to pass, or log in to raise the limit (docker login)")


def test_cosign_signature_travels_unless_disabled(loopback: Loopback, registries: Registries) -> None:
    image = images.image()
    signature = images.signature_for(image)
    sig_tag = image.digest.replace(":", "-") + ".sig"
    src = upstream_image(loopback, image)
    images.push(loopback.upstream.host, src, signature, sig_tag)
    without, with_sig = unique_repo("mirror"), unique_repo("mirror")
    with Copier(registries, CopyOptions(referrers=False)) as copier:
        copier.ensure(f"{loopback.upstream.host}/{src}:v1", f"{loopback.target.host}/{without}:v1")
    with Copier(registries) as copier:
        result = copier.ensure(f"{loopback.upstream.host}/{src}:v1", f"{loopback.target.host}/{with_sig}:v1")
    assert manifest_bytes(loopback.target.host, without, sig_tag) is None
    assert result.status == "copied"
    assert result.bytes == sum(len(b.data) for b in image.blobs + signature.blobs)
    assert_complete_copy(loopback.target.host, with_sig, signature, sig_tag)


def serve_referrers(proxy: Proxy, repo: str, listed: dict[str, list[images.Image]]) -> None:
    """The OCI referrers API on the proxy (the 2.8 registry has none): subject digest -> its referrers."""
    def listing(referrers: list[images.Image]) -> bytes:
        return httpx.Response(200, json={"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": [
            {"mediaType": images.OCI_MANIFEST, "digest": r.digest, "size": r.size,
             "artifactType": "application/vnd.example.sbom"} for r in referrers]}).content

    def referrers_api(method: str, path: str) -> Answer | None:
        for subject, referrers in listed.items():
            if path == f"/v2/{repo}/referrers/{subject}":
                return Answer(200, {"Content-Type": images.OCI_INDEX}, listing(referrers))
        return None

    proxy.routes.append(referrers_api)


def copy_through_proxies(proxies: Loopback, registries: Registries, src: str) -> tuple[str, CopyResult]:
    dst = unique_repo("mirror")
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1")
    return dst, result


def test_referrers_api_is_followed(proxies: Loopback, registries: Registries) -> None:
    image = images.image()
    sbom = images.referrer_for(image)
    src = upstream_image(proxies, image)
    images.push(proxies.upstream.host, src, sbom)
    serve_referrers(proxies.upstream_proxy, src, {image.digest: [sbom]})
    dst, result = copy_through_proxies(proxies, registries, src)
    assert result.status == "copied"
    assert_complete_copy(proxies.target.host, dst, sbom, sbom.digest)


def test_referrers_of_referrers_travel_and_a_cycle_ends(proxies: Loopback, registries: Registries) -> None:
    # image <- SBOM (listed by the referrers API) <- cosign signature of the SBOM (a tag); the API also
    # lists the image as a referrer of its own SBOM, a cycle the copy must not follow forever.
    image = images.image()
    sbom = images.referrer_for(image)
    signature = images.signature_for(sbom)
    sig_tag = sbom.digest.replace(":", "-") + ".sig"
    src = upstream_image(proxies, image)
    images.push(proxies.upstream.host, src, sbom)
    images.push(proxies.upstream.host, src, signature, sig_tag)
    serve_referrers(proxies.upstream_proxy, src, {image.digest: [sbom], sbom.digest: [image]})
    dst, result = copy_through_proxies(proxies, registries, src)
    assert result.status == "copied"
    unique_blobs = {b.digest: len(b.data) for b in image.blobs + sbom.blobs + signature.blobs}  # one empty config
    assert result.bytes == sum(unique_blobs.values())
    assert_complete_copy(proxies.target.host, dst, sbom, sbom.digest)
    assert_complete_copy(proxies.target.host, dst, signature, sig_tag)
    # Each referrer listing was asked for once: the image's, the SBOM's, then the signature's.
    listings = [path for method, path in proxies.upstream_proxy.requests if "/referrers/" in path]
    assert listings == [f"/v2/{src}/referrers/{d}" for d in (image.digest, sbom.digest, signature.digest)]


def test_chunked_upload_honours_min_chunk_length_and_resumes(proxies: Loopback, registries: Registries) -> None:
    image = images.image((50_000,))
    layer = image.blobs[1]
    src = upstream_image(proxies, image)
    dst = unique_repo("mirror")
    proxies.target_proxy.add_headers.append(("POST", f"/v2/{dst}/blobs/uploads/", {"OCI-Chunk-Min-Length": "20000"}))
    # The second chunk of the layer is lost on the way: the copy asks the registry where to resume.
    proxies.target_proxy.faults.append(Fault("PATCH", f"/v2/{dst}/blobs/uploads/", "reset-request"))
    settings = UploadSettings(monolithic_max=1000, chunk_size=1000)
    with Copier(registries, CopyOptions(upload=settings)) as copier:
        result = copier.ensure(f"{proxies.upstream.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1")
    assert result.status == "copied", result.error
    patches = proxies.target_proxy.count("PATCH", f"/v2/{dst}/blobs/uploads/")
    assert patches == 3 + 1  # 50 000 bytes in chunks of 20 000, one of them sent twice
    assert proxies.target_proxy.count("GET", f"/v2/{dst}/blobs/uploads/") == 1
    assert has_blob(proxies.target.host, dst, layer.digest)
    assert_complete_copy(proxies.target.host, dst, image, "v1")


@pytest.mark.parametrize("oci", [False, True])
def test_skopeo_copy_gives_the_same_digest(loopback: Loopback, registries: Registries, oci: bool) -> None:
    index = images.multi_platform() if oci else images.image()
    src = upstream_image(loopback, index)
    ours, theirs = unique_repo("mirror"), unique_repo("skopeo")
    with Copier(registries) as copier:
        result = copier.ensure(f"{loopback.upstream.host}/{src}:v1", f"{loopback.target.host}/{ours}:v1")
    subprocess.run(
        ["skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
         f"docker://{loopback.upstream.host}/{src}:v1", f"docker://{loopback.target.host}/{theirs}:v1"],
        check=True, capture_output=True, timeout=60,
    )
    inspect = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{loopback.target.host}/{theirs}:v1"],
        check=True, capture_output=True, timeout=60,
    )
    assert images.digest_of(inspect.stdout) == result.digest == index.digest
    assert manifest_bytes(loopback.target.host, ours, "v1") == inspect.stdout


def test_immutable_tag_refusal_is_reported_as_such(proxies: Loopback, registries: Registries) -> None:
    old, new = images.image(), images.image()
    src = upstream_image(proxies, old)
    dst = unique_repo("mirror")
    source, target = f"{proxies.upstream.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1"
    with Copier(registries) as copier:
        assert copier.ensure(source, target).status == "copied"
    images.push(proxies.upstream.host, src, new, "v1")
    message = "tag v1 cannot be moved: the repository has immutable tags"
    proxies.target_proxy.faults.append(Fault("PUT", f"/v2/{dst}/manifests/v1", 400, headers={
        "Content-Type": "application/json"}, body=httpx.Response(400, json={"errors": [
            {"code": "MANIFEST_INVALID", "message": message}]}).content))
    with Copier(registries, CopyOptions(refresh=True)) as copier:
        refused = copier.ensure(source, target)
    assert (refused.status, refused.digest) == ("failed", new.digest)
    assert refused.error == (f"{target.rsplit(':', 1)[0]}: push manifest v1: refused because the repository has "
                             f"immutable tags (HTTP 400 (MANIFEST_INVALID: {message}))")
    assert manifest_bytes(proxies.target.host, dst, "v1") == old.manifest


@pytest.mark.parametrize("quota", [False, True])
def test_what_a_new_image_costs_the_source(proxies: Loopback, registries: Registries, monkeypatch, quota: bool) -> None:
    """Without a pull quota the manifest is fetched by tag at once; from a registry with one (Docker Hub), the
    tag's digest is looked up first by HEAD, which does not count as a pull, then the manifest fetched by digest."""
    monkeypatch.setattr(Registry, "meters_pulls", quota)
    image = images.image((3000,))
    config, layer = image.blobs
    src = upstream_image(proxies, image)
    dst, result = copy_through_proxies(proxies, registries, src)
    assert (result.status, result.digest) == ("copied", image.digest)
    lookup = [("HEAD", f"/v2/{src}/manifests/v1"), ("GET", f"/v2/{src}/manifests/{image.digest}")] if quota else [
        ("GET", f"/v2/{src}/manifests/v1")]
    assert seen(proxies.upstream_proxy) == sorted([
        *lookup,
        ("GET", f"/v2/{src}/blobs/{config.digest}"),
        ("GET", f"/v2/{src}/blobs/{layer.digest}"),
        ("GET", f"/v2/{src}/tags/list"),
        ("GET", f"/v2/{src}/referrers/{image.digest}"),
    ])


def test_an_index_of_indexes_lists_the_platforms_of_the_index_inside(proxies: Loopback, registries: Registries) -> None:
    inner = images.multi_platform()
    outer = images.nested(inner)
    src, dst = upstream_image(proxies, outer), unique_repo("mirror")
    source, target = f"{proxies.upstream.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1"
    platforms = ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]
    with Copier(registries, CopyOptions(dry_run=True)) as dry:
        assert dry.ensure(source, target) == CopyResult(source, target, "missing", outer.digest, platforms)
    with Copier(registries) as copier:
        copied = copier.ensure(source, target)
        present = copier.ensure(source, target)
    sent = sum(len(b.data) for b in outer.all_blobs())
    assert (copied, present) == (CopyResult(source, target, "copied", outer.digest, platforms, sent),
                                 CopyResult(source, target, "present", outer.digest, platforms))
    assert_complete_copy(proxies.target.host, dst, outer, "v1")


@pytest.mark.parametrize(("method", "answer"), [("HEAD", 404), ("PUT", 201)],
                         ids=["tag not found after the push", "push answered 201 and not stored"])
def test_a_tag_missing_after_the_push_fails_saying_so(proxies: Loopback, registries: Registries, method: str,
                                                      answer: int) -> None:
    image = images.image((3000,))
    src, dst = upstream_image(proxies, image), unique_repo("mirror")
    source, target = f"{proxies.upstream.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1"
    proxies.target_proxy.faults.append(Fault(method, f"/v2/{dst}/manifests/v1", answer))
    with Copier(registries) as copier:
        result = copier.ensure(source, target)
    assert result == CopyResult(source, target, "failed", image.digest, bytes=sum(len(b.data) for b in image.blobs),
                                error=f"{proxies.target_proxy.host}/{dst}: verify the copy: the tag v1 is not there "
                                      "after the push (HTTP 404)")


@pytest.mark.parametrize("refusals", [2, 99], ids=["refused twice", "refused every time"])
def test_a_blob_upload_refused_with_retry_after_is_tried_again_after_the_wait_asked(
        proxies: Loopback, paced: tuple[Registries, list[float]], refusals: int) -> None:
    registries, pauses = paced
    image = images.image((3000,))
    layer = image.blobs[-1].digest
    src, dst = upstream_image(proxies, image), unique_repo("mirror")
    source, target = f"{proxies.upstream.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1"
    proxies.target_proxy.faults.append(Fault("PUT", f"/v2/{dst}/blobs/uploads/.*digest={quote(layer)}", 429,
                                             times=refusals, headers={"Retry-After": "7"}))
    with logged(logging.INFO) as messages, Copier(registries) as copier:
        result = copier.ensure(source, target)
    tries = registries.retry.tries
    made = min(refusals + 1, tries)
    refused = f"{proxies.target_proxy.host}/{dst}: upload blob {layer}: HTTP 429"
    assert messages == [f"{refused}; trying again in 7.0s (try {n} of {tries})" for n in range(2, made + 1)]
    assert pauses == [7.0] * (made - 1)
    if refusals < tries:
        assert result == CopyResult(source, target, "copied", image.digest, ["linux/amd64"],
                                    sum(len(b.data) for b in image.blobs))
    else:
        assert result == CopyResult(source, target, "failed", image.digest, error=f"{refused} after {tries} tries")
    assert proxies.target.upload_sessions(dst) == {}  # each refused try's session was cancelled


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("stuck", ["download", "upload"])
def test_an_interrupted_copy_cancels_the_upload_session_of_a_blob_stuck_on_the_network(
        proxies: Loopback, registries: Registries, stuck: str) -> None:
    """Ctrl-C (`cancel`, as `copy` and `mirror` do on it) while a layer's download, or its upload, gets no
    answer: the copy stuck on it is not waited for, and the session it opened is cancelled, once, at once."""
    image = images.image((3000,))
    config, layer = image.blobs[0].digest, image.blobs[-1].digest
    src, dst = upstream_image(proxies, image), unique_repo("mirror")
    source, target = f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1"
    proxy, method, path = {"download": (proxies.upstream_proxy, "GET", f"/blobs/{layer}"),
                           "upload": (proxies.target_proxy, "PUT", f"digest={quote(layer)}")}[stuck]
    proxy.faults.append(Fault(method, path, "silent"))
    copier = Copier(registries)
    results: list[CopyResult] = []
    copying = threading.Thread(target=lambda: results.append(copier.ensure(source, target)), daemon=True)
    with logged(logging.DEBUG) as messages:
        copying.start()
        config_copied = f"{proxies.target_proxy.host}/{dst}: copied blob {config} ({len(image.blobs[0].data)} bytes)"
        wait_until(lambda: proxy.count(method, path) > 0 and config_copied in messages)
    registries.cancel()
    started = time.monotonic()
    copier.close()
    closing = time.monotonic() - started
    sessions, cancels = proxies.target.upload_sessions(dst), proxies.target_proxy.count("DELETE", "/blobs/uploads/")
    proxy.reset()  # the request stuck ends (the target proxy's log too): its copy stops, and cancels nothing again
    copying.join(timeout=30)
    assert (sessions, cancels, proxies.target_proxy.count("DELETE", "/blobs/uploads/")) == (
        {}, 1, 0 if proxy is proxies.target_proxy else 1)
    assert closing < CANCEL_TIMEOUT
    where = {"download": f"{proxies.upstream_proxy.host}/{src}: download",
             "upload": f"{proxies.target_proxy.host}/{dst}: upload"}[stuck]
    assert results == [CopyResult(source, target, "failed", image.digest,
                                  error=f"{where} blob {layer}: interrupted before it finished")]
