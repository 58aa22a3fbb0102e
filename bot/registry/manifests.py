"""Manifests and indexes: fetched and pushed byte for byte, digests checked."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import cached_property
from typing import Any

from bot.registry.client import Registry
from bot.registry.errors import RegistryError, RetryableError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
IMAGE_CONFIG_TYPES = frozenset({"application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"})
# Layers registries do not serve (Windows base layers): referenced by URL, never copied.
FOREIGN_LAYER_TYPES = frozenset({
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclasses.dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: str | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        platform = data.get("platform")
        text = None
        if isinstance(platform, dict) and platform.get("os"):
            text = "/".join(filter(None, (platform.get("os"), platform.get("architecture"), platform.get("variant"))))
        return cls(data.get("mediaType", ""), data["digest"], int(data.get("size", 0)), text, tuple(data.get("urls") or ()))


@dataclasses.dataclass(frozen=True)
class Manifest:
    media_type: str
    content: bytes
    digest: str

    @cached_property
    def data(self) -> dict[str, Any]:
        return json.loads(self.content)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def children(self) -> list[Descriptor]:
        return [Descriptor.from_json(d) for d in self.data.get("manifests", [])] if self.is_index else []

    def config(self) -> Descriptor | None:
        config = self.data.get("config")
        return Descriptor.from_json(config) if isinstance(config, dict) and not self.is_index else None

    def blobs(self) -> list[Descriptor]:
        """Config and layers that live in the registry (foreign layers left out)."""
        if self.is_index:
            return []
        found = [self.config()] + [Descriptor.from_json(d) for d in self.data.get("layers", [])]
        return [d for d in found if d is not None and not d.urls and d.media_type not in FOREIGN_LAYER_TYPES]


def _manifest_path(repo: str, reference: str) -> str:
    return f"/v2/{repo}/manifests/{reference}"


def head_digest(registry: Registry, repo: str, reference: str, step: str = "look up manifest") -> str | None:
    """The digest `reference` points to, or None when the registry does not have it."""
    response = registry.request("HEAD", _manifest_path(repo, reference), repo=repo, step=step, headers={"Accept": ACCEPT})
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise registry.fail(repo, step, response)
    digest = response.headers.get("Docker-Content-Digest")
    if digest:
        return digest
    return get_manifest(registry, repo, reference).digest  # some registries leave the header out of HEAD


def get_manifest(registry: Registry, repo: str, reference: str) -> Manifest:
    """Fetch a manifest and check its bytes against the digest asked for and the one the registry announces."""
    step = f"get manifest {reference}"
    registry.check_quota(repo, step)
    response = registry.request("GET", _manifest_path(repo, reference), repo=repo, step=step, headers={"Accept": ACCEPT})
    if response.status_code != 200:
        raise registry.fail(repo, step, response)
    content = response.content
    digest = sha256_digest(content)
    announced = response.headers.get("Docker-Content-Digest")
    expected = reference if reference.startswith("sha256:") else announced
    if expected and expected != digest:
        raise RetryableError(f"{registry.domain}/{repo}", step, f"the manifest's bytes hash to {digest}, not {expected}")
    try:
        data = json.loads(content)
    except ValueError:
        raise RegistryError(f"{registry.domain}/{repo}", step, "the manifest is not JSON") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{registry.domain}/{repo}", step, "the manifest is not a JSON object")
    if data.get("schemaVersion") == 1:
        raise RegistryError(f"{registry.domain}/{repo}", step, "schema 1 manifests are not supported (deprecated by Docker)")
    media_type = data.get("mediaType") or response.headers.get("Content-Type", "").split(";")[0].strip()
    if not media_type:
        media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    return Manifest(media_type, content, digest)


def put_manifest(registry: Registry, repo: str, reference: str, manifest: Manifest) -> None:
    """Push the exact bytes; the registry must answer with the same digest."""
    step = f"push manifest {reference}"
    response = registry.request(
        "PUT", _manifest_path(repo, reference), repo=repo, step=step, actions=("pull", "push"),
        headers={"Content-Type": manifest.media_type}, content=manifest.content,
    )
    if response.status_code not in (200, 201):
        raise registry.fail(repo, step, response)
    announced = response.headers.get("Docker-Content-Digest")
    if announced and announced != manifest.digest:
        raise RegistryError(f"{registry.domain}/{repo}", step, f"the registry stored {announced}, not {manifest.digest}")


def list_tags(registry: Registry, repo: str, max_pages: int = 100) -> list[str]:
    """Every tag of `repo`, following `Link` pagination (bounded)."""
    tags: list[str] = []
    url: str | None = f"/v2/{repo}/tags/list"
    for _ in range(max_pages):
        if url is None:
            break
        response = registry.request("GET", url, repo=repo, step="list tags")
        if response.status_code == 404:
            return tags
        if response.status_code != 200:
            raise registry.fail(repo, "list tags", response)
        tags.extend(response.json().get("tags") or [])
        link = response.links.get("next")
        url = link["url"] if link else None
    return tags


def referrers(registry: Registry, repo: str, digest: str) -> list[Descriptor]:
    """What the OCI referrers API lists for `digest`; empty when the registry does not serve the API."""
    if registry.serves_referrers is False:
        return []
    step = f"list referrers of {digest}"
    response = registry.request("GET", f"/v2/{repo}/referrers/{digest}", repo=repo, step=step, headers={"Accept": OCI_INDEX})
    if response.status_code == 404:
        # The distribution spec forbids a 404 from a registry that serves the API: ask no more.
        registry.serves_referrers = False
        return []
    if response.status_code != 200:
        raise registry.fail(repo, step, response)
    if response.headers.get("Content-Type", "").split(";")[0].strip() != OCI_INDEX:
        return []
    return [Descriptor.from_json(d) for d in response.json().get("manifests", [])]
