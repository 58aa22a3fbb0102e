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


def _template_parts(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder or None) pairs, in order."""
    return [(literal, name) for literal, name, _, _ in string.Formatter().parse(template)]


def check_invertible(template: str) -> None:
    """Refuse, with the reason, a template whose mirror names do not say which upstream they copy.

    The rule: `{domain}` and `{path}` each appear exactly once, the template does not start
    with `{domain}` (that would be the registry the name is pulled from), `{path}` ends it, and
    the text between `{domain}` and the next placeholder contains a `/`. A domain never holds a
    `/`, so the domain is then exactly what its path segment holds; every other part of the
    name is known text (the destination is given). A template without `{domain}` is refused
    even when a team only mirrors one registry: nothing in the mirror says which one it was."""
    check_template(template)
    parts = _template_parts(template)
    names = [name for _, name in parts if name is not None]
    for name in PLACEHOLDERS:
        if names.count(name) > 1:
            raise MappingError(
                f"mapping template {template!r} uses {{{name}}} more than once, so it cannot be inverted"
            )
    if "domain" not in names:
        raise MappingError(
            f"mapping template {template!r} has no {{domain}}: images with the same path on different "
            "registries (docker.io/x, quay.io/x) get the same mirror name, so the upstream cannot be recovered"
        )
    if parts[0] == ("", "domain"):
        raise MappingError(
            f"mapping template {template!r} must not start with {{domain}}: the first part of a name is the "
            "registry it is pulled from, which must be the mirror's"
        )
    if parts[-1][1] != "path":
        raise MappingError(
            f"mapping template {template!r} must end with {{path}}: text after the path cannot be told apart from it"
        )
    index = next(i for i, (_, name) in enumerate(parts) if name == "domain")
    if "/" not in parts[index + 1][0]:
        raise MappingError(
            f"mapping template {template!r} must have a '/' between {{domain}} and the next placeholder: "
            "without it the end of the registry name cannot be found"
        )


def decode_domain(encoded: str) -> str:
    """The inverse of `encode_domain`: `registry__5000` → `registry:5000`."""
    return encoded.replace("__", ":")


def _inverse_pattern(template: str, destination: str) -> re.Pattern[str]:
    pattern = ""
    for literal, name in _template_parts(template):
        pattern += re.escape(literal)
        if name == "destination":
            pattern += re.escape(destination.rstrip("/"))
        elif name == "domain":
            pattern += "(?P<domain>[^/]+)"
        elif name == "path":
            pattern += "(?P<path>.+)"
    return re.compile(pattern)


def map_from_mirror(mirror: ImageRef, destination: str, template: str) -> ImageRef:
    """The upstream image a mirror image copies, by inverting the template (see `check_invertible`).

    Raises MappingError when the template cannot be inverted or `mirror` is not one of its names."""
    check_invertible(template)
    match = _inverse_pattern(template, destination).fullmatch(mirror.name)
    if match is None:
        raise MappingError(f"{mirror.name} is not a mirror name that {template!r} gives under {destination}")
    domain = decode_domain(match["domain"])
    text = f"{domain}/{match['path']}"
    try:
        upstream = imageref.parse(text)
    except imageref.InvalidReference as exc:
        raise MappingError(f"{mirror.name} maps back to {text!r}, which is not a valid image name: {exc}") from None
    upstream = ImageRef(upstream.domain, upstream.path, mirror.tag, mirror.digest)
    # Parsing normalises (`library/x` is Docker Hub's), and the forward mapping normalises its
    # result: only an upstream named as written that maps forward to this very name is the answer.
    if upstream.domain != domain or map_to_mirror(upstream, destination, template) != mirror:
        raise MappingError(f"{mirror.name} is not a mirror name that {template!r} gives under {destination}")
    return upstream
