"""Before/after fixture trees: `rehome rewrite` must produce every after file byte for byte."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import folder_bytes, ref, run_cli, scan_json, write_tree

FIXTURES = Path(__file__).parent / "fixtures"
DEST = "us-docker.pkg.dev/acme/mirror"
# case → exit code (1: a file had to be left untouched)
CASES = {
    "yaml-styles": 0,
    "gitlab-services": 0,
    "gitlab-anchors": 0,
    "dockerfile": 0,
    "actions-compose": 0,
    "helm": 0,
    "compose-named-files": 0,
}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_fixture_case_is_listed():
    assert sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rewrite_gives_the_after_tree_byte_for_byte(case, tmp_path, capsys):
    work = tmp_path / case
    shutil.copytree(FIXTURES / case / "before", work)
    code, _, err = run_cli(capsys, "rewrite", str(work), "--to", DEST)
    assert code == CASES[case], err
    assert _files(work) == _files(FIXTURES / case / "after")
    # A second run finds nothing left to move and changes nothing.
    run_cli(capsys, "rewrite", str(work), "--to", DEST)
    assert _files(work) == _files(FIXTURES / case / "after")


def test_dry_run_prints_the_diff_and_writes_nothing(tmp_path, capsys):
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "dockerfile" / "before", work)
    code, out, _ = run_cli(capsys, "rewrite", str(work), "--to", DEST, "--dry-run")
    assert code == 0
    assert _files(work) == _files(FIXTURES / "dockerfile" / "before")
    assert out == (
        "--- a/Dockerfile\n"
        "+++ b/Dockerfile\n"
        "@@ -1,10 +1,10 @@\n"
        "-# syntax=docker/dockerfile:1.7\n"
        "-ARG BASE=python:3.12-slim\n"
        "+# syntax=us-docker.pkg.dev/acme/mirror/docker.io/docker/dockerfile:1.7\n"
        "+ARG BASE=us-docker.pkg.dev/acme/mirror/docker.io/library/python:3.12-slim\n"
        " ARG GO_VERSION=1.22\n"
        " ARG USED=alpine:3.20\n"
        "-FROM golang:${GO_VERSION}-alpine AS build\n"
        "-COPY --from=ghcr.io/acme/assets:1 /assets /assets\n"
        "-RUN --mount=type=cache,target=/root/.cache,from=busybox:1.36 \\\n"
        "+FROM us-docker.pkg.dev/acme/mirror/docker.io/library/golang:${GO_VERSION}-alpine AS build\n"
        "+COPY --from=us-docker.pkg.dev/acme/mirror/ghcr.io/acme/assets:1 /assets /assets\n"
        "+RUN --mount=type=cache,target=/root/.cache,from=us-docker.pkg.dev/acme/mirror/docker.io/library/busybox:1.36 \\\n"
        "     go build ./...\n"
        " \n"
        " FROM ${BASE}\n"
        "--- a/Dockerfile.crlf\n"
        "+++ b/Dockerfile.crlf\n"
        "@@ -1,2 +1,2 @@\n"
        "-FROM node:20\r\n"
        "+FROM us-docker.pkg.dev/acme/mirror/docker.io/library/node:20\r\n"
        " COPY . .\r\n"
        "--- a/Dockerfile.stages\n"
        "+++ b/Dockerfile.stages\n"
        "@@ -1,7 +1,7 @@\n"
        " # A stage named like an image used before it: later, that name is the stage.\n"
        "-FROM node AS first\n"
        "+FROM us-docker.pkg.dev/acme/mirror/docker.io/library/node AS first\n"
        " RUN echo hi\n"
        "-FROM python:3.12 AS node\n"
        "+FROM us-docker.pkg.dev/acme/mirror/docker.io/library/python:3.12 AS node\n"
        " RUN echo there\n"
        " FROM node\n"
        " COPY --from=node /a /b\n"
        "--- a/Dockerfile.used-elsewhere\n"
        "+++ b/Dockerfile.used-elsewhere\n"
        "@@ -1,4 +1,4 @@\n"
        " ARG IMG=alpine:3.20\n"
        " FROM ${IMG}\n"
        " RUN echo ${IMG}\n"
        "-FROM busybox:1.36\n"
        "+FROM us-docker.pkg.dev/acme/mirror/docker.io/library/busybox:1.36\n"
        "--- a/Dockerfile.variables\n"
        "+++ b/Dockerfile.variables\n"
        "@@ -1,6 +1,6 @@\n"
        " # The name comes from a variable: left as it is; the defaults of ${VAR:-image} move.\n"
        " ARG REG=docker.io\n"
        " FROM ${REG}/prometheus/prometheus:v2\n"
        "-FROM ${NOPE:-nginx:1.25}\n"
        "-COPY --from=${HELPER:-busybox:1.36} /bin/sh /sh\n"
        "-FROM alpine:3.19\n"
        "+FROM ${NOPE:-us-docker.pkg.dev/acme/mirror/docker.io/library/nginx:1.25}\n"
        "+COPY --from=${HELPER:-us-docker.pkg.dev/acme/mirror/docker.io/library/busybox:1.36} /bin/sh /sh\n"
        "+FROM us-docker.pkg.dev/acme/mirror/docker.io/library/alpine:3.19\n"
        # after the diff, the summary the real run prints, with what stays as written
        "FILE                       REFERENCES\n"
        "-------------------------  ----------\n"
        "Dockerfile                 5\n"
        "Dockerfile.crlf            1\n"
        "Dockerfile.stages          2\n"
        "Dockerfile.used-elsewhere  1\n"
        "Dockerfile.variables       3\n"
        "5 files would be rewritten, 12 references would move; nothing written\n"
        "unresolved: Dockerfile.used-elsewhere:1:9: alpine:3.20: ARG IMG holds the image and is also used outside "
        "FROM lines; change it by hand\n"
        "unresolved: Dockerfile.variables:3:6: ${REG}/prometheus/prometheus:v2: the image name comes from a "
        "variable: only a name written out can be rewritten; change it by hand\n"
    )


def test_file_mode_bits_are_kept(tmp_path, capsys):
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "yaml-styles" / "before", work)
    (work / "crlf.yaml").chmod(0o751)
    (work / "deploy.yaml").chmod(0o600)
    assert run_cli(capsys, "rewrite", str(work), "--to", DEST)[0] == 0
    assert (work / "crlf.yaml").stat().st_mode & 0o777 == 0o751
    assert (work / "deploy.yaml").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in work.iterdir()) == sorted(p.name for p in (FIXTURES / "yaml-styles" / "before").iterdir())


def test_compose_files_another_names_are_rewritten_and_scanned_again_with_the_mirror_names(tmp_path, capsys):
    # infra/ holds files named only by docker-compose.yml (`include:`, `extends: {file: ...}`).
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "compose-named-files" / "before", work)
    assert run_cli(capsys, "rewrite", str(work), "--to", DEST)[0] == 0
    assert scan_json(capsys, work)["references"] == [
        ref("infra/common-services.yml", 6, 12, "compose", f"{DEST}/docker.io/library/nginx:1.27",
            f"{DEST}/docker.io/library/nginx:1.27", "internal"),
        ref("infra/db.yml", 3, 13, "compose", f"{DEST}/docker.io/library/postgres:16",
            f"{DEST}/docker.io/library/postgres:16", "internal"),
    ]


def test_a_symlinks_target_no_rule_selects_is_rewritten_and_the_link_stays_a_link(tmp_path, capsys):
    work = write_tree(tmp_path / "w", {"shared/db.yml": "services:\n  db:\n    image: postgres:16  # primary\n"})
    os.symlink("shared/db.yml", work / "docker-compose.yml")
    code, _, err = run_cli(capsys, "rewrite", str(work), "--to", DEST)
    assert code == 0, err
    assert folder_bytes(work) == {
        "docker-compose.yml": b"shared/db.yml",
        "shared": None,
        "shared/db.yml": f"services:\n  db:\n    image: {DEST}/docker.io/library/postgres:16  # primary\n".encode(),
    }
