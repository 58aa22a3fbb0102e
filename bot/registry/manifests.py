"""Manifests and indexes: fetched and pushed byte for byte, digests checked."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from functools import cached_property
from typing import Any

import httpx

from bot import jsontext
from bot.registry.client import RETRY_STATUSES, Registry
from bot.registry.errors import (
    NotARegistry, NotFound, RegistryError, RetryableError, not_a_registry, sent_by_a_registry, speaks_registry_api,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
# The Content-Type a registry sends a manifest with starts so (schema 1 and OCI artifact manifests included).
REGISTRY_MEDIA_TYPE_PREFIXES = ("application/vnd.oci.", "application/vnd.docker.")
IMAGE_CONFIG_TYPES = frozenset({"application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"})
# Layers registries do not serve (Windows base layers): referenced by URL, never copied.
FOREIGN_LAYER_TYPES = frozenset({
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})
NO_REGISTRY_AT_IMAGE = "check the image's host name and port: no registry answers there"
NO_REGISTRY_AT_DESTINATION = "check the --to host and port: no registry answers there"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# The OCI digest grammar; sha256 and sha512 must also have their exact length of lowercase hex.
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}


class MalformedManifest(ValueError):
    """A manifest (or referrers list) whose JSON does not have the shape the OCI spec gives it."""


def is_digest(value: object) -> bool:
    if not isinstance(value, str) or not _DIGEST_RE.fullmatch(value):
        return False
    algorithm, _, encoded = value.partition(":")
    length = _HEX_LENGTH.get(algorithm)
    return length is None or (len(encoded) == length and all(c in "0123456789abcdef" for c in encoded))


def platform_text(platform: object) -> str | None:
    """`os/architecture/variant` of an index entry's `platform` or an image config; None when it names no
    `os`, or its parts are not all text."""
    if not isinstance(platform, dict) or not platform.get("os"):
        return None
    parts = [platform.get(key) for key in ("os", "architecture", "variant")]
    if not all(isinstance(part, str) for part in parts if part is not None):
        return None
    return "/".join(part for part in parts if part)


@dataclasses.dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: str | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> Descriptor:
        if not isinstance(data, dict):
            raise MalformedManifest(f"a descriptor is {type(data).__name__}, not an object")
        digest, size, media_type, urls = data.get("digest"), data.get("size", 0), data.get("mediaType", ""), data.get("urls") or []
        if not is_digest(digest):
            raise MalformedManifest(f"a descriptor's digest is not a digest: {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise MalformedManifest(f"the size of {digest} is not a byte count: {size!r}")
        if not isinstance(media_type, str):
            raise MalformedManifest(f"the mediaType of {digest} is not a string: {media_type!r}")
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            raise MalformedManifest(f"the urls of {digest} are not a list of strings")
        return cls(media_type, str(digest), size, platform_text(data.get("platform")), tuple(urls))


def descriptors(data: dict[str, Any], key: str) -> list[Descriptor]:
    """The descriptors listed under `key` (`manifests`, `layers`); none when the key is absent."""
    listed = data.get(key, [])
    if not isinstance(listed, list):
        raise MalformedManifest(f'"{key}" is {type(listed).__name__}, not a list')
    return [Descriptor.from_json(item) for item in listed]


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
        return descriptors(self.data, "manifests") if self.is_index else []

    def config(self) -> Descriptor | None:
        config = self.data.get("config")
        return Descriptor.from_json(config) if config is not None and not self.is_index else None

    def blobs(self) -> list[Descriptor]:
        """Config and layers that live in the registry (foreign layers left out)."""
        if self.is_index:
            return []
        found = [self.config()] + descriptors(self.data, "layers")
        return [d for d in found if d is not None and not d.urls and d.media_type not in FOREIGN_LAYER_TYPES]

    def check(self) -> None:
        """Raise `MalformedManifest` unless every descriptor is well formed (then the methods above cannot fail)."""
        self.children()
        self.blobs()


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


def unlike_a_registry(registry: Registry, repo: str, step: str, status: int) -> NotARegistry | None:
    """After an answer (`status`) to `step` that may not be a registry's, one GET of `/v2/`: a `NotARegistry` error
    when that does not answer as a registry does either (a web server, another service on that port), else None
    (and None when `/v2/` cannot be asked: the first answer's error stands). After a success no registry gives (a
    200 that is no manifest), `/v2/` must show the registry API's header: a page served for every path has none."""
    try:
        response = registry.request("GET", "/v2/", repo=repo, step="ping the registry API")
    except RegistryError:
        return None
    header_required = 200 <= status < 300
    if response.status_code in (403, *RETRY_STATUSES) or answers_as_a_registry(registry, repo, response,
                                                                                header_required=header_required):
        return None
    detail = not_a_registry(registry.domain, f"{registry.base_url}/v2/", response.status_code)
    fix = NO_REGISTRY_AT_DESTINATION if registry.is_destination else NO_REGISTRY_AT_IMAGE
    return NotARegistry(f"{registry.domain}/{repo}", step, detail, fix, status=status)


