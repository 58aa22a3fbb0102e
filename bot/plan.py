"""The plan stage: third-party references grouped into moves, one source image → one mirror image."""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

from bot import imageref
from bot.policy import MappingError, map_to_mirror
from bot.scan.kustomize import split_image
from bot.scan.model import THIRD_PARTY, UNRESOLVED, Reference, ScanResult, Skipped
from bot.scan.yaml import gitlab_host_names, mentioned_variables


class PullLookup(Protocol):
    def lookup(self, image: str) -> tuple[int | None, int | None]:
        """(pulls of this exact reference, pulls of its repository), None where unknown."""


@dataclasses.dataclass(frozen=True)
class Occurrence:
    path: str
    line: int
    column: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Move:
    source: str
    target: str
    references: list[Reference]
    pulls: int | None = None
    repository_pulls: int | None = None

    @property
    def occurrences(self) -> list[Occurrence]:
        return [Occurrence(r.path, r.line, r.column) for r in self.references]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "occurrences": [o.to_json() for o in self.occurrences],
            "pulls": self.pulls,
            "repository_pulls": self.repository_pulls,
        }


@dataclasses.dataclass
class Plan:
    destination: str
    pin_digest: bool
    moves: list[Move]
    unresolved: list[Reference]
    covered: list[Reference]
    skipped: list[Skipped] = dataclasses.field(default_factory=list)  # files the scan could not read

    def stays_json(self) -> dict[str, Any]:
        """What stays as written: the references no move covers, those left on purpose, the files not read."""
        return {
            "unresolved": [r.to_json() for r in self.unresolved],
            "covered": [r.to_json() for r in self.covered],
            "skipped": [s.to_json() for s in self.skipped],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "destination": self.destination,
            "pin_digest": self.pin_digest,
            "moves": [m.to_json() for m in self.moves],
            **self.stays_json(),
        }


def _with_reason(ref: Reference, status: str, reason: str) -> Reference:
    return dataclasses.replace(ref, status=status, reason=reason)


def override_matches(override: Reference, references: list[Reference]) -> list[Reference]:
    """The references that write the names of the images a Kustomize `images:` entry applies to:
    those in the local manifests whose images reach it, written with the entry's `name` (kustomize
    compares names as written), the entry of an included kustomization (or of one including a
    component) whose `newName` gives the images that name, and the entries applied to them since,
    which a rewrite that moves them gives a `newName`."""
    entry = override.found.edit["kustomize"]
    name = (entry.get("name") or {}).get("value")
    manifests = set(entry.get("manifests", ()))
    entries = set(entry.get("entries", ()))
    return [r for r in references if _writes_name(r, name, manifests, entries)]


def _writes_name(ref: Reference, name: str | None, manifests: set[str], entries: set[tuple[str, int]]) -> bool:
    other = ref.found.edit.get("kustomize")
    if other is None:
        return ref.path in manifests and split_image(ref.raw)[0] == name
    return (ref.path, other["entry"]) in entries


def _unseen_images(entry: Mapping[str, Any]) -> tuple[str, str]:
    """(what the override applies to, and what includes the images it applies to) that the scan
    cannot see: resources from outside the repository, or images that patches set."""
    external, patched = entry.get("external", ()), entry.get("patched", ())
    if external:
        unseen = f"resources from outside the repository ({', '.join(external[:2])})"
    else:
        unseen = f"images set by patches the scan does not read ({', '.join(patched[:2])})"
    if entry.get("component"):
        return f"this component's entries also apply to {unseen}", f"a component whose entries also apply to {unseen}"
    if external:
        return f"the kustomization also builds {unseen}", f"whose kustomization also builds {unseen}"
    return f"the override also applies to {unseen}", f"which also applies to {unseen}"


