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
import string

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
# The parts of the grammar, to say which part of a refused reference is wrong.
_HOST_RE = re.compile(_HOST, re.ASCII)
_PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT, re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_TAG_CHARACTERS_RE = re.compile(r"[\w.-]*", re.ASCII)
# A digest written after ':' instead of '@' (`app:sha256:…`), a slip seen in real files.
_DIGEST_AFTER_COLON_RE = re.compile(r":(sha256|sha384|sha512):[0-9a-fA-F]+\Z")
TAG_LENGTH_MAX = 128
PORT_MAX = 65535

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
    if not digest:
        raise InvalidReference("invalid reference format: the digest after '@' is empty")
    algorithm, _, hex_part = digest.partition(":")
    expected = _DIGEST_HEX_LENGTHS.get(algorithm)
    if expected is None:
        raise InvalidReference(f"unsupported digest algorithm {algorithm!r} in {digest!r}")
    not_hex = next((c for c in hex_part if c not in string.hexdigits), None)
    if not_hex is not None:
        raise InvalidReference(
            f"invalid digest {digest!r}: {not_hex!r} is not a hex digit; {algorithm} needs {expected} hex digits "
            "(0-9, a-f)"
        )
    if len(hex_part) != expected:
        raise InvalidReference(
            f"invalid digest length: {algorithm} needs {expected} hex digits, {digest!r} has {len(hex_part)}"
        )
    if hex_part != hex_part.lower():
        raise InvalidReference(f"invalid digest {digest!r}: hex digits must be lowercase")


def _shown(part: str) -> str:
    return repr(part if len(part) <= 40 else part[:40] + "…")


def _domain_problem(domain: str) -> str | None:
    """What is wrong with a registry host and port; None when nothing is. (Docker's grammar takes any port number,
    though none above 65535 can be listened on.)"""
    host, colon, port = domain.rpartition(":")
    if not colon or domain.endswith("]"):  # no port: an IPv6 address has colons of its own
        host = domain
    elif not port.isdigit():
        return f"the port of registry {_shown(domain)} must be a number"
    elif not 0 < int(port) <= PORT_MAX:
        return f"registry port {port} in {_shown(domain)} is out of range: a port is 1 to {PORT_MAX}"
    return None if _HOST_RE.fullmatch(host) else f"registry host {_shown(host)} is not a host name or IP address"


def _name_problem(name: str) -> str | None:
    components = name.split("/")
    if "" in components:
        return (f"repository name {_shown(name)} has an empty path component (a '/' at the start or end, "
                "or two in a row)")
    if len(components) > 1 and (any(c in components[0] for c in ".:[") or components[0] == "localhost"):
        problem = _domain_problem(components.pop(0))
        if problem is not None:
            return problem
    for component in components:
        if not _PATH_COMPONENT_RE.fullmatch(component):
            return (f"path component {_shown(component)} must be lowercase letters and digits, joined by one '.', "
                    "one or two '_', or dashes")
    return None


def _tag_problem(tag: str) -> str | None:
    if _TAG_RE.fullmatch(tag):
        return None
    if not tag:
        return "the tag after ':' is empty"
    if not _TAG_CHARACTERS_RE.fullmatch(tag):
        return f"tag {_shown(tag)} may hold only letters, digits, '_', '.' and '-'"
    if tag[0] in ".-":
        return f"tag {_shown(tag)} must start with a letter, a digit or '_'"
    return f"tag {_shown(tag)} is {len(tag)} characters long, more than {TAG_LENGTH_MAX}"


def _why_refused(text: str) -> str:
    """Why the grammar refuses `text`: the first of its name, tag and digest that is wrong, where one is."""
    slip = _DIGEST_AFTER_COLON_RE.search(text)
    if slip is not None and "@" not in text:
        return (f"invalid reference format: a digest follows '@', not ':' "
                f"({_shown(text[:slip.start()])}@{slip.group(1)}:…)")
    rest, at, digest = text.partition("@")
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        name, tag = rest, None
    problem = _name_problem(name) or (None if tag is None else _tag_problem(tag))
    if problem is None and at:
        _check_digest(digest)
    return f"invalid reference format: {problem}" if problem else f"invalid reference format: {text!r}"


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
        raise InvalidReference(_why_refused(text))
    name, tag, digest = match.groups()
    name_match = _ANCHORED_NAME_RE.fullmatch(name)
    assert name_match is not None  # the reference pattern contains the name pattern
    domain, path = name_match.groups()
    if domain and (problem := _domain_problem(domain)):
        raise InvalidReference(f"invalid reference format: {problem}")
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
    normalized = f"{domain}/{remainder}"
    try:
        ref = parse_raw(normalized)
    except InvalidReference:
        # Said of the text as typed, not of the `docker.io/library/` name Docker reads it as.
        if normalized != text and REFERENCE_RE.fullmatch(text) is None:
            raise InvalidReference(_why_refused(text)) from None
        raise
    if not ref.domain:  # the grammar read a host it refuses (`my_host.com`) as part of the path
        raise InvalidReference(f"invalid reference format: {_domain_problem(domain) or f'{text!r} names no registry'}")
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


def target_reference(source: ImageRef, target: ImageRef) -> str | None:
    """The tag a copy of `source` to `target` gives the mirror: the target's, else the source's, else
    Docker's `latest` (None: by digest only)."""
    if target.tag:
        return target.tag
    if target.digest:
        return None
    if source.tag:
        return source.tag
    return None if source.digest else "latest"


def tag_written(source: str, target: str) -> str | None:
    """The mirror tag a copy writes, whatever the spelling (`x` is `x:latest`, hosts are alike in any
    case); None when it writes none, copying by digest alone. A text that is no reference is itself."""
    source_ref, target_ref = parse_or_none(source), parse_or_none(target)
    if source_ref is None or target_ref is None:
        return target
    tag = target_reference(source_ref, target_ref)
    return f"{target_ref.domain.lower()}/{target_ref.path}:{tag}" if tag is not None else None


def same_image(first: str, other: str) -> bool:
    """The same image by name and tag, however spelt: `docker.io/library/redis` is `…/redis:latest`,
    and a digest pinning the tag is left to the copy's own check."""
    return _named(first) == _named(other)


def _named(text: str) -> str:
    ref = parse_or_none(text)
    if ref is None:
        return text
    if ref.tag is None and ref.digest is None:
        return str(ref.with_tag("latest"))
    return str(ref.with_digest(None)) if ref.tag is not None else str(ref)


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