def answers_as_a_registry(registry: Registry, repo: str, ping: httpx.Response, *, header_required: bool = False) -> bool:
    """Whether `/v2/`'s answer (`ping`) is a registry's (`speaks_registry_api`). One that is JSON without the registry
    API's header, as a web app's health endpoint answers too, passes only when `repo`'s tag list answers as a
    registry's does as well: that costs a request, but only a registry that leaves the header out."""
    if not speaks_registry_api(ping, header_required=header_required):
        return False
    return speaks_registry_api(ping, header_required=True) or _lists_tags_as_a_registry(registry, repo)


def _lists_tags_as_a_registry(registry: Registry, repo: str) -> bool:
    """Whether `repo`'s tag list answers as a registry's does: with its signs (the header, an OCI error body), a
    refused login, an overload, or the tags. No answer at all says nothing against the registry: the first
    answer's error stands."""
    try:
        response = registry.request("GET", f"/v2/{repo}/tags/list", repo=repo, step="list tags")
    except RegistryError:
        return True
    if response.status_code in (401, 403, *RETRY_STATUSES) or sent_by_a_registry(response):
        return True
    return response.status_code == 200 and _is_tag_list(response.content)


def _is_tag_list(content: bytes) -> bool:
    data, _ = _parsed(content)
    return isinstance(data, dict) and ("tags" in data or "name" in data)


def refused_by_no_registry(registry: Registry, repo: str, error: RegistryError) -> NotARegistry | None:
    """For an HTTP refusal of `repo`'s other than a login's or an overload's (a 404 or 405 for an upload or a push,
    a 200 where a registry answers 202), the error saying no registry answers there, when `/v2/` shows that."""
    if isinstance(error, NotARegistry) or error.status is None or error.status in (401, 403, *RETRY_STATUSES):
        return None
    return unlike_a_registry(registry, repo, error.step, error.status)


def no_such_image(registry: Registry, repo: str, step: str) -> NotFound:
    """The error for a manifest the registry answered 404 for: no such image, unless the address's `/v2/` shows that
    no registry answers there (a web server's 404 is not a registry's "manifest unknown")."""
    return unlike_a_registry(registry, repo, step, 404) or NotFound(
        f"{registry.domain}/{repo}", step, "no such image (manifest unknown)", status=404)


def get_manifest(registry: Registry, repo: str, reference: str) -> Manifest:
    """Fetch a manifest and check its bytes against the digest asked for and the one the registry announces."""
    step = f"get manifest {reference}"
    return _manifest_from(registry, repo, reference, step, _manifest_response(registry, repo, reference, step))


def find_manifest(registry: Registry, repo: str, reference: str, step: str, *,
                  sure_of_registry: bool = True) -> Manifest | None:
    """`get_manifest`, or None when the registry does not have it. Not `sure_of_registry`: a 404 that shows no sign
    of a registry's (`sent_by_a_registry`) is a `NotARegistry` error when `/v2/` does not answer as a registry's
    either (a web server answers 404 for every path); a registry's own 404 costs no request more."""
    response = _manifest_response(registry, repo, reference, step)
    if response.status_code != 404:
        return _manifest_from(registry, repo, reference, step, response)
    if not sure_of_registry and not sent_by_a_registry(response):
        elsewhere = unlike_a_registry(registry, repo, step, 404)
        if elsewhere is not None:
            raise elsewhere
    return None


def _manifest_response(registry: Registry, repo: str, reference: str, step: str) -> httpx.Response:
    registry.check_quota(repo, step)
    return registry.request("GET", _manifest_path(repo, reference), repo=repo, step=step, headers={"Accept": ACCEPT})


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip()


def _parsed(content: bytes) -> tuple[Any, str | None]:
    """The JSON value `content` holds, or None and why it is not JSON."""
    try:
        return jsontext.loads(content), None
    except ValueError as exc:
        return None, str(exc)


