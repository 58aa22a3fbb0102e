"""Which registries are internal, and which images a user chose to leave alone."""
from __future__ import annotations

import dataclasses
import fnmatch
import re
import string
from functools import lru_cache

from bot import imageref
from bot.imageref import ImageRef

# The guide treats Google's registries as already internal.
DEFAULT_INTERNAL = ("gcr.io", "*.gcr.io", "*.pkg.dev")


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    # fnmatch's `*` already crosses `/`, which is what the patterns want.
    return re.compile(fnmatch.translate(pattern))


def matches(pattern: str, ref: ImageRef) -> bool:
    """A pattern without `/` matches the domain alone; otherwise `domain[:port]/path`."""
    subject = ref.name if "/" in pattern else ref.domain
    return _compile(pattern).match(subject) is not None


@dataclasses.dataclass(frozen=True)
class Policy:
    internal: tuple[str, ...] = DEFAULT_INTERNAL
    exclude_images: tuple[str, ...] = ()
    destination: str | None = None

    def is_internal(self, ref: ImageRef) -> bool:
        if self.destination is not None and _under_destination(ref, self.destination):
            return True
        return any(matches(p, ref) for p in self.internal)

    def is_excluded(self, ref: ImageRef) -> bool:
        return any(matches(p, ref) for p in self.exclude_images)


def _under_destination(ref: ImageRef, destination: str) -> bool:
    prefix = destination.rstrip("/")
    return ref.name == prefix or ref.name.startswith(prefix + "/") or (
        "/" not in prefix and ref.domain == prefix
    )


class MappingError(ValueError):
    """A source the mapping template cannot encode into a mirror name."""


PLACEHOLDERS = ("destination", "domain", "path")


def check_template(template: str) -> None:
    """A template may use only the known placeholders and must keep the path."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise MappingError(f"mapping template {template!r} is malformed: {exc}") from None
    unknown = sorted(set(fields) - set(PLACEHOLDERS))
    if unknown:
        raise MappingError(
            f"mapping template {template!r} uses unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
        )
    if "path" not in fields:
        raise MappingError(f"mapping template {template!r} must contain {{path}}, or every image would land on one name")


def encode_domain(domain: str) -> str:
    """`registry:5000` → `registry__5000`: no hostname contains `__`, so the mapping can be inverted."""
    if domain.startswith("["):
        raise MappingError(f"registry {domain} is an IPv6 literal, which has no reversible form in a repository path")
    if domain != domain.lower():
        raise MappingError(f"registry {domain} has uppercase letters, which repository paths cannot hold")
    if "__" in domain:
        raise MappingError(f"registry {domain} contains '__', which the mapping uses to encode ports")
    return domain.replace(":", "__")


def map_to_mirror(source: ImageRef, destination: str, template: str) -> ImageRef:
    """The mirror image for `source`: the template's name, with tag and digest as written."""
    name = template.format(destination=destination.rstrip("/"), domain=encode_domain(source.domain), path=source.path)
    try:
        target = imageref.parse(name)
    except imageref.InvalidReference as exc:
        raise MappingError(f"the mapping gives {name!r}, which is not a valid image name: {exc}") from None
    if target.tag is not None or target.digest is not None:
        raise MappingError(f"the mapping gives {name!r}, which carries a tag or digest of its own")
    return ImageRef(target.domain, target.path, source.tag, source.digest)
