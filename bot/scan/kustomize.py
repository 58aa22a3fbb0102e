"""Kustomize `images:` entries: the image each entry produces, where the entry says it.

An entry (`name`, `newName`, `newTag`, `digest`) rewrites the images of the resources
the kustomization builds whose name is `name`. The reference is the image it produces:
`newName-or-name[:newTag][@digest]`. An entry with only `newName` keeps the tag and
digest of each image it matches, so those are found by building the kustomization's
local resources (`resources:`, `bases:`, `components:`, recursively) the way kustomize
does: resources first, then components, then the entries, each entry applied in turn.
"""
from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.rules import Rule
from bot.scan import keypaths
from bot.scan.base import ExtractError, Extraction, FileContext
from bot.scan.model import Found
from bot.scan.yaml import NULL_TAG, found_at, scalar_part
from bot.scan.yamldocs import documents, mapping_get, scalar_text

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ENTRY_KEYS = ("name", "newName", "newTag", "digest")
MAX_DEPTH = 16
# kustomize's image transformer edits `containers` and `initContainers` items at any depth.
MANIFEST_IMAGE_PATHS = ["**.containers[].image", "**.initContainers[].image"]
_CONTAINERS_RE = re.compile(r"\b(?:containers|initContainers)\s*:")
# What kustomize fetches instead of reading from the tree: URLs, git and hosted-git forms.
_REMOTE_RE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|git::|git@|(?:github|gitlab)\.com/|bitbucket\.org/)|\?(?:ref|version|timeout|submodules)=|//"
)
_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LIMIT = 256


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str
    new_name: str | None
    new_tag: str | None
    digest: str | None

    def apply(self, image: str) -> str:
        """The image after this entry, as kustomize's image transformer computes it."""
        name, tag, digest = split_image(image)
        if name != self.name:
            return image
        if self.new_name:
            name = self.new_name
        if self.new_tag or self.digest:
            tag, digest = self.new_tag or "", self.digest or ""
        return _compose(name, tag, digest)


@dataclasses.dataclass(frozen=True)
class _Kustomization:
    component: bool
    resources: tuple[str, ...]  # `resources:` and the older `bases:`
    components: tuple[str, ...]
    external: tuple[str, ...]  # remote resources and Helm charts: built from outside the tree
    entries: tuple[_Entry, ...]


@dataclasses.dataclass
class _Build:
    images: list[str] = dataclasses.field(default_factory=list)
    manifests: list[str] = dataclasses.field(default_factory=list)  # files read for `images`
    external: list[str] = dataclasses.field(default_factory=list)
    gaps: list[str] = dataclasses.field(default_factory=list)  # local parts that could not be read


def split_image(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) as kustomize's `image.Split` cuts them (a port is not a tag)."""
    slash = max(image.find("/"), 0)
    search = image[slash:]
    at, colon = search.find("@"), search.find(":")
    if at < 0 and colon < 0:
        return image, "", ""
    if at >= 0 and (colon < 0 or at < colon):
        return image[: slash + at], "", image[slash + at + 1 :]
    if at >= 0:
        return image[: slash + colon], image[slash + colon + 1 : slash + at], image[slash + at + 1 :]
    return image[: slash + colon], image[slash + colon + 1 :], ""


def _value(node: Node | None) -> str | None:
    if isinstance(node, ScalarNode) and node.tag != NULL_TAG and str(node.value):
        return str(node.value)
    return None


def _strings(node: Node | None) -> list[str]:
    if not isinstance(node, SequenceNode):
        return []
    return [v for v in (scalar_text(item) for item in node.value) if v]


def _entry(node: Node) -> _Entry | None:
    name = _value(mapping_get(node, "name"))
    if name is None:
        return None
    return _Entry(
        name,
        _value(mapping_get(node, "newName")),
        _value(mapping_get(node, "newTag")),
        _value(mapping_get(node, "digest")),
    )