def covered_reasons(references: list[Reference]) -> dict[int, str]:
    """Third-party references that must stay as they are, by id, with the reason.

    A Kustomize override whose kustomization (or, in a component, one including it) also builds
    resources from outside the repository, or applies patches that may set images: renaming its
    `name` with the manifests here would silently drop the override for the images the scan
    cannot see, so neither the entry nor what it matches moves."""
    reasons: dict[int, str] = {}
    for ref in references:
        entry = ref.found.edit.get("kustomize")
        if not entry or not entry.get("remote"):
            continue
        whose, matched_in = _unseen_images(entry)
        reasons[id(ref)] = f"{whose}; moving this override would make it stop applying to them"
        for match in override_matches(ref, references):
            reasons[id(match)] = f"matched by the Kustomize images: override in {ref.path}, {matched_in}"
    return reasons


# Kustomize `images:` entries, each with the manifest references it applies to.
Overrides = list[tuple[Reference, list[Reference]]]


def renamable_overrides(references: list[Reference]) -> Overrides:
    """The Kustomize `images:` entries whose `name` a rewrite renames to follow their manifests'
    move, each with the manifest references it applies to."""
    return [
        (ref, override_matches(ref, references)) for ref in references
        if (entry := ref.found.edit.get("kustomize")) and not entry.get("remote") and entry.get("name") is not None
    ]


def held_by_overrides(overrides: Overrides, moving: set[int]) -> dict[int, str]:
    """Of the `moving` references (by id), those that must stay with a Kustomize `images:` entry,
    with the reason. An entry applying to references of which some move and some stay cannot be
    renamed to follow the ones that move without ceasing to apply to the others: it and all it
    matches stay. Repeated until nothing changes, as what stays can hold more. `overrides`: the
    tree's `renamable_overrides`."""
    held: dict[int, str] = {}
    while True:
        before = len(held)
        for override, matches in overrides:
            staying = [m for m in matches if id(m) not in moving or id(m) in held]
            if not staying or len(staying) == len(matches):
                continue
            where = f"{staying[0].path}:{staying[0].line}"
            name = override.found.edit["kustomize"]["name"]["value"]
            held.setdefault(id(override), f"its name {name} also matches {where}, which stays: renamed to follow "
                                          "the others, it would stop applying there; change it by hand")
            for match in matches:
                held.setdefault(id(match), f"matched by the Kustomize images: entry at {override.path}:{override.line}, "
                                           f"which must keep its name: it also matches {where}, which stays")
        if len(held) == before:
            return {ref: reason for ref, reason in held.items() if ref in moving}


def _passing(override: Reference, by_path: Mapping[str, list[Reference]]) -> list[tuple[str, Reference]]:
    """The references that write the names of the images reaching a Kustomize `images:` entry
    that it does not apply to, each with that name."""
    passing = override.found.edit["kustomize"].get("passing", ())
    return [(name, ref) for name, path, index in passing for ref in by_path.get(path, ())
            if _writes_name(ref, name, {path}, {(path, index)})]


def held_by_shared_names(references: list[Reference], overrides: Overrides,
                         mirror_names: Mapping[int, str]) -> dict[int, str]:
    """The references that must stay with a Kustomize `images:` entry (by id, with the reason):
    kustomize compares names as written, so an entry for `nginx` does not apply to
    `docker.io/library/nginx`; renamed with its images to their mirror name, it would apply to the
    other as well, once that moves to the same mirror name. The entry and what it applies to stay.
    `mirror_names` holds the mirror name of each moving reference, by id."""
    by_path: dict[str, list[Reference]] = defaultdict(list)
    for ref in references:
        by_path[ref.path].append(ref)
    held: dict[int, str] = {}
    for override, matches in overrides:
        new_names = {name for m in matches if (name := mirror_names.get(id(m)))}
        clash = None if not new_names else next(((name, ref) for name, ref in _passing(override, by_path)
                      if mirror_names.get(id(ref)) in new_names), None)
        if clash is None:
            continue
        own_name = override.found.edit["kustomize"]["name"]["value"]
        reason = (f"{' and '.join(sorted({own_name, clash[0]}))} would share the mirror name "
                  f"{mirror_names[id(clash[1])]}, and the Kustomize images: entry at {override.path}:{override.line} "
                  f"applies only to {own_name} ({clash[1].path}:{clash[1].line} is the other): renamed, it would "
                  "apply to both; change it by hand")
        for ref in [override, *matches]:
            held.setdefault(id(ref), reason)
    return held


