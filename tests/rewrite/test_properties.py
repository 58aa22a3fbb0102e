"""Generated YAML documents and Dockerfiles: a rewrite changes only the image values, parses,
and a second rewrite changes nothing."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from bot.cli import main
from bot.imageref import parse
from bot.policy import map_to_mirror

DEST = "us-docker.pkg.dev/acme/mirror"
MAPPING = "{destination}/{domain}/{path}"

names = st.sampled_from(["nginx", "redis", "bitnami/redis", "quay.io/org/tool", "ghcr.io/a/b/c", "registry:5000/app"])
tags = st.one_of(st.none(), st.sampled_from(["1", "1.27-alpine", "v2.0.1", "latest"]))
digests = st.one_of(st.none(), st.just("sha256:" + "d" * 64))


@st.composite
def images(draw) -> str:
    text = draw(names)
    tag, digest = draw(tags), draw(digests)
    return text + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _quoted(draw, value: str) -> str:
    style = draw(st.sampled_from(["", "'", '"']))
    return f"{style}{value}{style}"


@st.composite
def pod_documents(draw) -> tuple[str, list[str]]:
    lines = ["apiVersion: v1", "kind: Pod", "metadata:", f"  name: p{draw(st.integers(0, 99))}"]
    written: list[str] = []
    if draw(st.booleans()):
        lines.append("  # a comment that says image: nginx:1")
    lines += ["spec:", "  containers:"]
    for i in range(draw(st.integers(1, 4))):
        image = draw(images())
        written.append(image)
        comment = draw(st.sampled_from(["", "  # pinned", " # rehome keeps this"]))
        if draw(st.booleans()):
            lines.append(f"    - {{name: c{i}, image: {_quoted(draw, image)}}}{comment}")
        else:
            lines += [f"    - name: c{i}", f"      image: {_quoted(draw, image)}{comment}"]
            lines.append(f"      args: [--image={image}]")  # not a reference: must stay
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    end = draw(st.sampled_from([newline, ""]))
    return newline.join(lines) + end, written


@st.composite
def dockerfiles(draw) -> tuple[str, list[str]]:
    lines, written = [], []
    for stage in range(draw(st.integers(1, 3))):
        image = draw(images())
        written.append(image)
        flag = draw(st.sampled_from(["", "--platform=$BUILDPLATFORM "]))
        lines.append(f"{draw(st.sampled_from(['FROM', 'from']))} {flag}{image} AS s{stage}")
        lines.append(f"RUN echo {image}")
        if stage and draw(st.booleans()):
            lines.append(f"COPY --from=s{stage - 1} /a /b")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + newline, written


def _rewrite(root: Path) -> int:
    return main(["rewrite", str(root), "--to", DEST, "-q"])


def _expected(image: str) -> str:
    return str(map_to_mirror(parse(image), DEST, MAPPING))


def _swap_images(data, mapping: dict[str, str]):
    if isinstance(data, dict):
        return {k: (mapping.get(v, v) if k == "image" else _swap_images(v, mapping)) for k, v in data.items()}
    if isinstance(data, list):
        return [_swap_images(v, mapping) for v in data]
    return data


settings_ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings_
@given(pod_documents())
def test_yaml_rewrite_changes_only_images_and_is_idempotent(document):
    text, written = document
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pod.yaml"
        path.write_bytes(text.encode())
        assert _rewrite(Path(tmp)) == 0
        new = path.read_bytes().decode()
        yaml = YAML(typ="safe", pure=True)
        assert yaml.load(new) == _swap_images(yaml.load(text), {w: _expected(w) for w in written})
        assert new.count("\r\n") == text.count("\r\n")
        assert new.endswith("\n") == text.endswith("\n")
        assert _rewrite(Path(tmp)) == 0
        assert path.read_bytes().decode() == new


@settings_
@given(dockerfiles())
def test_dockerfile_rewrite_changes_only_images_and_is_idempotent(dockerfile):
    text, written = dockerfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Dockerfile"
        path.write_bytes(text.encode())
        assert _rewrite(Path(tmp)) == 0
        new = path.read_bytes().decode()
        old_lines, new_lines = text.split("\n"), new.split("\n")
        assert len(old_lines) == len(new_lines)
        for old_line, new_line in zip(old_lines, new_lines):
            if old_line.lower().startswith("from "):
                image = old_line.split()[-3]
                assert new_line == old_line.replace(f" {image} ", f" {_expected(image)} ")
            else:
                assert new_line == old_line  # RUN echo <image> is not a reference
        assert _rewrite(Path(tmp)) == 0
        assert path.read_bytes().decode() == new
