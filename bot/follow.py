"""Keeping the mirror in step with its upstreams: `rehome sync` and `rehome updates`.

Both start from the references in a tree that point into the mirror and recover each one's
upstream by inverting the mapping template (`bot.policy.map_from_mirror`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from bot import imageref, jsontext, textfile
from bot.errors import UsageError
from bot.imageref import ImageRef
from bot.mirror import MirrorImage, MirrorOptions, ensure_and_show, open_registries
from bot.policy import MappingError, check_invertible, map_from_mirror, matches
from bot.registry import RegistryError, Registries
from bot.registry.manifests import head_digest, list_tags
from bot.scan.model import Reference

log = logging.getLogger("rehome")
T = TypeVar("T")

_VERSION_RE = re.compile(r"(?P<prefix>v?)(?P<numbers>\d+(?:\.\d+)*)(?P<suffix>(?:[-_+].*)?)", re.ASCII)


@dataclasses.dataclass(frozen=True)
class MirrorUse:
    """A reference in the tree to a mirror image, and the upstream image it copies."""

    mirror: ImageRef
    upstream: ImageRef
    references: tuple[Reference, ...]


@dataclasses.dataclass(frozen=True)
class Refused:
    image: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def mirror_uses(references: Iterable[Reference], destination: str, template: str) -> tuple[list[MirrorUse], list[Refused]]:
    """The tree's references into the mirror, grouped by image, each with its upstream.
    Raises MappingError when the template cannot be inverted at all."""
    check_invertible(template)
    prefix = destination.rstrip("/") + "/"
    grouped: dict[str, list[Reference]] = {}
    for ref in references:
        if ref.image is not None and ref.image.startswith(prefix):
            grouped.setdefault(ref.image, []).append(ref)
    uses, refused = [], []
    for image, refs in sorted(grouped.items()):
        mirror = imageref.parse(image)
        try:
            upstream = map_from_mirror(mirror, destination, template)
        except MappingError as exc:
            refused.append(Refused(image, str(exc)))
            continue
        uses.append(MirrorUse(mirror, upstream, tuple(refs)))
    return uses, refused


def say_none_point_into(root: Path, destination: str) -> None:
    """One line for a tree with no reference into the mirror, where a command would otherwise say nothing."""
    log.warning("no reference in %s points into %s", root, destination)


class PerRepository(Generic[T]):
    """`ask` answered once per repository in a run, a failure included: the tags of one image ask once."""

    def __init__(self, ask: Callable[[ImageRef], T]) -> None:
        self._ask = ask
        self._answers: dict[str, T | RegistryError] = {}

    def __call__(self, ref: ImageRef) -> T:
        if ref.name not in self._answers:
            try:
                self._answers[ref.name] = self._ask(ref)
            except RegistryError as exc:
                self._answers[ref.name] = exc
        answer = self._answers[ref.name]
        if isinstance(answer, RegistryError):
            raise answer
        return answer


# --- sync -------------------------------------------------------------------------------


def read_event(path: str) -> Any:
    """The GitHub event a workflow run is for: the JSON file GITHUB_EVENT_PATH names."""
    try:
        return jsontext.loads(textfile.read_text(Path(path)))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the GitHub event: {exc}") from None


def event_field(event: Any, *keys: str) -> Any:
    """`event[key][key]...`, or None where a key is missing or a level is not an object."""
    for key in keys:
        if not isinstance(event, dict):
            return None
        event = event.get(key)
    return event


def from_fork(environ: dict[str, str] | None = None) -> bool:
    """Is this a GitHub Actions run for a pull request whose head lives in another repository?
    A pull request we cannot inspect is treated as untrusted: as from a fork."""
    environ = dict(os.environ) if environ is None else environ
    if not environ.get("GITHUB_EVENT_NAME", "").startswith("pull_request"):
        return False
    if "GITHUB_EVENT_PATH" not in environ:
        return True
    try:
        event = read_event(environ["GITHUB_EVENT_PATH"])
    except UsageError as exc:
        log.warning("%s; taken for a pull request from a fork", exc)
        return True
    head = event_field(event, "pull_request", "head", "repo", "full_name")
    base = event_field(event, "pull_request", "base", "repo", "full_name")
    return head is None or head != base


def _holds_repository(registries: Registries, mirror: ImageRef) -> bool:
    return bool(list_tags(registries.get(mirror.domain), mirror.path, max_pages=1))


ShowSync = Callable[[list[MirrorImage], list[Refused]], None]


def show_nothing(images: list[MirrorImage], refused: list[Refused]) -> None:
    """A ShowSync for callers that report the results themselves."""


def sync(
    uses: Sequence[MirrorUse], options: MirrorOptions, allowed_upstreams: Sequence[str],
    show: ShowSync = show_nothing,
) -> tuple[list[MirrorImage], list[Refused]]:
    """Copy into the mirror what the tree references but the mirror lacks, then `show` what was done
    (also when Ctrl-C stops the copies). Only repositories the mirror already holds, or upstreams
    matching `allowed_upstreams`, may gain new tags: a pull request must not be able to fill the
    trusted mirror with anything it likes."""
    with open_registries(options) as registries:
        allowed, refused = _may_gain_tags(registries, uses, allowed_upstreams)
        moves = [(str(u.upstream), str(u.mirror)) for u in allowed]
        checked: list[MirrorImage] = []

        def show_checked(done: list[MirrorImage]) -> None:
            checked[:] = done if registries.cancelled.is_set() else [_pin_served(registries, i) for i in done]
            show(checked, refused)

        ensure_and_show(moves, options, show_checked, registries=registries)
    return checked, refused


def _pin_served(registries: Registries, image: MirrorImage) -> MirrorImage:
    """`image`, failed when the tree pins a digest its mirror tag does not hold (`stable@sha256:…` after a
    digest bump) and the mirror does not serve that digest either: pulls go by the digest, and would fail."""
    target = imageref.parse(image.target)
    if image.status != "differs" or target.digest is None:
        return image
    step = "check the pinned digest"
    try:
        if head_digest(registries.get(target.domain), target.path, target.digest, step) == target.digest:
            return image
        problem = (f"the mirror does not serve {target.digest}, the digest {image.target} pins (its tag "
                   f"{target.tag} holds {image.mirror_digest}), so pulling it fails (--refresh copies it over the tag)")
        error = str(RegistryError(target.name, step, problem))
    except RegistryError as exc:
        error = f"{exc}; whether the mirror serves the digest {image.target} pins could not be checked"
    return dataclasses.replace(image, status="failed", error=error)


def _may_gain_tags(registries: Registries, uses: Sequence[MirrorUse],
                   allowed_upstreams: Sequence[str]) -> tuple[list[MirrorUse], list[Refused]]:
    holds = PerRepository(lambda mirror: _holds_repository(registries, mirror))
    allowed: list[MirrorUse] = []
    refused: list[Refused] = []
    for use in uses:
        if any(matches(p, use.upstream) for p in allowed_upstreams):
            allowed.append(use)
            continue
        try:
            held = holds(use.mirror)
        except RegistryError as exc:
            refused.append(Refused(str(use.mirror), f"cannot tell whether the mirror holds {use.mirror.name}: {exc}"))
            continue
        if held:
            allowed.append(use)
        else:
            refused.append(Refused(
                str(use.mirror),
                f"the mirror holds no copy of {use.upstream.name} yet and it is not listed under sync_upstreams",
            ))
    return allowed, refused


# --- updates ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Version:
    prefix: str
    numbers: tuple[int, ...]
    suffix: str

    @classmethod
    def parse(cls, tag: str) -> Version | None:
        match = _VERSION_RE.fullmatch(tag)
        if match is None:
            return None
        return cls(match["prefix"], tuple(int(n) for n in match["numbers"].split(".")), match["suffix"])

    def same_shape(self, other: Version) -> bool:
        """Comparable: the same `v`, the same number of parts, the same suffix (`-alpine`)."""
        return (self.prefix, len(self.numbers), self.suffix) == (other.prefix, len(other.numbers), other.suffix)


def newer_tags(current: str, tags: Iterable[str]) -> list[str]:
    """Tags that are later versions of `current`, oldest first; none when `current` is not a version."""
    base = Version.parse(current)
    if base is None:
        return []
    candidates = [(v, t) for t in tags if (v := Version.parse(t)) is not None and v.same_shape(base)]
    return [t for v, t in sorted(candidates, key=lambda vt: vt[0].numbers) if v.numbers > base.numbers]


@dataclasses.dataclass(frozen=True)
class Update:
    image: str  # the mirror reference in the tree
    upstream: str
    tag: str | None
    newer: tuple[str, ...]
    upstream_digest: str | None
    mirror_digest: str | None
    error: str | None = None

    @property
    def moved(self) -> bool:
        """The upstream tag now points at another image than the mirror's copy (a moving tag)."""
        return None not in (self.upstream_digest, self.mirror_digest) and self.upstream_digest != self.mirror_digest

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["newer"] = list(self.newer)
        data["moved"] = self.moved
        return data


def _update_for(registries: Registries, tags_of: Callable[[ImageRef], list[str]], use: MirrorUse) -> Update:
    upstream, mirror = use.upstream, use.mirror
    tag = upstream.tag or (None if upstream.digest else "latest")
    try:
        upstream_registry = registries.get(upstream.domain)
        newer = tuple(newer_tags(tag, tags_of(upstream))) if tag else ()
        # HEAD requests: Docker Hub does not count them against the pull limit.
        upstream_digest = head_digest(upstream_registry, upstream.path, tag) if tag else None
        mirror_digest = upstream.digest or (head_digest(registries.get(mirror.domain), mirror.path, tag) if tag else None)
    except RegistryError as exc:
        return Update(str(mirror), str(upstream), tag, (), None, None, str(exc))
    return Update(str(mirror), str(upstream), tag, newer, upstream_digest, mirror_digest)


def updates(uses: Sequence[MirrorUse], options: MirrorOptions) -> list[Update]:
    with open_registries(options) as registries:
        tags_of = PerRepository(lambda upstream: list_tags(registries.get(upstream.domain), upstream.path, must_exist=True))
        return [_update_for(registries, tags_of, use) for use in uses]