def _kustomization(root: Node) -> _Kustomization:
    resources = _strings(mapping_get(root, "resources")) + _strings(mapping_get(root, "bases"))
    components = _strings(mapping_get(root, "components"))
    external = [r for r in resources + components if _REMOTE_RE.search(r)]
    charts = mapping_get(root, "helmCharts")
    if isinstance(charts, SequenceNode) and charts.value:
        external.append("helmCharts")
    images = mapping_get(root, "images")
    entries = [_entry(item) for item in images.value] if isinstance(images, SequenceNode) else []
    return _Kustomization(
        component=scalar_text(mapping_get(root, "kind")) == "Component",
        resources=tuple(r for r in resources if not _REMOTE_RE.search(r)),
        components=tuple(c for c in components if not _REMOTE_RE.search(c)),
        external=tuple(external),
        entries=tuple(e for e in entries if e is not None),
    )


def _first_mapping(text: str) -> MappingNode | None:
    for _, root in documents(text):
        return root if isinstance(root, MappingNode) else None
    return None


def _cached(kind: str, text: str, compute: Callable[[], Any]) -> Any:
    """`compute()` for this text, remembered: overlays of one base share its files. Keyed by
    content, so a file changed since (by a rewrite) is read afresh; None when unparseable."""
    key = (kind, text)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        try:
            _CACHE[key] = compute()
        except ExtractError:
            _CACHE[key] = None
    return _CACHE[key]


def _parse_kustomization(text: str) -> _Kustomization | None:
    root = _first_mapping(text)
    return None if root is None else _kustomization(root)


def _manifest_images(text: str) -> list[str]:
    if not _CONTAINERS_RE.search(text):
        return []
    images = []
    for _, root in documents(text, (_CONTAINERS_RE,)):
        images += [v for hit in keypaths.select(root, MANIFEST_IMAGE_PATHS) if (v := scalar_text(hit.node))]
    return images


class _Tree:
    """The local part of what `kustomize build` reads, below the scanned root."""

    def __init__(self, context: FileContext) -> None:
        self.context = context
        self.budget = 500  # kustomizations read for one file: includes can form large diamonds
        # Manifests are parsed only when an entry keeps the tags it matches; the walk over
        # kustomizations is still needed to see remote resources.
        self.read_manifests = False

    def _read_manifest(self, relative: str) -> list[str] | None:
        text = self.context.read_text(relative)
        if text is None:
            return None
        return _cached("manifest", text, lambda: _manifest_images(text))

    def _kustomization_in(self, directory: str) -> _Kustomization | None:
        for name in KUSTOMIZATION_FILES:
            text = self.context.read_text(posixpath.join(directory, name))
            if text is not None:
                return _cached("kustomization", text, lambda: _parse_kustomization(text))
        return None

    def inputs(self, kustomization: _Kustomization, directory: str, depth: int = 0) -> _Build:
        """The images of the kustomization's resources and components, before its own entries."""
        out = _Build(external=list(kustomization.external))
        for resource in kustomization.resources:
            self._add_resource(out, directory, resource, depth)
        for component in kustomization.components:
            self._add_component(out, directory, component, depth)
        return out

    def _included(self, directory: str, relative: str, depth: int) -> tuple[str, _Kustomization] | None:
        path = _join(directory, relative)
        self.budget -= 1
        if path is None or depth >= MAX_DEPTH or self.budget < 0:
            return None
        included = self._kustomization_in(path)
        return None if included is None else (path, included)

    def _add_resource(self, out: _Build, directory: str, resource: str, depth: int) -> None:
        path = _join(directory, resource)
        if path is not None and self.context.is_file(path):
            if not self.read_manifests:
                return
            images = self._read_manifest(path)
            if images is not None:
                out.images += images
                out.manifests.append(path)
                return
        elif (found := self._included(directory, resource, depth)) is not None:
            path, included = found
            built = self.inputs(included, path, depth + 1)
            out.images += _apply_all(included.entries, built.images)
            out.manifests += built.manifests
            out.external += built.external
            out.gaps += built.gaps
            return
        out.gaps.append(resource)

    def _add_component(self, out: _Build, directory: str, component: str, depth: int) -> None:
        """A component adds its resources, then its entries apply to everything so far."""
        found = self._included(directory, component, depth)
        if found is None:
            out.gaps.append(component)
            return
        path, included = found
        built = self.inputs(included, path, depth + 1)
        out.images = _apply_all(included.entries, out.images + built.images)
        out.manifests += built.manifests
        out.external += built.external
        out.gaps += built.gaps


