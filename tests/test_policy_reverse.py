from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.config import DEFAULT_MAPPING
from bot.imageref import ImageRef, parse
from bot.policy import MappingError, check_invertible, map_from_mirror, map_to_mirror

DEST = "us-docker.pkg.dev/acme/mirror"

TEMPLATES = (
    DEFAULT_MAPPING,
    "{destination}/mirror/{domain}/{path}",
    "{destination}/{domain}-cache/{path}",
    "{destination}-{domain}/{path}",
    "registry.internal.example:5000/{domain}/{path}",
)
DESTINATIONS = (DEST, "localhost:5000", "registry.example.com:443/team/mirror")

_component = st.from_regex(r"[a-z0-9]{1,6}([._-][a-z0-9]{1,6})?", fullmatch=True)
_domains = st.sampled_from((
    "docker.io", "quay.io", "ghcr.io", "mcr.microsoft.com", "registry.k8s.io", "public.ecr.aws",
    "localhost", "localhost:5000", "registry:5000", "my-registry.example.com:443", "10.0.0.1:5000",
))
_tags = st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digests = st.none() | st.from_regex(r"[0-9a-f]{64}", fullmatch=True).map(lambda h: f"sha256:{h}")


@st.composite
def upstreams(draw) -> ImageRef:
    components = draw(st.lists(_component, min_size=1, max_size=4))
    # Parse it as Docker would, so Hub names get their `library/` exactly as a scan reports them.
    text = f"{draw(_domains)}/{'/'.join(components)}"
    ref = parse(text)
    return ImageRef(ref.domain, ref.path, draw(_tags), draw(_digests))


@settings(max_examples=200, deadline=None)
@given(upstream=upstreams(), template=st.sampled_from(TEMPLATES), destination=st.sampled_from(DESTINATIONS))
def test_forward_then_reverse_is_the_identity(upstream, template, destination):
    try:
        mirror = map_to_mirror(upstream, destination, template)
    except MappingError:
        assume(False)  # a name over the length limit has no mirror name at all
    assert map_from_mirror(mirror, destination, template) == upstream


@pytest.mark.parametrize(("mirror", "upstream"), [
    (f"{DEST}/docker.io/library/nginx:1.27.4", "docker.io/library/nginx:1.27.4"),
    (f"{DEST}/registry__5000/team/app@sha256:{'a' * 64}", f"registry:5000/team/app@sha256:{'a' * 64}"),
    (f"{DEST}/quay.io/prometheus/node-exporter:v1.8.2@sha256:{'b' * 64}",
     f"quay.io/prometheus/node-exporter:v1.8.2@sha256:{'b' * 64}"),
    (f"{DEST}/localhost/app", "localhost/app"),
])
def test_map_from_mirror(mirror, upstream):
    assert str(map_from_mirror(parse(mirror), DEST, DEFAULT_MAPPING)) == upstream


@pytest.mark.parametrize(("mirror", "message"), [
    # not under the destination at all
    ("us-docker.pkg.dev/acme/apps/web:1",
     "us-docker.pkg.dev/acme/apps/web is not a mirror name that '{destination}/{domain}/{path}' gives under "
     f"{DEST}"),
    # `library` is no registry: the forward mapping never writes this name
    (f"{DEST}/library/nginx:1",
     f"{DEST}/library/nginx is not a mirror name that '{{destination}}/{{domain}}/{{path}}' gives under {DEST}"),
    # the domain with nothing after it
    (f"{DEST}/docker.io",
     f"{DEST}/docker.io is not a mirror name that '{{destination}}/{{domain}}/{{path}}' gives under {DEST}"),
])
def test_map_from_mirror_refuses_names_the_mapping_does_not_give(mirror, message):
    with pytest.raises(MappingError) as excinfo:
        map_from_mirror(parse(mirror), DEST, DEFAULT_MAPPING)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(("template", "message"), [
    ("{destination}/{path}",
     "mapping template '{destination}/{path}' has no {domain}: images with the same path on different registries "
     "(docker.io/x, quay.io/x) get the same mirror name, so the upstream cannot be recovered"),
    ("{destination}/{domain}{path}",
     "mapping template '{destination}/{domain}{path}' must have a '/' between {domain} and the next placeholder: "
     "without it the end of the registry name cannot be found"),
    ("{destination}/{domain}-{path}",
     "mapping template '{destination}/{domain}-{path}' must have a '/' between {domain} and the next placeholder: "
     "without it the end of the registry name cannot be found"),
    ("{destination}/{domain}/{path}/copy",
     "mapping template '{destination}/{domain}/{path}/copy' must end with {path}: "
     "text after the path cannot be told apart from it"),
    ("{destination}/{path}/{domain}",
     "mapping template '{destination}/{path}/{domain}' must end with {path}: "
     "text after the path cannot be told apart from it"),
    ("{domain}/{destination}/{path}",
     "mapping template '{domain}/{destination}/{path}' must not start with {domain}: the first part of a name is "
     "the registry it is pulled from, which must be the mirror's"),
    ("{destination}/{domain}/{domain}/{path}",
     "mapping template '{destination}/{domain}/{domain}/{path}' uses {domain} more than once, "
     "so it cannot be inverted"),
    ("{destination}/{domain}/{tag}/{path}",
     "mapping template '{destination}/{domain}/{tag}/{path}' uses unknown placeholder(s) {tag}; "
     "known: {destination}, {domain}, {path}"),
])
def test_check_invertible_refuses_with_the_reason(template, message):
    with pytest.raises(MappingError) as excinfo:
        check_invertible(template)
    assert str(excinfo.value) == message


def test_a_template_that_cannot_be_inverted_still_maps_forward():
    # plan, rewrite and mirror keep working with it; only the inversion is refused
    assert str(map_to_mirror(parse("nginx:1"), DEST, "{destination}/{path}")) == f"{DEST}/library/nginx:1"
    with pytest.raises(MappingError):
        map_from_mirror(parse(f"{DEST}/library/nginx:1"), DEST, "{destination}/{path}")


@pytest.mark.parametrize("template", TEMPLATES)
def test_check_invertible_accepts(template):
    check_invertible(template)