def held_by_args(references: list[Reference], moving: set[int]) -> dict[int, str]:
    """Of the `moving` references (by id), the Dockerfile ARG defaults that a FROM which stays also
    reads (`ARG PY=python:3.12` with `FROM ${PY}-slim`): moving the default would change that
    image too. With the reason. (An ARG another ARG reads is used outside FROM lines: it stays.)"""
    readers: dict[tuple[str, str], Reference] = {}
    for ref in references:
        if id(ref) not in moving:
            for name in ref.found.edit.get("args", ()):
                readers.setdefault((ref.path, name), ref)
    held = {}
    for ref in references:
        name = ref.found.edit.get("arg")
        reader = readers.get((ref.path, str(name)))
        if id(ref) in moving and ref.found.edit.get("instruction") == "ARG" and reader is not None:
            held[id(ref)] = (f"ARG {name} is also read by {reader.raw} (line {reader.line}), which stays: "
                             "moving its default would change that image too; change it by hand")
    return held


def held_by_services_elsewhere(references: list[Reference], moving: set[int]) -> dict[int, str]:
    """Of the `moving` references (by id), the GitLab images a variable of their file holds that a
    service of another file of the tree is named by (`services: [$IMG]` in an included file, which
    GitLab reads with the variables of the file including it), with the reason: a rewrite keeps such a
    service's host names only in the file that gives the variable."""
    readers: dict[tuple[str, str], list[Reference]] = defaultdict(list)  # (kind, variable): services named by it
    for ref in references:
        if ref.found.edit.get("service") and "$" in ref.raw:
            for name in mentioned_variables(ref.raw):
                readers[(ref.kind, name)].append(ref)
    if not readers:
        return {}
    held = {}
    for ref in references:
        reason = _service_elsewhere(ref, readers) if id(ref) in moving else None
        if reason is not None:
            held[id(ref)] = reason
    return held


def _service_elsewhere(ref: Reference, readers: Mapping[tuple[str, str], list[Reference]]) -> str | None:
    for name in ref.found.edit.get("variables", ()):
        service = next((s for s in readers.get((ref.kind, name), ()) if s.path != ref.path), None)
        if service is not None:
            return (f"the service at {service.path}:{service.line} is named {service.raw}, which may take this image "
                    f"from the variable {name}: a rewrite keeps the host names of such a service "
                    f"({', '.join(gitlab_host_names(ref.raw))}) only in the file that gives the variable; "
                    "change it by hand")
    return None


def is_multiline_block(facts: Mapping[str, Any]) -> bool:
    """A YAML block scalar over several lines (`|` / `>`): its text is not its value, and
    writing the value on one line would change the style."""
    return not facts.get("exact", True) and facts.get("style") in ("|", ">")


def _edited_scalars(ref: Reference) -> list[Mapping[str, Any]]:
    """The facts of each scalar a rewrite of `ref` replaces."""
    edit = ref.found.edit
    if "helm" in edit:
        return [part for key in ("registry", "repository") if (part := edit["helm"].get(key)) is not None]
    if "kustomize" in edit:
        return [part for part in [edit["kustomize"].get("newName")] if part is not None]
    return [edit]


def _name_is_written(ref: Reference) -> bool:
    """The reference text holds its image name as plain text: variables, if any, only in the
    tag or digest (`python:${PY}-slim`), so a rewrite can replace the name and keep the rest."""
    resolved = ref.found.resolve_as
    if resolved is None or "helm" in ref.found.edit or "kustomize" in ref.found.edit:
        return True
    name = imageref.written_name(ref.raw)
    return bool(name) and name == imageref.written_name(resolved) and ref.raw[len(name):][:1] in ("", ":", "@")


