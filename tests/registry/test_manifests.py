"""Manifests a registry serves malformed: each fails its own image with the reason, never the run."""
from __future__ import annotations

import json
from typing import Any

import pytest

from bot.mirror import MirrorImage, MirrorOptions, ensure_images, exit_code
from bot.registry import Copier, Registries
from bot.registry.manifests import Descriptor, MalformedManifest, is_digest
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo
from tests.oci.proxy import Answer, Proxy

GOOD = "sha256:" + "a" * 64


def serve(proxy: Proxy, repo: str, manifest: dict[str, Any], media_type: str = images.OCI_MANIFEST) -> str:
    """`repo:v1` on the proxy answers `manifest` (by tag and by its digest); the digest."""
    return serve_content(proxy, repo, json.dumps(manifest).encode(), media_type)


def serve_content(proxy: Proxy, repo: str, content: bytes, media_type: str = images.OCI_MANIFEST) -> str:
    """`repo:v1` on the proxy answers `content` as its manifest (by tag and by its digest); the digest."""
    digest = images.digest_of(content)

    def route(method: str, path: str) -> Answer | None:
        if path in (f"/v2/{repo}/manifests/v1", f"/v2/{repo}/manifests/{digest}"):
            return Answer(200, {"Content-Type": media_type, "Docker-Content-Digest": digest}, content)
        return None

    proxy.routes.append(route)
    return digest


def layer(**fields: Any) -> dict[str, Any]:
    return {"mediaType": images.OCI_LAYER, "digest": GOOD, "size": 10, **fields}


def image_manifest(**fields: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": images.OCI_MANIFEST,
            "config": {"mediaType": images.OCI_CONFIG, "digest": GOOD, "size": 2}, "layers": [layer()], **fields}


