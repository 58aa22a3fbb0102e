from __future__ import annotations

import json

import pytest

from bot import imageref
from bot.imageref import ImageRef, InvalidReference


def _vectors(shared_dir):
    return json.loads((shared_dir / "vectors" / "reference.json").read_text())


def _is_sha512_exception(entry) -> bool:
    # The Go test binary does not register sha512; go-digest proper (and registries) accept it.
    return not entry["valid"] and entry["input"].split("@", 1)[-1].startswith("sha512:")


def test_parse_vectors(shared_dir):
    entries = _vectors(shared_dir)["parse"]
    assert len(entries) == 48
    failures = []
    checked = 0
    for entry in entries:
        if _is_sha512_exception(entry):
            assert imageref.parse_raw(entry["input"]).digest.startswith("sha512:")
            continue
        checked += 1
        try:
            ref = imageref.parse_raw(entry["input"])
        except InvalidReference as exc:
            if entry["valid"]:
                failures.append((entry["input"], f"rejected: {exc}"))
            continue
        if not entry["valid"]:
            failures.append((entry["input"], f"accepted as {ref!r}, expected {entry['error']}"))
            continue
        got = (ref.domain, ref.path, ref.tag, ref.digest, str(ref))
        want = (entry["domain"], entry["path"], entry["tag"], entry["digest"], entry["input"])
        if got != want:
            failures.append((entry["input"], f"{got} != {want}"))
    assert failures == []
    assert checked == 47


def test_normalize_vectors(shared_dir):
    entries = [e for e in _vectors(shared_dir)["normalize"] if e["func"] == "ParseNormalizedNamed"]
    assert len(entries) == 108
    failures = []
    for entry in entries:
        try:
            ref = imageref.parse(entry["input"])
        except InvalidReference as exc:
            if entry["valid"]:
                failures.append((entry["input"], f"rejected: {exc}"))
            continue
        if not entry["valid"]:
            failures.append((entry["input"], f"accepted as {ref!r}"))
            continue
        if (ref.domain, ref.path) != (entry["domain"], entry["path"]):
            failures.append((entry["input"], f"{ref.domain}/{ref.path} != {entry['domain']}/{entry['path']}"))
        if entry.get("full") and str(ref) != entry["full"]:
            failures.append((entry["input"], f"{ref} != {entry['full']}"))
        if entry.get("familiar") and ref.familiar != entry["familiar"]:
            failures.append((entry["input"], f"familiar {ref.familiar} != {entry['familiar']}"))
    assert failures == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ImageRef("docker.io", "library/nginx")),
        ("nginx:1.14.2", ImageRef("docker.io", "library/nginx", "1.14.2")),
        ("index.docker.io/library/nginx:1.14.2", ImageRef("docker.io", "library/nginx", "1.14.2")),
        ("docker.io/nginx", ImageRef("docker.io", "library/nginx")),
        ("bitnami/redis:7", ImageRef("docker.io", "bitnami/redis", "7")),
        ("localhost/app", ImageRef("localhost", "app")),
        ("localhost:5000/app:v1", ImageRef("localhost:5000", "app", "v1")),
        ("[::1]:5000/app", ImageRef("[::1]:5000", "app")),
        ("quay.io/prometheus/node-exporter:v1.8.2", ImageRef("quay.io", "prometheus/node-exporter", "v1.8.2")),
        (
            "gcr.io/distroless/static:nonroot@sha256:" + "a" * 64,
            ImageRef("gcr.io", "distroless/static", "nonroot", "sha256:" + "a" * 64),
        ),
        ("busybox@sha512:" + "b" * 128, ImageRef("docker.io", "library/busybox", None, "sha512:" + "b" * 128)),
    ],
)
def test_parse_normalises_like_docker(text, expected):
    assert imageref.parse(text) == expected


def test_str_is_full_form_without_latest():
    assert str(imageref.parse("nginx")) == "docker.io/library/nginx"
    assert str(imageref.parse("nginx:1.27@sha256:" + "c" * 64)) == "docker.io/library/nginx:1.27@sha256:" + "c" * 64


@pytest.mark.parametrize("text", ["nginx", "nginx:1.27", "redis:7", "registry:5000", "localhost:5000/app",
                                  "registry.example.com/app:1", "library/nginx@sha256:" + "c" * 64])
def test_docker_hub_names_and_full_names_are_not_taken_for_hosts(text):
    imageref.check_not_host_alone(text)