def _join(directory: str, relative: str) -> str | None:
    """A resource path relative to the scanned root, or None when it leaves the root."""
    if posixpath.isabs(relative):
        return None
    joined = posixpath.normpath(posixpath.join(directory, relative))
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


def _apply_all(entries: tuple[_Entry, ...], images: list[str]) -> list[str]:
    for entry in entries:
        images = [entry.apply(image) for image in images]
    return images


def _compose(name: str, tag: str | None, digest: str | None) -> str:
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _edit(item: MappingNode, text: str, base: int, index: int, build: _Build) -> dict[str, Any]:
    """What a rewrite of this entry needs: where each key's value is, how the entry is
    indented, and whether the kustomization also builds from outside the tree (then
    renaming `name` with the manifests it matches could silently drop the override)."""
    parts: dict[str, Any] = {}
    for key in ENTRY_KEYS:
        node = mapping_get(item, key)
        parts[key] = scalar_part(node, text, base) if isinstance(node, ScalarNode) else None
    return {
        "kustomize": {
            **parts,
            "entry": index,
            "indent": item.value[0][0].start_mark.column,
            "flow": bool(item.flow_style),
            "remote": bool(build.external),
            "external": sorted(set(build.external)),
            # the local manifests the entry may match: a rewrite that renames their images renames `name` too
            "manifests": sorted(set(build.manifests)),
        }
    }


def _kept_tags_unknown(entry: _Entry, kustomization: _Kustomization, build: _Build) -> str:
    prefix = f"newName without newTag or digest keeps the tags of the images named {entry.name}"
    if build.external:
        return f"{prefix}; none in this repository, and some resources come from outside it ({build.external[0]})"
    if build.gaps:
        return f"{prefix}; none found, and some resources could not be read ({build.gaps[0]})"
    if kustomization.component:
        return f"{prefix} in the kustomization that includes this component"
    return f"{prefix}; no resource of this kustomization uses that name"


def _entry_found(
    item: MappingNode, entry: _Entry, images: list[str], text: str, base: int, edit: dict[str, Any],
    why_unknown: str,
) -> list[Found]:
    """The references one entry produces, given the images it applies to."""
    at_key = next(k for k in ("newName", "newTag", "digest") if _value(mapping_get(item, k)) is not None)
    node = mapping_get(item, at_key)
    assert isinstance(node, ScalarNode)
    at = found_at(node, text, base)
    if entry.new_tag or entry.digest:
        raw = _compose(entry.new_name or entry.name, entry.new_tag, entry.digest)
        return [Found(offset=at.offset, raw=raw, span=at.region, edit=edit)]
    sources = {image: None for image in images if split_image(image)[0] == entry.name}
    if not sources:
        return [Found(offset=at.offset, raw=entry.new_name or "", span=at.region, edit=edit, unresolved=why_unknown)]
    produced: dict[str, str] = {}
    for source in sources:
        produced.setdefault(entry.apply(source), source)
    return [
        Found(
            offset=at.offset,
            raw=raw,
            span=at.region,
            note=f"tag kept from {source}",
            edit={"kustomize": {**edit["kustomize"], "source": source}},
        )
        for raw, source in sorted(produced.items())
    ]


def extract(text: str, rule: Rule, context: FileContext) -> Extraction:
    result = Extraction()
    tree = _Tree(context)
    directory = str(context.directory)
    for base, root in documents(text, rule.document_contains):
        images_node = mapping_get(root, "images")
        if not isinstance(images_node, SequenceNode):
            continue
        kustomization = _kustomization(root)
        tree.read_manifests = bool(kustomization.entries)
        build = tree.inputs(kustomization, directory)
        images = build.images
        for index, item in enumerate(images_node.value):
            entry = _entry(item)
            if entry is None or not isinstance(item, MappingNode):
                continue
            if entry.new_name or entry.new_tag or entry.digest:
                edit = _edit(item, text, base, index, build)
                why = _kept_tags_unknown(entry, kustomization, build)
                result.found += _entry_found(item, entry, images, text, base, edit, why)
            images = [entry.apply(image) for image in images]
    return result