def _looks_like_a_manifest(response: httpx.Response, data: Any) -> bool:
    """A registry sends a manifest with its media type as Content-Type; one that sends another (or none) still
    sends a manifest's JSON (`data`), which names its `schemaVersion` (or, an artifact manifest, its `mediaType`)."""
    if _content_type(response).startswith(REGISTRY_MEDIA_TYPE_PREFIXES):
        return True
    return isinstance(data, dict) and ("schemaVersion" in data or "mediaType" in data)


def _not_a_manifest(registry: Registry, repo: str, step: str, response: httpx.Response) -> RegistryError:
    """The error for a 200 that is no manifest: the host is no registry, unless its `/v2/` answers as one."""
    sent = _content_type(response)
    detail = f"the answer is not a manifest ({f'Content-Type {sent}' if sent else 'no Content-Type'})"
    return unlike_a_registry(registry, repo, step, response.status_code) or RegistryError(
        f"{registry.domain}/{repo}", step, detail)


def _manifest_from(registry: Registry, repo: str, reference: str, step: str, response: httpx.Response) -> Manifest:
    if response.status_code != 200:
        raise registry.fail(repo, step, response)
    content = response.content
    data, not_json = _parsed(content)
    if not _looks_like_a_manifest(response, data):
        raise _not_a_manifest(registry, repo, step, response)
    digest = sha256_digest(content)
    announced = response.headers.get("Docker-Content-Digest")
    expected = reference if reference.startswith("sha256:") else announced
    if expected and expected != digest:
        raise RetryableError(f"{registry.domain}/{repo}", step, f"the manifest's bytes hash to {digest}, not {expected}")
    if not_json is not None:
        raise RegistryError(f"{registry.domain}/{repo}", step, f"the manifest is not JSON ({not_json})")
    if not isinstance(data, dict):
        raise RegistryError(f"{registry.domain}/{repo}", step, "the manifest is not a JSON object")
    if data.get("schemaVersion") == 1:
        raise RegistryError(f"{registry.domain}/{repo}", step, "schema 1 manifests are not supported (deprecated by Docker)")
    media_type = data.get("mediaType") or _content_type(response)
    if not isinstance(media_type, str):
        raise RegistryError(f"{registry.domain}/{repo}", step, f"the manifest's mediaType is not a string: {media_type!r}")
    if not media_type:
        media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    manifest = Manifest(media_type, content, digest)
    try:
        manifest.check()
    except MalformedManifest as exc:
        raise RegistryError(f"{registry.domain}/{repo}", step, f"the manifest is malformed: {exc}") from None
    return manifest


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


def list_tags(registry: Registry, repo: str, max_pages: int = 100, *, must_exist: bool = False) -> list[str]:
    """Every tag of `repo`, following `Link` pagination (bounded). A repository the registry does
    not have has no tags, or with `must_exist` is a `NotFound` error."""
    tags: list[str] = []
    url: str | None = f"/v2/{repo}/tags/list"
    for _ in range(max_pages):
        if url is None:
            break
        response = registry.request("GET", url, repo=repo, step="list tags")
        if response.status_code == 404 and not must_exist:
            return tags
        if response.status_code != 200:
            raise registry.fail(repo, "list tags", response)
        page = _json_field(registry, repo, "list tags", response, "tags")
        if not all(isinstance(tag, str) for tag in page):
            raise RegistryError(f"{registry.domain}/{repo}", "list tags", 'the answer\'s "tags" are not all strings')
        tags.extend(page)
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
    if _content_type(response) != OCI_INDEX:
        return []
    listed = _json_field(registry, repo, step, response, "manifests")
    try:
        return [Descriptor.from_json(item) for item in listed]
    except MalformedManifest as exc:
        raise RegistryError(f"{registry.domain}/{repo}", step, f"the referrers list is malformed: {exc}") from None


def _json_field(registry: Registry, repo: str, step: str, response: httpx.Response, key: str) -> list[Any]:
    """The list under `key` of a JSON object answer (none when it is null or absent)."""
    try:
        data = jsontext.loads(response.content)
    except ValueError as exc:
        raise RegistryError(f"{registry.domain}/{repo}", step, f"the answer is not JSON ({exc})") from None
    listed = data.get(key) if isinstance(data, dict) else None
    if listed is None and isinstance(data, dict):
        return []
    if not isinstance(listed, list):
        raise RegistryError(f"{registry.domain}/{repo}", step, f'the answer has no list of "{key}"')
    return listed