@pytest.mark.parametrize(("text", "host"), [
    ("127.0.0.1:5000", "127.0.0.1:5000"),
    ("registry.example.com", "registry.example.com"),
    ("registry.example.com:v1", "registry.example.com"),
    ("localhost", "localhost"),
    ("localhost:5000", "localhost:5000"),
])
def test_a_registry_host_alone_is_refused(text, host):
    with pytest.raises(InvalidReference) as excinfo:
        imageref.check_not_host_alone(text)
    assert str(excinfo.value) == f"{host} names a registry but no repository; add a repository path, e.g. {host}/NAME"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty image reference"),
        ("Nginx:1", "invalid reference format: repository name (library/Nginx) must be lowercase"),
        ("nginx:-bad", "invalid reference format: tag '-bad' must start with a letter, a digit or '_'"),
        ("nginx:" + "a" * 129, "invalid reference format: tag '" + "a" * 40 + "…' is 129 characters long, more than 128"),
        ("nginx:1.0+b", "invalid reference format: tag '1.0+b' may hold only letters, digits, '_', '.' and '-'"),
        ("nginx:", "invalid reference format: the tag after ':' is empty"),
        ("docker.io/spack/rockylinux8:sha256:" + "c5" * 32,
         "invalid reference format: a digest follows '@', not ':' ('docker.io/spack/rockylinux8'@sha256:…)"),
        ("a..b", "invalid reference format: path component 'a..b' must be lowercase letters and digits, joined by one "
                 "'.', one or two '_', or dashes"),
        ("gcr.io/<<PROJECT>>/app", "invalid reference format: path component '<<PROJECT>>' must be lowercase letters "
                                   "and digits, joined by one '.', one or two '_', or dashes"),
        ("registry.example.com/app/", "invalid reference format: repository name 'registry.example.com/app/' has an "
                                      "empty path component (a '/' at the start or end, or two in a row)"),
        # said of the name as typed, not of Docker's `docker.io/library/` it would be read as
        ("docker.io/", "invalid reference format: repository name 'docker.io/' has an empty path component (a '/' at "
                       "the start or end, or two in a row)"),
        ("/app", "invalid reference format: repository name '/app' has an empty path component (a '/' at the start or "
                 "end, or two in a row)"),
        ("gcr.io/Project/app", "invalid reference format: repository name (Project/app) must be lowercase"),
        ("127.0.0.1:99999/app:1", "invalid reference format: registry port 99999 in '127.0.0.1:99999' is out of range: "
                                  "a port is 1 to 65535"),
        ("localhost:0/app", "invalid reference format: registry port 0 in 'localhost:0' is out of range: a port is 1 to "
                            "65535"),
        ("registry.example.com:http/app", "invalid reference format: the port of registry 'registry.example.com:http' "
                                          "must be a number"),
        ("my_registry.example.com/app", "invalid reference format: registry host 'my_registry.example.com' is not a "
                                        "host name or IP address"),
        ("nginx@sha256:zz", "invalid digest 'sha256:zz': 'z' is not a hex digit; sha256 needs 64 hex digits (0-9, a-f)"),
        ("nginx@sha256:abc", "invalid digest length: sha256 needs 64 hex digits, 'sha256:abc' has 3"),
        ("nginx:1@", "invalid reference format: the digest after '@' is empty"),
        ("nginx@md5:" + "a" * 32, "unsupported digest algorithm 'md5' in 'md5:" + "a" * 32 + "'"),
        ("nginx@sha256:" + "a" * 63 + "aa", "invalid digest length: sha256 needs 64 hex digits, 'sha256:" + "a" * 65 + "' has 65"),
        ("a" * 64, "invalid repository name (" + "a" * 64 + "), cannot specify 64-byte hexadecimal strings"),
    ],
)
def test_invalid_references_say_why(text, message):
    with pytest.raises(InvalidReference) as excinfo:
        imageref.parse(text)
    assert str(excinfo.value) == message
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("python:${PY}-slim", "python"),
        ("ghcr.io:443/a/b@${DIGEST}", "ghcr.io:443/a/b"),
        ("docker.io/${ORG}/app:1", "docker.io"),  # a name the variable would continue
        ("${REGISTRY}/app:1", ""),
    ],
)
def test_written_name(text, name):
    assert imageref.written_name(text) == name


def test_loopback_registries():
    loopback = ["localhost", "localhost:5000", "LOCALHOST:5000", "127.0.0.1", "127.0.0.1:5000", "127.1.2.3", "127.3.4.5:443", "[::1]",
                "[::1]:5000"]
    elsewhere = ["docker.io", "registry:5000", "10.0.0.1:5000", "[2001:db8::1]:5000", "localhost.example.com"]
    assert [d for d in loopback + elsewhere if imageref.on_loopback(d)] == loopback
