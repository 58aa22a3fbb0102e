"""Test images built from random bytes, pushed with plain httpx (no rehome code involved)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import httpx

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclasses.dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return digest_of(self.data)

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclasses.dataclass(frozen=True)
class Image:
    """A manifest (image or index) with every blob and child it needs."""

    manifest: bytes
    media_type: str
    blobs: tuple[Blob, ...] = ()
    children: tuple[Image, ...] = ()

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    @property
    def size(self) -> int:
        return len(self.manifest)

    def all_blobs(self) -> list[Blob]:
        found = {b.digest: b for b in self.blobs}
        for child in self.children:
            found.update({b.digest: b for b in child.all_blobs()})
        return list(found.values())


def random_layer(size: int) -> Blob:
    return Blob(os.urandom(size), DOCKER_LAYER)


def image(layer_sizes: tuple[int, ...] = (2048, 4096), *, shared: tuple[Blob, ...] = (),
          os_name: str = "linux", arch: str = "amd64", variant: str | None = None, oci: bool = False) -> Image:
    layers = list(shared) + [random_layer(n) for n in layer_sizes]
    if oci:
        layers = [Blob(layer.data, OCI_LAYER) for layer in layers]
    platform = {"os": os_name, "architecture": arch} | ({"variant": variant} if variant else {})
    config = Blob(json.dumps({**platform, "rootfs": {"type": "layers", "diff_ids": [b.digest for b in layers]},
                              "created": os.urandom(4).hex()}).encode(), OCI_CONFIG if oci else DOCKER_CONFIG)
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    manifest = {"schemaVersion": 2, "mediaType": media_type, "config": config.descriptor(),
                "layers": [b.descriptor() for b in layers]}
    # Indented on purpose: a copy that re-serialised the JSON would change the digest.
    return Image(json.dumps(manifest, indent=3).encode(), media_type, (config, *layers))


def index(children: list[Image], platforms: list[tuple[str, str, str | None]]) -> Image:
    entries = []
    for child, (os_name, arch, variant) in zip(children, platforms):
        platform = {"os": os_name, "architecture": arch} | ({"variant": variant} if variant else {})
        entries.append({"mediaType": child.media_type, "digest": child.digest, "size": child.size, "platform": platform})
    manifest = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return Image(json.dumps(manifest, indent=1).encode(), OCI_INDEX, (), tuple(children))


def multi_platform(layer_size: int = 4096) -> Image:
    platforms = [("linux", "amd64", None), ("linux", "arm64", "v8"), ("linux", "arm", "v7")]
    children = [image((layer_size,), os_name=o, arch=a, variant=v, oci=True) for o, a, v in platforms]
    return index(children, platforms)


def nested(inner: Image) -> Image:
    """An index whose one entry is another index (an entry with no platform of its own)."""
    entry = {"mediaType": inner.media_type, "digest": inner.digest, "size": inner.size}
    manifest = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    return Image(json.dumps(manifest, indent=2).encode(), OCI_INDEX, (), (inner,))


def signature_for(target: Image) -> Image:
    """A cosign-style signature: an OCI manifest whose layer is the simple-signing payload."""
    payload = Blob(json.dumps({"critical": {"image": {"docker-manifest-digest": target.digest},
                                            "type": "cosign container image signature"}}).encode(),
                   "application/vnd.dev.cosign.simplesigning.v1+json")
    config = Blob(b"{}", OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                "layers": [payload.descriptor() | {"annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}}]}
    return Image(json.dumps(manifest).encode(), OCI_MANIFEST, (config, payload))


def referrer_for(target: Image, artifact_type: str = "application/vnd.example.sbom") -> Image:
    """An OCI 1.1 artifact whose `subject` is `target` (what the referrers API lists)."""
    empty = Blob(b"{}", OCI_EMPTY)
    sbom = Blob(os.urandom(64), "application/spdx+json")
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": empty.descriptor(), "layers": [sbom.descriptor()],
                "subject": {"mediaType": target.media_type, "digest": target.digest, "size": target.size}}
    return Image(json.dumps(manifest).encode(), OCI_MANIFEST, (empty, sbom))


def push(host: str, repo: str, img: Image, reference: str | None = None) -> None:
    """Push blobs, children and the manifest (by `reference`, else by digest) over plain HTTP."""
    with httpx.Client(base_url=f"http://{host}", timeout=30.0) as client:
        _push(client, repo, img, reference or img.digest)


def _push(client: httpx.Client, repo: str, img: Image, reference: str) -> None:
    for blob in img.blobs:
        if client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
            continue
        start = client.post(f"/v2/{repo}/blobs/uploads/")
        start.raise_for_status()
        location = httpx.URL(start.headers["Location"]).copy_add_param("digest", blob.digest)
        client.put(location, content=blob.data, headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    for child in img.children:
        _push(client, repo, child, child.digest)
    client.put(f"/v2/{repo}/manifests/{reference}", content=img.manifest,
               headers={"Content-Type": img.media_type}).raise_for_status()
