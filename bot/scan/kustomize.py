"""Kustomize `images:` entries: the image each entry produces, where the entry says it.

An entry (`name`, `newName`, `newTag`, `digest`) rewrites the images of the resources
the kustomization builds whose name is `name`. The reference is the image it produces:
`newName-or-name[:newTag][@digest]`. An entry with only `newName` keeps the tag and
digest of each image it matches, so those are found by building the kustomization's
local resources (`resources:`, `bases:`, `components:`, recursively) the way kustomize
does: resources first, then components, then the entries, each entry applied in turn.

A rewrite that moves an image renames the entries that apply to it, so the build also
records, for each entry, what writes the names of the images it applies to: a manifest, or
an entry of an included kustomization that gave them a `newName`, and the entries applied to
them since (a rewrite that moves one gives it a `newName`). A component's entries apply to
what each kustomization including it builds, so those are built too.
"""
from __future__ import annotations

import dataclasses
import posixpath
import re
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.rules import Rule
from bot.scan import keypaths
from bot.scan.base import ExtractError, Extraction, FileContext
from bot.scan.files import Tree
from bot.scan.model import Found
from bot.scan.yaml import NULL_TAG, scalar_part
from bot.scan.yamldocs import documents, mapping_get, scalar_text

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ENTRY_KEYS = ("name", "newName", "newTag", "digest")
MAX_DEPTH = 16
# kustomize's image transformer edits `containers` and `initContainers` items at any depth.
MANIFEST_IMAGE_PATHS = ["**.containers[].image", "**.initContainers[].image"]
_CONTAINERS_RE = re.compile(r"\b(?:containers|initContainers)\s*:")
# A patch the scan does not read (inline, or a JSON 6902 operation list) may set an image when it says so.
_SETS_IMAGES_RE = re.compile(r"image|containers", re.IGNORECASE)
# What kustomize fetches instead of reading from the tree: URLs, git and hosted-git forms.
_REMOTE_RE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|git::|git@|(?:github|gitlab)\.com/|bitbucket\.org/)|\?(?:ref|version|timeout|submodules)=|//"
)
_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LIMIT = 256
_KUSTOMIZATION_PATHS: weakref.WeakKeyDictionary[Tree, list[str]] = weakref.WeakKeyDictionary()


@dataclasses.dataclass(frozen=True)
class _Entry:
    index: int  # its place in `images:`
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
    sets_images: bool  # inline patches that may set images, whose values the scan does not read
    patch_files: tuple[str, ...]  # `patches:` paths: a JSON 6902 one is not read either


# What writes an image's name: (a manifest's path, None) or (a kustomization's path, an entry's index).
_Writer = tuple[str, int | None]


@dataclasses.dataclass(frozen=True)
class _Image:
    image: str
    # Where its name was written (a manifest, or the last entry with a newName), then the entries
    # applied since: moved, each gets a newName, the mirror name of the same image.
    writers: tuple[_Writer, ...]


@dataclasses.dataclass(frozen=True)
class _Layer:
    """A kustomization file of the tree."""

    path: str
    kustomization: _Kustomization

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path) or "."


@dataclasses.dataclass
class _Build:
    images: list[_Image] = dataclasses.field(default_factory=list)
    external: list[str] = dataclasses.field(default_factory=list)
    gaps: list[str] = dataclasses.field(default_factory=list)  # local parts that could not be read
    patched: list[str] = dataclasses.field(default_factory=list)  # kustomizations whose patches may set images

    def absorb(self, other: _Build) -> None:
        self.external += other.external
        self.gaps += other.gaps
        self.patched += other.patched


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


def _entry(index: int, node: Node) -> _Entry | None:
    name = _value(mapping_get(node, "name"))
    if name is None:
        return None
    return _Entry(
        index,
        name,
        _value(mapping_get(node, "newName")),
        _value(mapping_get(node, "newTag")),
        _value(mapping_get(node, "digest")),
    )