def _host_names_blocker(service: Mapping[str, Any]) -> str | None:
    """Why a GitLab service cannot keep the host names jobs may reach it by, or None."""
    if service.get("reference_service"):
        return (f"the !reference at line {service['reference_service']} makes it a service, whose host names "
                f"({', '.join(service['host_names'])}) a rewrite cannot keep there; change it by hand")
    if service.get("image_mapping_anchor"):
        return (f"the service is the YAML anchor &{service['image_mapping_anchor']}, an image's mapping: GitLab takes "
                f"no alias: in an image, so the service cannot keep its host names "
                f"({', '.join(service['host_names'])}); change it by hand")
    if service.get("block_item"):
        return ("the service is a block scalar that keeps its final newline (`>` or `|`): it cannot become the name: "
                "and alias: mapping that keeps its host names; write it on the item's line, or use `|-`/`>-`")
    if not service["aliases"]:
        return (f"no host name gitlab-runner gives the service ({', '.join(service['host_names'])}) can be an alias "
                "(a lowercase RFC 1123 host name, as the Kubernetes executor requires): moved, jobs could no "
                "longer reach it by name; change it by hand")
    lost = service.get("lost_host_name")
    if lost:
        return (f"the file uses the service's host name {lost}, which no alias can keep (not a lowercase RFC 1123 "
                f"host name, as the Kubernetes executor requires); use {', '.join(service['aliases'])} instead, "
                "or change it by hand")
    return None


def rewrite_blocker(ref: Reference) -> str | None:
    """Why a rewrite cannot edit this reference (it stays, unresolved, and the rest of its file
    still moves), or None."""
    edit = ref.found.edit
    if edit.get("arg_used_elsewhere"):
        return f"ARG {edit.get('arg')} holds the image and is also used outside FROM lines; change it by hand"
    if edit.get("shared_anchor"):
        return _shared_anchor(edit)
    if edit.get("shared_reference"):
        return (f"the !reference at line {edit['shared_reference']} uses the value where no image is expected: "
                "moving it would change that value too; change it by hand")
    if edit.get("mixed_service_anchor"):
        return _mixed_service_anchor(edit["mixed_service_anchor"])
    if any(is_multiline_block(facts) for facts in _edited_scalars(ref)):
        return "the image is a block scalar over several lines; change it by hand"
    if not _name_is_written(ref):
        return "the image name comes from a variable: only a name written out can be rewritten; change it by hand"
    own = _host_names_blocker(edit) if edit.get("service") else None
    return own or next(filter(None, map(_variable_service_blocker, edit.get("variable_services", ()))), None)


def _shared_anchor(edit: Mapping[str, Any]) -> str:
    """Why a value anchored where no image is expected too stays: the value itself, or (Helm) a mapping
    merged in that gives the entry its `registry` or `repository`."""
    anchor, keys = edit["shared_anchor"], edit.get("shared_anchor_keys")
    if keys:
        value = f"the {' and '.join(keys)} {'comes' if len(keys) == 1 else 'come'} from the mapping anchored &{anchor}"
    else:
        value = f"the value is the YAML anchor &{anchor}"
    at = f" at line {edit['shared_anchor_line']}," if edit.get("shared_anchor_line") else ""
    return (f"{value}, also used{at} where no image is expected: moving it would change that "
            f"{'mapping' if keys else 'value'} too; change it by hand")


def _mixed_service_anchor(anchor: str) -> str:
    return (f"the service is the YAML anchor &{anchor}, also written or used where it is not an item of a services "
            "list: it cannot become the name: and alias: mapping that keeps the service's host names; "
            "change it by hand")


def _variable_service_blocker(use: Mapping[str, Any]) -> str | None:
    """Why a GitLab service named by a variable holding the image cannot keep its host names, or None."""
    service = f"the service at line {use['line']} is named {use['raw']}"
    if use.get("redefined"):
        lines = ", ".join(map(str, use["redefined"]))
        return (f"{service}, and the file gives the variable {use['variable']} holding this image several values "
                f"(lines {lines}): which one the service reads depends on the job; change it by hand")
    service += f", which takes this image from the variable {use['variable']}"
    if use.get("not_alone"):
        return (f"{service}: only a service named by the variable that holds the image, and by nothing else, can "
                "keep its host names; change it by hand")
    why = _mixed_service_anchor(use["mixed_service_anchor"]) if use.get("mixed_service_anchor") else (
        _host_names_blocker(use))
    return None if why is None else f"{service}: {why}"