def index_manifest(*children: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": list(children)}


@pytest.mark.parametrize(("manifest", "problem"), [
    (image_manifest(layers="oops"), '"layers" is str, not a list'),
    (image_manifest(layers=["oops"]), "a descriptor is str, not an object"),
    (image_manifest(layers=[layer(digest="sha256:123")]), "a descriptor's digest is not a digest: 'sha256:123'"),
    (image_manifest(layers=[layer(size=-1)]), f"the size of {GOOD} is not a byte count: -1"),
    (image_manifest(layers=[layer(size="10")]), f"the size of {GOOD} is not a byte count: '10'"),
    (image_manifest(layers=[layer(urls="http://x")]), f"the urls of {GOOD} are not a list of strings"),
    (image_manifest(config="x"), "a descriptor is str, not an object"),
    (index_manifest({"mediaType": images.OCI_MANIFEST, "digest": "v1", "size": 1}),
     "a descriptor's digest is not a digest: 'v1'"),
    (index_manifest(7), "a descriptor is int, not an object"),
])
def test_a_malformed_manifest_fails_its_image_with_the_reason(
    proxies: Loopback, registries: Registries, manifest: dict[str, Any], problem: str
) -> None:
    src, dst = unique_repo("upstream"), unique_repo("mirror")
    media_type = manifest["mediaType"]
    serve(proxies.upstream_proxy, src, manifest, media_type)
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1")
    assert (result.status, result.error) == (
        "failed", f"{proxies.upstream_proxy.host}/{src}: resolve tag v1: the manifest is malformed: {problem}")


def test_a_manifest_nested_too_deep_fails_its_image_with_the_reason(proxies: Loopback, registries: Registries) -> None:
    src, dst = unique_repo("upstream"), unique_repo("mirror")
    serve_content(proxies.upstream_proxy, src, f'{{"schemaVersion": 2, "layers": {DEEP_JSON}}}'.encode())
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1")
    assert (result.status, result.error) == (
        "failed", f"{proxies.upstream_proxy.host}/{src}: resolve tag v1: the manifest is not JSON ({NESTED_TOO_DEEP})")


def test_one_malformed_image_does_not_stop_the_others(proxies: Loopback, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    bad, good = unique_repo("a-bad"), unique_repo("b-good")
    serve(proxies.upstream_proxy, bad, image_manifest(layers="oops"))
    image = images.image((1000,))
    images.push(proxies.upstream.host, good, image, "v1")
    up, down = proxies.upstream_proxy.host, proxies.target.host
    moves = [(f"{up}/{bad}:v1", f"{down}/{bad}:v1"), (f"{up}/{good}:v1", f"{down}/{good}:v1")]
    found = ensure_images(moves, MirrorOptions(jobs=2))
    assert [(i.source, i.status) for i in found] == [(moves[0][0], "failed"), (moves[1][0], "copied")]
    assert found[1] == MirrorImage(*moves[1], image.digest, ("linux/amd64",), "copied",
                                   sum(len(b.data) for b in image.blobs), None, None)


def test_a_redirect_loop_is_a_failure_not_a_crash(proxies: Loopback, registries: Registries) -> None:
    src = unique_repo("upstream")
    loop = f"http://{proxies.upstream_proxy.host}/v2/{src}/manifests/v1"
    proxies.upstream_proxy.routes.append(lambda method, path: Answer(307, {"Location": loop}, b"") if src in path else None)
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{unique_repo('m')}:v1")
    assert (result.status, result.error) == (
        "failed", f"{proxies.upstream_proxy.host}/{src}: resolve tag v1: the registry redirected too many times "
                  "(a redirect loop)")


@pytest.mark.parametrize(("answer", "problem"), [
    (b"<html>", "the answer is not JSON (Expecting value: line 1 column 1 (char 0))"),
    pytest.param(f'{{"tags": {DEEP_JSON}}}'.encode(), f"the answer is not JSON ({NESTED_TOO_DEEP})",
                 id="nested-too-deep"),
    (b'{"tags": "v1"}', 'the answer has no list of "tags"'),
    (b'{"tags": [1]}', 'the answer\'s "tags" are not all strings'),
])
def test_a_malformed_tag_list_is_named(proxies: Loopback, registries: Registries, answer: bytes, problem: str) -> None:
    src = unique_repo("upstream")
    images.push(proxies.upstream.host, src, images.image((100,)), "v1")
    proxies.upstream_proxy.routes.append(
        lambda method, path: Answer(200, {"Content-Type": "application/json"}, answer) if path.endswith("/tags/list") else None)
    with Copier(registries) as copier:
        result = copier.ensure(f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{unique_repo('m')}:v1")
    # The image is in the mirror, verified: only its signatures could not be looked for.
    assert (result.status, result.error) == (
        "copied", f"the image is verified, but its signatures and attestations were not copied: "
                  f"{proxies.upstream_proxy.host}/{src}: list tags: {problem} (--no-referrers leaves them out)")


@pytest.mark.parametrize(("value", "valid"), [
    (GOOD, True), ("sha512:" + "b" * 128, True), ("blake3:abc_DEF=", True), ("sha256:" + "A" * 64, False),
    ("sha256:" + "a" * 63, False), ("v1", False), ("", False), (None, False), ("sha256:", False),
])
def test_digest_grammar(value: object, valid: bool) -> None:
    assert is_digest(value) is valid


def test_descriptor_platform_text() -> None:
    child = {"mediaType": images.OCI_MANIFEST, "digest": GOOD, "size": 5,
             "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}
    assert Descriptor.from_json(child) == Descriptor(images.OCI_MANIFEST, GOOD, 5, "linux/arm/v7")
    with pytest.raises(MalformedManifest):
        Descriptor.from_json({**child, "size": True})


def image_with_config(config: bytes) -> images.Image:
    """An image whose config blob is `config` (JSON of any shape: the registry stores what it is given)."""
    layer = images.random_layer(100)
    blob = images.Blob(config, images.DOCKER_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": images.DOCKER_MANIFEST, "config": blob.descriptor(),
                "layers": [layer.descriptor()]}
    return images.Image(json.dumps(manifest).encode(), images.DOCKER_MANIFEST, (blob, layer))


@pytest.mark.parametrize("config", [b"[1, 2]", b'"hello"', b'{"os": 5}', b'{"os": "linux", "architecture": ["a"]}',
                                    b"not json", pytest.param(DEEP_JSON.encode(), id="nested-too-deep")])
def test_a_config_that_names_no_platform_is_copied_all_the_same(loopback: Loopback, registries: Registries,
                                                                config: bytes) -> None:
    image = image_with_config(config)
    src, dst = unique_repo("upstream"), unique_repo("mirror")
    images.push(loopback.upstream.host, src, image, "v1")
    with Copier(registries) as copier:
        result = copier.ensure(f"{loopback.upstream.host}/{src}:v1", f"{loopback.target.host}/{dst}:v1")
        again = copier.ensure(f"{loopback.upstream.host}/{src}:v1", f"{loopback.target.host}/{dst}:v1")
    assert (result.status, result.digest, result.platforms, result.error) == ("copied", image.digest, [], None)
    assert (again.status, again.platforms, again.error) == ("present", [], None)


def test_signatures_that_cannot_be_listed_leave_the_image_verified_and_exit_1(proxies: Loopback, tmp_path,
                                                                              monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    src = unique_repo("upstream")
    image = images.image((100,))
    images.push(proxies.upstream.host, src, image, "v1")
    proxies.upstream_proxy.routes.append(
        lambda method, path: Answer(200, {}, b"<html>") if path.endswith("/tags/list") else None)
    move = (f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{unique_repo('m')}:v1")
    [found] = ensure_images([move])
    assert (found.status, found.verified_digest) == ("copied", image.digest)
    assert exit_code([found]) == 1
