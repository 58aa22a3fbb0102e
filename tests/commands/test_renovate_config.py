from __future__ import annotations

import json

import pytest

from bot.commands.renovate_config import KNOWN_REGISTRIES
from tests.helpers import run_cli, write_tree

DEST = "us-docker.pkg.dev/acme/mirror"
SCHEMA = "https://docs.renovatebot.com/renovate-schema.json"


def test_aliases_for_the_registries_the_tree_mirrors(tmp_path, capsys):
    write_tree(tmp_path, {
        "Dockerfile": (
            f"FROM {DEST}/docker.io/library/python:3.12-slim\n"
            f"COPY --from={DEST}/registry__5000/tools/uv:0.4.18 /uv /bin/uv\n"
            f"FROM {DEST}/docker.io/library/nginx:1.27.4\n"
        ),
        "deploy/app.yaml": (
            "kind: Pod\napiVersion: v1\nspec:\n  containers:\n"
            f"    - {{name: a, image: {DEST}/quay.io/prometheus/node-exporter:v1.8.2}}\n"
            "    - {name: b, image: us-docker.pkg.dev/acme-prod/apps/web:2.4.1}\n"
            "    - {name: c, image: ghcr.io/acme/not-yet-mirrored:1}\n"
        ),
    })
    code, out, err = run_cli(capsys, "renovate-config", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "$schema": SCHEMA,
        "registryAliases": {
            f"{DEST}/docker.io": "docker.io",
            f"{DEST}/quay.io": "quay.io",
            f"{DEST}/registry__5000": "registry:5000",
        },
    }


def test_without_path_every_well_known_registry(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path, {
        "rehome.yaml": "destination: localhost:5000/m\nmapping: '{destination}/cache/{domain}/{path}'\n",
    })
    code, out, err = run_cli(capsys, "renovate-config")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "$schema": SCHEMA,
        "registryAliases": {f"localhost:5000/m/cache/{r}": r for r in sorted(KNOWN_REGISTRIES)},
    }
    assert "docker.io" in KNOWN_REGISTRIES and "quay.io" in KNOWN_REGISTRIES


def test_a_tree_without_mirror_references(tmp_path, capsys):
    write_tree(tmp_path, {"Dockerfile": "FROM nginx:1.27\n"})
    assert run_cli(capsys, "renovate-config", str(tmp_path), "--to", DEST) == (
        0, json.dumps({"$schema": SCHEMA, "registryAliases": {}}, indent=2) + "\n",
        f"no reference in {tmp_path} points into {DEST}\n")


def test_mirror_names_the_mapping_does_not_give_are_reported(tmp_path, capsys):
    write_tree(tmp_path, {"Dockerfile": f"FROM {DEST}/library/nginx:1.27\nFROM {DEST}/ghcr.io/acme/app:1\n"})
    code, out, err = run_cli(capsys, "renovate-config", str(tmp_path), "--to", DEST)
    assert (code, json.loads(out)["registryAliases"]) == (0, {f"{DEST}/ghcr.io": "ghcr.io"})
    assert err == (
        f"Dockerfile:1:6: {DEST}/library/nginx is not a mirror name that '{{destination}}/{{domain}}/{{path}}' "
        f"gives under {DEST}\n"
    )


@pytest.mark.parametrize(("mapping", "reason"), [
    ("{destination}/{path}",
     "mapping template '{destination}/{path}' has no {domain}: images with the same path on different registries "
     "(docker.io/x, quay.io/x) get the same mirror name, so the upstream cannot be recovered"),
    ("{destination}/{domain}/{path}-copy",
     "mapping template '{destination}/{domain}/{path}-copy' must end with {path}: "
     "text after the path cannot be told apart from it"),
    ("{destination}/{domain}/x-{path}",
     "mapping template '{destination}/{domain}/x-{path}' puts text before {path} in the same path component "
     f"({DEST}/docker.io/x-...): Renovate's registryAliases can only replace whole leading components"),
])
def test_a_template_that_cannot_be_inverted_is_refused(tmp_path, capsys, mapping, reason):
    assert run_cli(capsys, "renovate-config", "--to", DEST, "--mapping", mapping) == (
        2, "", f"rehome: error: cannot tell Renovate where mirror images come from: {reason}\n")


def test_a_destination_is_required(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "renovate-config") == (
        2, "", "rehome: error: no destination: give --to DEST or set `destination` in rehome.yaml\n")