def _loopback_reason(source: imageref.ImageRef, destination: str) -> str | None:
    """A registry on loopback names the machine that pulls the image: from anywhere else there is
    nothing to copy. (With a mirror on loopback too, everything runs on one machine: it moves.)"""
    if not imageref.on_loopback(source.domain) or imageref.on_loopback(destination.partition("/")[0]):
        return None
    return f"registry {source.domain} is a loopback address: only the machine that pulls the image can reach it"


def _collisions(targets: dict[str, str]) -> dict[str, str]:
    """Sources that a mapping (one without `{domain}`) sends to the mirror tag another image's copy
    writes (however spelt: `x` is `x:latest`): copying both would let one overwrite the other. Each,
    with why it does not move. The same image spelt twice, or a copy by digest alone, clashes with none."""
    sources: dict[str, list[str]] = defaultdict(list)
    for source, target in targets.items():
        written = imageref.tag_written(source, target)
        if written is not None:
            sources[written].append(source)
    reasons = {}
    for same in sources.values():
        for source in same:
            others = sorted(s for s in same if not imageref.same_image(s, source))
            if others:
                reasons[source] = (f"the mapping gives {source} and {', '.join(others)} one mirror name, "
                                   f"{targets[source]}; put {{domain}} in the mapping to keep them apart")
    return reasons


def make_plan(
    scanned: ScanResult,
    destination: str,
    mapping: str,
    *,
    pin_digest: bool = False,
    pulls: PullLookup | None = None,
) -> Plan:
    by_source: dict[str, list[Reference]] = defaultdict(list)
    targets: dict[str, str] = {}
    unresolved = [r for r in scanned.references if r.status == UNRESOLVED]
    covered = []
    reasons = covered_reasons(scanned.references)
    for ref in scanned.references:
        if ref.status != THIRD_PARTY:
            continue
        reason = reasons.get(id(ref))
        if reason is not None:
            covered.append(_with_reason(ref, ref.status, reason))
            continue
        assert ref.image is not None
        source = imageref.parse(ref.image)
        try:
            target = map_to_mirror(source, destination, mapping)
        except MappingError as exc:
            unresolved.append(_with_reason(ref, UNRESOLVED, str(exc)))
            continue
        reason = _loopback_reason(source, destination) or rewrite_blocker(ref)
        if reason is not None:
            unresolved.append(_with_reason(ref, UNRESOLVED, reason))
            continue
        by_source[ref.image].append(ref)
        targets[ref.image] = str(target)
    for source, reason in _collisions(targets).items():
        unresolved.extend(_with_reason(ref, UNRESOLVED, reason) for ref in by_source.pop(source))
    moving = {id(ref) for refs in by_source.values() for ref in refs}
    held = held_by_args(scanned.references, moving)
    held.update(held_by_services_elsewhere(scanned.references, moving))
    mirror_names = {id(ref): imageref.parse(targets[source]).name for source, refs in by_source.items() for ref in refs}
    overrides = renamable_overrides(scanned.references)
    sharing = held_by_shared_names(scanned.references, overrides, mirror_names)
    held.update({ref: reason for ref, reason in sharing.items() if ref in moving})
    held.update(held_by_overrides(overrides, moving - set(held)))
    for source, refs in list(by_source.items()):
        unresolved.extend(_with_reason(ref, UNRESOLVED, held[id(ref)]) for ref in refs if id(ref) in held)
        by_source[source] = [ref for ref in refs if id(ref) not in held]
        if not by_source[source]:
            del by_source[source]
    moves = []
    for source in sorted(by_source):
        counts = pulls.lookup(source) if pulls is not None else (None, None)
        moves.append(Move(source, targets[source], by_source[source], *counts))
    key = lambda r: (r.path, r.line, r.column)  # noqa: E731
    return Plan(destination, pin_digest, moves, sorted(unresolved, key=key), sorted(covered, key=key),
                list(scanned.skipped))