def _mappings(node: Node | None) -> list[MappingNode]:
    return [item for item in node.value if isinstance(item, MappingNode)] if isinstance(node, SequenceNode) else []


def _sets_images(root: Node) -> bool:
    """Whether an inline patch (or any JSON 6902 one) may set an image: the scan reads none of them."""
    inline = [text for item in _mappings(mapping_get(root, "patches")) if (text := _value(mapping_get(item, "patch")))]
    inline += [text for text in _strings(mapping_get(root, "patchesStrategicMerge")) if "\n" in text]
    json6902 = _mappings(mapping_get(root, "patchesJson6902"))
    return bool(json6902) or any(_SETS_IMAGES_RE.search(text) for text in inline)


def _kustomization(root: Node) -> _Kustomization:
    resources = _strings(mapping_get(root, "resources")) + _strings(mapping_get(root, "bases"))
    components = _strings(mapping_get(root, "components"))
    external = [r for r in resources + components if _REMOTE_RE.search(r)]
    charts = mapping_get(root, "helmCharts")
    if isinstance(charts, SequenceNode) and charts.value:
        external.append("helmCharts")
    images = mapping_get(root, "images")
    items = images.value if isinstance(images, SequenceNode) else []
    entries = [_entry(index, item) for index, item in enumerate(items)]
    return _Kustomization(
        component=scalar_text(mapping_get(root, "kind")) == "Component",
        resources=tuple(r for r in resources if not _REMOTE_RE.search(r)),
        components=tuple(c for c in components if not _REMOTE_RE.search(c)),
        external=tuple(external),
        entries=tuple(e for e in entries if e is not None),
        sets_images=_sets_images(root),
        patch_files=tuple(path for item in _mappings(mapping_get(root, "patches"))
                          if (path := _value(mapping_get(item, "path")))),
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


def _kustomization_paths(tree: Tree) -> list[str]:
    """The tree's kustomization files, listed once per tree: each component looks for its includers."""
    if tree not in _KUSTOMIZATION_PATHS:
        _KUSTOMIZATION_PATHS[tree] = [p for p in tree.paths() if posixpath.basename(p) in KUSTOMIZATION_FILES]
    return _KUSTOMIZATION_PATHS[tree]


class _Tree:
    """The local part of what `kustomize build` reads, below the scanned root."""

    def __init__(self, context: FileContext) -> None:
        self.context = context
        self.budget = 500  # kustomizations read for one build: includes can form large diamonds
        # The writers of the names of the images each entry applied to, by (kustomization, index).
        self.writers: dict[tuple[str, int], set[_Writer]] = {}
        # The names of the images each entry did not apply to, with what first wrote each.
        self.passing: dict[tuple[str, int], set[tuple[str, _Writer]]] = {}

    def _read_manifest(self, relative: str) -> list[str] | None:
        text = self.context.read_text(relative)
        if text is None:
            return None
        return _cached("manifest", text, lambda: _manifest_images(text))

    def _layer_at(self, path: str) -> _Layer | None:
        text = self.context.read_text(path)
        if text is None:
            return None
        kustomization = _cached("kustomization", text, lambda: _parse_kustomization(text))
        return None if kustomization is None else _Layer(path, kustomization)

    def _layer_in(self, directory: str) -> _Layer | None:
        for name in KUSTOMIZATION_FILES:
            if (layer := self._layer_at(posixpath.join(directory, name))) is not None:
                return layer
        return None

    def inputs(self, layer: _Layer, depth: int = 0, start: Iterable[_Image] = ()) -> _Build:
        """The images of the kustomization's resources and components (after `start`, what a
        component's includer built so far), before its own entries."""
        out = _Build(images=list(start), external=list(layer.kustomization.external))
        if layer.kustomization.sets_images or any(self._is_json6902(layer, p) for p in layer.kustomization.patch_files):
            out.patched.append(layer.path)
        for resource in layer.kustomization.resources:
            self._add_resource(out, layer.directory, resource, depth)
        for component in layer.kustomization.components:
            self._add_component(out, layer.directory, component, depth)
        return out

    def _is_json6902(self, layer: _Layer, relative: str) -> bool:
        """A patch file that is a JSON 6902 operation list setting images (a strategic merge
        patch is a manifest: its images are scanned and move)."""
        path = _join(layer.directory, relative)
        text = None if path is None else self.context.read_text(path)
        return text is not None and bool(_cached("json6902", text, lambda: _is_operation_list(text)))

    def _built(self, layer: _Layer, depth: int, start: Iterable[_Image] = ()) -> _Build:
        out = self.inputs(layer, depth, start)
        for entry in layer.kustomization.entries:
            out.images = self.apply(layer, entry, out.images)
        return out

    def apply(self, layer: _Layer, entry: _Entry, images: list[_Image]) -> list[_Image]:
        """The images after one entry, noting what writes the names of those it applies to."""
        here = (layer.path, entry.index)
        writers = self.writers.setdefault(here, set())
        passing = self.passing.setdefault(here, set())
        out = []
        for image in images:
            name = split_image(image.image)[0]
            if name == entry.name:
                writers.update(image.writers)
                image = _Image(entry.apply(image.image), (here,) if entry.new_name else (*image.writers, here))
            else:
                passing.add((name, image.writers[0]))
            out.append(image)
        return out

    def _included(self, directory: str, relative: str, depth: int) -> _Layer | None:
        path = _join(directory, relative)
        self.budget -= 1
        if path is None or depth >= MAX_DEPTH or self.budget < 0:
            return None
        return self._layer_in(path)

    def _add_resource(self, out: _Build, directory: str, resource: str, depth: int) -> None:
        path = _join(directory, resource)
        if path is not None and self.context.is_file(path):
            images = self._read_manifest(path)
            if images is not None:
                out.images += [_Image(image, ((path, None),)) for image in images]
                return
        elif (included := self._included(directory, resource, depth)) is not None:
            built = self._built(included, depth + 1)
            out.images += built.images
            out.absorb(built)
            return
        out.gaps.append(resource)

    def _add_component(self, out: _Build, directory: str, component: str, depth: int) -> None:
        """A component adds its resources, then its entries apply to everything so far."""
        included = self._included(directory, component, depth)
        if included is None:
            out.gaps.append(component)
            return
        built = self._built(included, depth + 1, out.images)
        out.images = built.images
        out.absorb(built)

    def build_includers(self, component: _Layer) -> _Build:
        """Build each kustomization of the tree that includes the component (directly, or through
        other components), so its entries see what they apply to; the remote resources and the
        patches setting images these use (not their images)."""
        layers = [layer for path in _kustomization_paths(self.context.tree) if (layer := self._layer_at(path))]
        out = _Build()
        for layer in _includers(component, layers):
            self.budget = 500
            out.absorb(self._built(layer, 0))
        return out


def _is_operation_list(text: str) -> bool:
    for _, root in documents(text):
        return isinstance(root, SequenceNode) and bool(_SETS_IMAGES_RE.search(text))
    return False


def _includers(component: _Layer, layers: list[_Layer]) -> list[_Layer]:
    """The kustomizations, not components themselves, that include `component`, directly or through components."""
    pending, seen, found = [component.directory], {component.directory}, []
    while pending:
        directory = pending.pop()
        for layer in layers:
            if directory not in {_join(layer.directory, c) for c in layer.kustomization.components}:
                continue
            if not layer.kustomization.component:
                found.append(layer)
            elif layer.directory not in seen:
                seen.add(layer.directory)
                pending.append(layer.directory)
    return list({layer.path: layer for layer in found}.values())


def _join(directory: str, relative: str) -> str | None:
    """A resource path relative to the scanned root, or None when it leaves the root."""
    if posixpath.isabs(relative):
        return None
    joined = posixpath.normpath(posixpath.join(directory, relative))
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


def _compose(name: str, tag: str | None, digest: str | None) -> str:
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _edit(item: MappingNode, text: str, base: int, index: int, kustomization: _Kustomization, unseen: _Build,
          writers: set[_Writer], passing: set[tuple[str, _Writer]]) -> dict[str, Any]:
    """What a rewrite of this entry needs: where each key's value is, how the entry is
    indented, whether the kustomization (or one including this component) also builds from
    outside the tree or applies patches that may set images (then renaming `name` with the
    manifests it matches could silently drop the override), what writes the names it applies
    to, and the names of the images it does not apply to, with what writes them."""
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
            "component": kustomization.component,
            "remote": bool(unseen.external or unseen.patched),
            "external": sorted(set(unseen.external)),
            "patched": sorted(set(unseen.patched)),
            # A rewrite that renames the images these write renames `name` too: the local manifests
            # whose images reach the entry, and the entries (kustomization, index) applied to them.
            "manifests": sorted({path for path, entry in writers if entry is None}),
            "entries": sorted((path, entry) for path, entry in writers if entry is not None),
            # (name, path, entry index or None): a rewrite giving one of these the mirror name
            # `name` gets would make the entry apply to it too.
            "passing": sorted((name, path, entry) for name, (path, entry) in passing),
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


def _entry_found(item: MappingNode, entry: _Entry, images: list[str], edit: dict[str, Any],
                 why_unknown: str) -> list[Found]:
    """The references one entry produces, given the images it applies to."""
    at_key = next(k for k in ("newName", "newTag", "digest") if _value(mapping_get(item, k)) is not None)
    start, end = edit["kustomize"][at_key]["span"]  # where `_edit` found that key's value
    span = (start, end)
    if entry.new_tag or entry.digest:
        raw = _compose(entry.new_name or entry.name, entry.new_tag, entry.digest)
        return [Found(offset=start, raw=raw, span=span, edit=edit)]
    sources = {image: None for image in images if split_image(image)[0] == entry.name}
    if not sources:
        return [Found(offset=start, raw=entry.new_name or "", span=span, edit=edit, unresolved=why_unknown)]
    produced: dict[str, str] = {}
    for source in sources:
        produced.setdefault(entry.apply(source), source)
    return [
        Found(
            offset=start,
            raw=raw,
            span=span,
            note=f"tag kept from {source}",
            edit={"kustomize": {**edit["kustomize"], "source": source}},
        )
        for raw, source in sorted(produced.items())
    ]


def extract(text: str, rule: Rule, context: FileContext) -> Extraction:
    result = Extraction()
    # The includers of a component read it: as this text, which a rewrite may be checking.
    tree = _Tree(dataclasses.replace(context, overlay={**context.overlay, context.path: text}))
    for base, root in documents(text, rule.document_contains):
        images_node = mapping_get(root, "images")
        if not isinstance(images_node, SequenceNode):
            continue
        layer = _Layer(context.path, _kustomization(root))
        kustomization = layer.kustomization
        if not kustomization.entries:
            continue
        build = tree.inputs(layer)
        around = tree.build_includers(layer) if kustomization.component else _Build()
        beyond = _Build()  # what the entries also apply to that the scan cannot see
        beyond.absorb(build)
        beyond.absorb(around)
        images = build.images
        for entry in kustomization.entries:
            item = images_node.value[entry.index]
            before, images = images, tree.apply(layer, entry, images)
            if isinstance(item, MappingNode) and (entry.new_name or entry.new_tag or entry.digest):
                writers = tree.writers[(layer.path, entry.index)]
                edit = _edit(item, text, base, entry.index, kustomization, beyond, writers,
                             tree.passing[(layer.path, entry.index)])
                why = _kept_tags_unknown(entry, kustomization, build)
                result.found += _entry_found(item, entry, [i.image for i in before], edit, why)
    return result
