"""Image references: the grammar of the Go package distribution/reference.

`parse_raw` is Go's `Parse` (no normalisation); `parse` is `ParseNormalizedNamed`
(Docker's defaults: `docker.io`, `library/` for one-component Hub names). Neither
adds `:latest`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import re

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + r"(?:\." + _DOMAIN_NAME_COMPONENT + r")*"
_HOST = r"(?:" + _DOMAIN_NAME + "|" + _IPV6_ADDRESS + ")"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_PATH_COMPONENT = _ALPHANUMERIC + r"(?:" + _SEPARATOR + _ALPHANUMERIC + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

REFERENCE_RE = re.compile(
    r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?", re.ASCII
)
_ANCHORED_NAME_RE = re.compile(r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")", re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")

# Algorithms go-digest registers, and the hex length each requires.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReference(ValueError):
    """Text that is not a valid image reference; the message says why."""


@dataclasses.dataclass(frozen=True)
class ImageRef:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`domain/path` without tag or digest (`path` alone when there is no domain)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str | None) -> ImageRef:
        return dataclasses.replace(self, tag=tag)

    def with_digest(self, digest: str | None) -> ImageRef:
        return dataclasses.replace(self, digest=digest)

    @property
    def familiar(self) -> str:
        """The short form Docker prints: `nginx:1.27` for `docker.io/library/nginx:1.27`."""
        path = self.path
        if self.domain == DEFAULT_DOMAIN and path.startswith(OFFICIAL_REPO_PREFIX):
            rest = path[len(OFFICIAL_REPO_PREFIX):]
            if "/" not in rest:
                path = rest
        name = path if self.domain == DEFAULT_DOMAIN else f"{self.domain}/{path}"
        return str(dataclasses.replace(self, domain="", path=name))


def _check_digest(digest: str) -> None:
    algorithm, _, hex_part = digest.partition(":")
    expected = _DIGEST_HEX_LENGTHS.get(algorithm)
    if expected is None:
        raise InvalidReference(f"unsupported digest algorithm {algorithm!r} in {digest!r}")
    if len(hex_part) != expected:
        raise InvalidReference(
            f"invalid digest length: {algorithm} needs {expected} hex digits, {digest!r} has {len(hex_part)}"
        )
    if hex_part != hex_part.lower():
        raise InvalidReference(f"invalid digest {digest!r}: hex digits must be lowercase")


def parse_raw(text: str) -> ImageRef:
    """Go's `reference.Parse`: validate and split, without Docker's defaults."""
    if not isinstance(text, str):
        raise InvalidReference(f"an image reference must be text, not {type(text).__name__}")
    if text == "":
        raise InvalidReference("repository name must have at least one component")
    match = REFERENCE_RE.fullmatch(text)
    if match is None:
        if REFERENCE_RE.fullmatch(text.lower()) is not None:
            raise InvalidReference(f"invalid reference {text!r}: repository name must be lowercase")
        raise InvalidReference(f"invalid reference format: {text!r}")
    name, tag, digest = match.groups()
    name_match = _ANCHORED_NAME_RE.fullmatch(name)
    assert name_match is not None  # the reference pattern contains the name pattern
    domain, path = name_match.groups()
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"repository path must not be more than {NAME_TOTAL_LENGTH_MAX} characters: {path[:40]}…"
        )
    if digest is not None:
        _check_digest(digest)
    return ImageRef(domain=domain or "", path=path, tag=tag, digest=digest)


def _split_docker_domain(text: str) -> tuple[str, str]:
    maybe_domain, slash, maybe_remote = text.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + text
    if maybe_domain == "localhost":
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, maybe_remote
    elif any(c in maybe_domain for c in ".:") or maybe_domain.lower() != maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = DEFAULT_DOMAIN, text
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


def parse(text: str) -> ImageRef:
    """Go's `reference.ParseNormalizedNamed`: a full name as Docker resolves it."""
    if not isinstance(text, str):
        raise InvalidReference(f"an image reference must be text, not {type(text).__name__}")
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    if text == "":
        raise InvalidReference("empty image reference")
    domain, remainder = _split_docker_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote and REFERENCE_RE.fullmatch(f"{domain}/{remainder.lower()}"):
        raise InvalidReference(f"invalid reference format: repository name ({remote}) must be lowercase")
    ref = parse_raw(f"{domain}/{remainder}")
    if not ref.domain:
        # Cannot happen for names built above; kept so a grammar change fails loudly.
        raise InvalidReference(f"reference {text!r} has no domain")
    return ref


def check_not_host_alone(text: str) -> None:
    """Refuse a registry host alone (`127.0.0.1:5000`, `registry.example.com`, `localhost`) where an image belongs.

    Docker's grammar reads those as Docker Hub names (`docker.io/library/127.0.0.1`, tag `5000`), which nobody
    means; a name without a dot (`nginx:1.27`) is left to be Docker Hub's.
    """
    if "/" in text:
        return
    name, _, port = text.partition("@")[0].partition(":")
    if "." in name or name == "localhost":
        host = f"{name}:{port}" if port.isdigit() else name
        raise InvalidReference(f"{host} names a registry but no repository; add a repository path, e.g. {host}/NAME")


def parse_or_none(text: str) -> ImageRef | None:
    try:
        return parse(text)
    except InvalidReference:
        return None


def written_name(text: str) -> str:
    """The image name `text` starts with, as written (`python` in `python:${PY}-slim`); "" for none."""
    match = _ANCHORED_NAME_RE.match(text)
    return match.group(0) if match else ""


def on_loopback(domain: str) -> bool:
    """The registry `domain` is `localhost` or a loopback address (127.0.0.0/8, [::1]), with or without a port."""
    host = re.sub(r":[0-9]+\Z", "", domain).removeprefix("[").removesuffix("]")
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return host.lower() == "localhost"
