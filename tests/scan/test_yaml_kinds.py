"""The generic YAML kinds, each run through the whole scan on a small fixture tree.

Each tree is `tests/scan/fixtures/yaml/<kind>/`; the test asserts the whole JSON output
of `rehome scan <tree> --format json`: every reference with its exact line and column,
what is not a reference (left out), what is ignored and what is skipped.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.rules import load_rules

FIXTURES = Path(__file__).parent / "fixtures" / "yaml"

THIRD_PARTY = "third-party"
INTERNAL = "internal"
UNRESOLVED = "unresolved"


def ref(
    path: str, line: int, column: int, kind: str, raw: str, image: str | None, status: str, reason: str | None = None
) -> dict[str, Any]:
    return {
        "path": path, "line": line, "column": column, "kind": kind,
        "raw": raw, "image": image, "status": status, "reason": reason,
    }


def scan_json(directory: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["scan", str(directory), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


# workloads.yaml: every workload kind, init and ephemeral containers, a ConfigMap string
# and a Pod's status (neither listed). custom-resources.yaml: images in operators' specs;
# RBD volume images, Cluster API VM images, `status`, empty and number values are not.
# values.yaml: invalid values are unresolved with the reason, `ko://` is not listed, two
# `# rehome: ignore` comments. anchors.yaml: an anchor, an alias and merge keys report
# once, at the anchor's value. quoting.yaml: quoted, flow-style and tagged values, an
# anchored quoted value. crlf.yaml has CRLF line ends; bom.yaml starts with a BOM (not a
# column); broken.yaml is not valid YAML (skipped); not-kubernetes.yaml has no apiVersion.
# quoted-keys.yaml quotes its keys and json-style.yaml is JSON: both are read like any other.
KUBERNETES = {
    "version": 1,
    "references": [
        ref("anchors.yaml", 9, 19, "kubernetes", "busybox:1.36", "docker.io/library/busybox:1.36", THIRD_PARTY),
        ref("bom.yaml", 1, 90, "kubernetes", "nginx:1.25", "docker.io/library/nginx:1.25", THIRD_PARTY),
        ref("bom.yaml", 9, 14, "kubernetes", "redis:7", "docker.io/library/redis:7", THIRD_PARTY),
        ref("crlf.yaml", 8, 14, "kubernetes", "nginx:1.25", "docker.io/library/nginx:1.25", THIRD_PARTY),
        ref(
            "crlf.yaml",
            10,
            15,
            "kubernetes",
            "envoyproxy/envoy:v1.29",
            "docker.io/envoyproxy/envoy:v1.29",
            THIRD_PARTY,
        ),
        ref(
            "custom-resources.yaml",
            6,
            10,
            "kubernetes",
            "rabbitmq:3.13-management",
            "docker.io/library/rabbitmq:3.13-management",
            THIRD_PARTY,
        ),
        ref(
            "custom-resources.yaml",
            16,
            14,
            "kubernetes",
            "ghcr.io/cloudnative-pg/postgresql:16.2",
            "ghcr.io/cloudnative-pg/postgresql:16.2",
            THIRD_PARTY,
        ),
        ref(
            "custom-resources.yaml",
            26,
            14,
            "kubernetes",
            "oliver006/redis_exporter:v1.43.1",
            "docker.io/oliver006/redis_exporter:v1.43.1",
            THIRD_PARTY,
        ),
        ref(
            "custom-resources.yaml",
            38,
            20,
            "kubernetes",
            "quay.io/kubevirt/cirros-container-disk-demo",
            "quay.io/kubevirt/cirros-container-disk-demo",
            THIRD_PARTY,
        ),
        ref("custom-resources.yaml", 51, 15, "kubernetes", "debian:12", "docker.io/library/debian:12", THIRD_PARTY),
        ref(
            "custom-resources.yaml",
            56,
            20,
            "kubernetes",
            "quay.io/acme/data-artifact:v1",
            "quay.io/acme/data-artifact:v1",
            THIRD_PARTY,
        ),
        ref("json-style.yaml", 2, 52, "kubernetes", "redis:7.2", "docker.io/library/redis:7.2", THIRD_PARTY),
        ref("quoted-keys.yaml", 8, 16, "kubernetes", "python:3.12", "docker.io/library/python:3.12", THIRD_PARTY),
        ref("quoting.yaml", 7, 15, "kubernetes", "nginx:1.25", "docker.io/library/nginx:1.25", THIRD_PARTY),
        ref("quoting.yaml", 9, 15, "kubernetes", "redis:7.2", "docker.io/library/redis:7.2", THIRD_PARTY),
        ref("quoting.yaml", 10, 28, "kubernetes", "quay.io/acme/flow:1", "quay.io/acme/flow:1", THIRD_PARTY),
        ref("quoting.yaml", 11, 46, "kubernetes", "alpine", "docker.io/library/alpine", THIRD_PARTY),
        ref("quoting.yaml", 14, 20, "kubernetes", "nginx:1.27", "docker.io/library/nginx:1.27", THIRD_PARTY),
        ref("quoting.yaml", 16, 23, "kubernetes", "quay.io/acme/debug:2", "quay.io/acme/debug:2", THIRD_PARTY),
        ref("quoting.yaml", 19, 9, "kubernetes", "quay.io/acme/next:3", "quay.io/acme/next:3", THIRD_PARTY),
        ref(
            "values.yaml",
            8,
            14,
            "kubernetes",
            "gcr.io/<<PROJECT>>/app:1.0",
            None,
            UNRESOLVED,
            "contains a placeholder: <<PROJECT>>",
        ),
        ref(
            "values.yaml",
            10,
            14,
            "kubernetes",
            "CONTAINER_REGISTRY/app",
            None,
            UNRESOLVED,
            "not a valid image reference: invalid reference 'CONTAINER_REGISTRY/app': "
            "repository name must be lowercase",
        ),
        ref(
            "values.yaml",
            12,
            14,
            "kubernetes",
            "${REGISTRY}/app:1.0",
            None,
            UNRESOLVED,
            "contains a variable: ${REGISTRY}",
        ),
        ref("workloads.yaml", 8, 14, "kubernetes", "busybox:1.36", "docker.io/library/busybox:1.36", THIRD_PARTY),
        ref("workloads.yaml", 11, 14, "kubernetes", "nginx:1.25.3", "docker.io/library/nginx:1.25.3", THIRD_PARTY),
        ref(
            "workloads.yaml",
            14,
            14,
            "kubernetes",
            "docker.io/library/alpine:3.19@sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b",
            "docker.io/library/alpine:3.19@sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b",
            THIRD_PARTY,
        ),
        ref("workloads.yaml", 25, 18, "kubernetes", "ghcr.io/acme/web:2.1", "ghcr.io/acme/web:2.1", THIRD_PARTY),
        ref("workloads.yaml", 27, 18, "kubernetes", "gcr.io/acme/proxy:1.0", "gcr.io/acme/proxy:1.0", INTERNAL),
        ref("workloads.yaml", 36, 30, "kubernetes", "postgres:16", "docker.io/library/postgres:16", THIRD_PARTY),
        ref(
            "workloads.yaml",
            46,
            18,
            "kubernetes",
            "quay.io/prometheus/node-exporter:v1.7.0",
            "quay.io/prometheus/node-exporter:v1.7.0",
            THIRD_PARTY,
        ),
        ref(
            "workloads.yaml",
            56,
            18,
            "kubernetes",
            "registry.k8s.io/pause:3.9",
            "registry.k8s.io/pause:3.9",
            THIRD_PARTY,
        ),
        ref(
            "workloads.yaml",
            66,
            18,
            "kubernetes",
            "us-docker.pkg.dev/acme/tools/migrate:5",
            "us-docker.pkg.dev/acme/tools/migrate:5",
            INTERNAL,
        ),
        ref(
            "workloads.yaml",
            79,
            22,
            "kubernetes",
            "python:3.12-slim",
            "docker.io/library/python:3.12-slim",
            THIRD_PARTY,
        ),
        ref("workloads.yaml", 97, 14, "kubernetes", "memcached:1.6", "docker.io/library/memcached:1.6", THIRD_PARTY),
    ],
    "ignored": 2,
    "skipped": [{"path": "broken.yaml", "reason": "not valid YAML: found unexpected end of stream (line 9, column 1)"}],
}

# Knative / Cloud Run services (v1, and the old v1alpha1 `runLatest` form) and a
# Configuration whose image is a parameter.
KNATIVE = {
    "version": 1,
    "references": [
        ref("configuration.yaml", 9, 19, "knative", "$(IMAGE)", None, UNRESOLVED, "contains a parameter: $(IMAGE)"),
        ref(
            "service.yaml",
            9,
            18,
            "knative",
            "ghcr.io/knative/helloworld-go:latest",
            "ghcr.io/knative/helloworld-go:latest",
            THIRD_PARTY,
        ),
        ref(
            "service.yaml",
            26,
            18,
            "knative",
            "us-docker.pkg.dev/cloudrun/container/hello",
            "us-docker.pkg.dev/cloudrun/container/hello",
            INTERNAL,
        ),
        ref(
            "service.yaml",
            28,
            18,
            "knative",
            "otel/opentelemetry-collector-contrib:0.98.0",
            "docker.io/otel/opentelemetry-collector-contrib:0.98.0",
            THIRD_PARTY,
        ),
        ref(
            "service.yaml",
            40,
            20,
            "knative",
            "gcr.io/knative-samples/helloworld-go",
            "gcr.io/knative-samples/helloworld-go",
            INTERNAL,
        ),
    ],
    "ignored": 0,
    "skipped": [],
}

# Services with `build:` name their build output (not listed, nor where another service runs it), a `build:` a merge
# key gives them too, or the service they extend, in the same file or another (extends/: a merge key and an extends
# chain there, two files deep; a loop across files and a file extending itself are listed as written, and so is a
# service whose file is missing, not YAML or without it, the reason saying so); a merge key reports the anchor's
# image once; `${VAR:-default}` is unresolved; a Swarm stack file is read; a file not named like a compose file is
# not, unless a compose file names it (extends/common-services.yml). The compose files of one folder are one project
# (overrides/, reverse/): a service another of them builds names its build output, as does a service that builds in
# the same file, whichever of them has the `image:` (a base file, an override, a `-f` overlay such as compose.prod.yaml);
# one that no file of its folder builds is listed (overrides/ `db` and `cache`, unbuilt/).
COMPOSE = {
    "version": 1,
    "references": [
        ref("compose.build.yaml", 21, 12, "compose", "redis:7", "docker.io/library/redis:7", THIRD_PARTY),
        # `extends` takes on the build of the service named in the same file or another one
        ref("compose.extends.yaml", 15, 12, "compose", "redis:7.4", "docker.io/library/redis:7.4", THIRD_PARTY,
            "extends redis of common.yml, which is missing"),
        ref("compose.extends.yaml", 18, 12, "compose", "ghcr.io/acme/loop:1", "ghcr.io/acme/loop:1", THIRD_PARTY),
        ref("compose.yaml", 2, 10, "compose", "redis:7.2-alpine", "docker.io/library/redis:7.2-alpine", THIRD_PARTY),
        ref(
            "compose.yaml",
            16,
            13,
            "compose",
            "rabbitmq:3-management",
            "docker.io/library/rabbitmq:3-management",
            THIRD_PARTY,
        ),
        ref(
            "compose.yaml",
            18,
            12,
            "compose",
            "${POSTGRES_IMAGE:-postgres:16}",
            None,
            UNRESOLVED,
            "contains a variable: ${POSTGRES_IMAGE:-postgres:16}",
        ),
        ref(
            "compose.yaml",
            20,
            13,
            "compose",
            "nginx@sha256:0a4e32efd1d4b6f0d6b9a3b4b2c5a7a1a5b1c4c0c6c8f2d3e4f5a6b7c8d9e0f1",
            "docker.io/library/nginx@sha256:0a4e32efd1d4b6f0d6b9a3b4b2c5a7a1a5b1c4c0c6c8f2d3e4f5a6b7c8d9e0f1",
            THIRD_PARTY,
        ),
        ref(
            "docker-compose.override.yml",
            3,
            12,
            "compose",
            "busybox:1.36",
            "docker.io/library/busybox:1.36",
            THIRD_PARTY,
        ),
        ref(
            "docker-stack.yml",
            4,
            12,
            "compose",
            "dockersamples/visualizer:stable",
            "docker.io/dockersamples/visualizer:stable",
            THIRD_PARTY,
        ),
        # the files services extend are compose files too, whatever their names
        ref("extends/common-services.yml", 8, 12, "compose", "nginx:1.27", "docker.io/library/nginx:1.27", THIRD_PARTY),
        ref("extends/compose.yaml", 9, 12, "compose", "nginx:1.27", "docker.io/library/nginx:1.27", THIRD_PARTY),
        ref("extends/compose.yaml", 15, 12, "compose", "ghcr.io/acme/ping:1", "ghcr.io/acme/ping:1", THIRD_PARTY),
        ref("extends/compose.yaml", 18, 12, "compose", "ghcr.io/acme/again:1", "ghcr.io/acme/again:1", THIRD_PARTY),
        ref("extends/compose.yaml", 21, 12, "compose", "ghcr.io/acme/gone:1", "ghcr.io/acme/gone:1", THIRD_PARTY,
            "extends web of extends/missing.yml, which is missing"),
        ref("extends/compose.yaml", 24, 12, "compose", "ghcr.io/acme/lost:1", "ghcr.io/acme/lost:1", THIRD_PARTY,
            "extends nowhere of extends/common-services.yml, which has no such service"),
        ref("extends/compose.yaml", 27, 12, "compose", "ghcr.io/acme/garbled:1", "ghcr.io/acme/garbled:1", THIRD_PARTY,
            "extends web of extends/not-yaml.yml, which cannot be read: not valid YAML: expected ',' or ']', but got "
            "'<stream end>' (line 2, column 1)"),
        # the compose files of a folder are merged by service name: a service one of them builds (its own `build:`, a
        # merge key's, or that of the service it extends) names its build output in the others, either way round
        ref("overrides/compose.override.yaml", 7, 12, "compose", "postgres:16", "docker.io/library/postgres:16",
            THIRD_PARTY),
        ref("overrides/compose.prod.yaml", 8, 12, "compose", "redis:7.4", "docker.io/library/redis:7.4", THIRD_PARTY),
        ref("reverse/docker-compose.yml", 5, 12, "compose", "redis:7", "docker.io/library/redis:7", THIRD_PARTY),
        # another folder is another project
        ref("unbuilt/compose.yaml", 3, 12, "compose", "ghcr.io/acme/site:3", "ghcr.io/acme/site:3", THIRD_PARTY),
    ],
    "ignored": 1,
    "skipped": [],
}

# `container:` as a string and as a map, a service as a string and as a map (`services.*.image`),
# `uses: docker://` (column after the prefix), a container action's `runs.image`; an action built
# from its Dockerfile and action inputs named `image` are not listed.
GITHUB_ACTIONS = {
    "version": 1,
    "references": [
        ref(
            ".github/workflows/ci.yml",
            6,
            16,
            "github-actions",
            "node:20-bookworm",
            "docker.io/library/node:20-bookworm",
            THIRD_PARTY,
        ),
        ref(
            ".github/workflows/ci.yml",
            9,
            24,
            "github-actions",
            "alpine:3.19",
            "docker.io/library/alpine:3.19",
            THIRD_PARTY,
        ),
        ref(
            ".github/workflows/ci.yml",
            12,
            25,
            "github-actions",
            "ghcr.io/acme/tool:1.2",
            "ghcr.io/acme/tool:1.2",
            THIRD_PARTY,
        ),
        ref(
            ".github/workflows/ci.yml",
            16,
            14,
            "github-actions",
            "python:3.12",
            "docker.io/library/python:3.12",
            THIRD_PARTY,
        ),
        ref(".github/workflows/ci.yml", 20, 16, "github-actions", "redis:7", "docker.io/library/redis:7", THIRD_PARTY),
        ref(
            ".github/workflows/ci.yml",
            23,
            16,
            "github-actions",
            "postgres:${{ matrix.pg }}",
            None,
            UNRESOLVED,
            "contains an expression: ${{ matrix.pg }}",
        ),
        ref(".github/workflows/services.yml", 7, 14, "github-actions", "mysql:8.4", "docker.io/library/mysql:8.4",
            THIRD_PARTY),
        ref(
            "actions/container/action.yml",
            5,
            19,
            "github-actions",
            "hadolint/hadolint:v2.12.0",
            "docker.io/hadolint/hadolint:v2.12.0",
            THIRD_PARTY,
        ),
    ],
    "ignored": 0,
    "skipped": [],
}

# `image` and `services` in string and `name:` forms, top level, `default:` and jobs, in an
# included file too; a top-level variable named `image` is not a job, but a variable anchored
# and used as a job's `image:` is found there, at its anchor.
GITLAB_CI = {
    "version": 1,
    "references": [
        ref(".gitlab-ci.yml", 1, 8, "gitlab-ci", "ruby:3.3", "docker.io/library/ruby:3.3", THIRD_PARTY),
        ref(".gitlab-ci.yml", 4, 5, "gitlab-ci", "postgres:16", "docker.io/library/postgres:16", THIRD_PARTY),
        ref(".gitlab-ci.yml", 5, 11, "gitlab-ci", "redis:7", "docker.io/library/redis:7", THIRD_PARTY),
        ref(".gitlab-ci.yml", 10, 11, "gitlab-ci", "node:20", "docker.io/library/node:20", THIRD_PARTY),
        ref(".gitlab-ci.yml", 19, 13, "gitlab-ci", "docker:24-dind", "docker.io/library/docker:24-dind", THIRD_PARTY),
        ref(
            ".gitlab-ci.yml",
            24,
            11,
            "gitlab-ci",
            "$CI_REGISTRY_IMAGE/deployer:latest",
            None,
            UNRESOLVED,
            "contains a variable: $CI_REGISTRY_IMAGE",
        ),
        ref(
            ".gitlab/ci/build.yml",
            2,
            11,
            "gitlab-ci",
            "gcr.io/kaniko-project/executor:v1.21.0-debug",
            "gcr.io/kaniko-project/executor:v1.21.0-debug",
            INTERNAL,
        ),
        ref(".gitlab/ci/variables.yml", 2, 18, "gitlab-ci", "python:3.12", "docker.io/library/python:3.12", THIRD_PARTY),
    ],
    "ignored": 0,
    "skipped": [],
}

# `steps[].name`, quoted and plain, in `cloudbuild.yaml` and `cloudbuild-*.yaml`; the
# top-level `images:` are build outputs.
CLOUDBUILD = {
    "version": 1,
    "references": [
        ref(
            "cloudbuild-release.yaml",
            2,
            10,
            "cloudbuild",
            "us-docker.pkg.dev/acme/tools/release:3",
            "us-docker.pkg.dev/acme/tools/release:3",
            INTERNAL,
        ),
        ref(
            "cloudbuild-release.yaml",
            3,
            9,
            "cloudbuild",
            "hashicorp/terraform:1.7",
            "docker.io/hashicorp/terraform:1.7",
            THIRD_PARTY,
        ),
        ref(
            "cloudbuild.yaml",
            2,
            11,
            "cloudbuild",
            "gcr.io/cloud-builders/docker",
            "gcr.io/cloud-builders/docker",
            INTERNAL,
        ),
        ref(
            "cloudbuild.yaml",
            4,
            12,
            "cloudbuild",
            "python:3.12-slim",
            "docker.io/library/python:3.12-slim",
            THIRD_PARTY,
        ),
        ref("cloudbuild.yaml", 6, 11, "cloudbuild", "$_DEPLOYER", None, UNRESOLVED, "contains a variable: $_DEPLOYER"),
        ref(
            "cloudbuild.yaml",
            9,
            11,
            "cloudbuild",
            "aquasec/trivy:0.50.0",
            "docker.io/aquasec/trivy:0.50.0",
            THIRD_PARTY,
        ),
    ],
    "ignored": 0,
    "skipped": [],
}

# steps, sidecars and stepTemplate of a Task, and an inline taskSpec of a Pipeline;
# `$(params.x)` is unresolved.
TEKTON = {
    "version": 1,
    "references": [
        ref("task.yaml", 10, 12, "tekton", "alpine:3.19", "docker.io/library/alpine:3.19", THIRD_PARTY),
        ref(
            "task.yaml",
            13,
            14,
            "tekton",
            "$(params.builder-image)",
            None,
            UNRESOLVED,
            "contains a parameter: $(params.builder-image)",
        ),
        ref("task.yaml", 15, 14, "tekton", "golang:1.22", "docker.io/library/golang:1.22", THIRD_PARTY),
        ref("task.yaml", 18, 14, "tekton", "docker:24-dind", "docker.io/library/docker:24-dind", THIRD_PARTY),
        ref("task.yaml", 30, 20, "tekton", "busybox:1.36", "docker.io/library/busybox:1.36", THIRD_PARTY),
    ],
    "ignored": 0,
    "skipped": [],
}

# container, script, containerSet, sidecars and initContainers of templates, a CronWorkflow;
# `{{inputs.parameters.x}}` is unresolved.
ARGO_WORKFLOWS = {
    "version": 1,
    "references": [
        ref(
            "workflow.yaml",
            10,
            16,
            "argo-workflows",
            "docker/whalesay:latest",
            "docker.io/docker/whalesay:latest",
            THIRD_PARTY,
        ),
        ref(
            "workflow.yaml",
            14,
            16,
            "argo-workflows",
            "python:3.12-alpine",
            "docker.io/library/python:3.12-alpine",
            THIRD_PARTY,
        ),
        ref("workflow.yaml", 20, 20, "argo-workflows", "alpine:3.19", "docker.io/library/alpine:3.19", THIRD_PARTY),
        ref(
            "workflow.yaml",
            23,
            17,
            "argo-workflows",
            "{{inputs.parameters.image}}",
            None,
            UNRESOLVED,
            "contains a template expression: {{inputs.parameters.image}}",
        ),
        ref("workflow.yaml", 26, 18, "argo-workflows", "nginx:1.25", "docker.io/library/nginx:1.25", THIRD_PARTY),
        ref("workflow.yaml", 29, 18, "argo-workflows", "busybox:1.36", "docker.io/library/busybox:1.36", THIRD_PARTY),
        ref("workflow.yaml", 42, 18, "argo-workflows", "quay.io/acme/report:2", "quay.io/acme/report:2", THIRD_PARTY),
    ],
    "ignored": 0,
    "skipped": [],
}

# Artifacts (also in profiles) are built by the project: neither they nor the manifests'
# uses of their names (with or without tag) are listed, nor is `ko://`.
SKAFFOLD = {
    "version": 1,
    "references": [
        ref("k8s/deployment.yaml", 16, 18, "kubernetes", "redis:7", "docker.io/library/redis:7", THIRD_PARTY),
    ],
    "ignored": 0,
    "skipped": [],
}

# Packages (`spec.package`) of Provider, Configuration and Function, and a revision's
# `spec.image`.
CROSSPLANE = {
    "version": 1,
    "references": [
        ref(
            "packages.yaml",
            6,
            12,
            "crossplane",
            "xpkg.upbound.io/upbound/provider-aws-s3:v1.1.0",
            "xpkg.upbound.io/upbound/provider-aws-s3:v1.1.0",
            THIRD_PARTY,
        ),
        ref(
            "packages.yaml",
            13,
            12,
            "crossplane",
            "xpkg.upbound.io/acme/platform:v0.3.0",
            "xpkg.upbound.io/acme/platform:v0.3.0",
            THIRD_PARTY,
        ),
        ref(
            "packages.yaml",
            20,
            12,
            "crossplane",
            "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform:v0.5.0",
            "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform:v0.5.0",
            THIRD_PARTY,
        ),
        ref(
            "packages.yaml",
            27,
            10,
            "crossplane",
            "xpkg.upbound.io/acme/platform:v0.3.0",
            "xpkg.upbound.io/acme/platform:v0.3.0",
            THIRD_PARTY,
        ),
    ],
    "ignored": 0,
    "skipped": [],
}


CASES = {
    "kubernetes": KUBERNETES,
    "knative": KNATIVE,
    "compose": COMPOSE,
    "github-actions": GITHUB_ACTIONS,
    "gitlab-ci": GITLAB_CI,
    "cloudbuild": CLOUDBUILD,
    "tekton": TEKTON,
    "argo-workflows": ARGO_WORKFLOWS,
    "skaffold": SKAFFOLD,
    "crossplane": CROSSPLANE,
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_yaml_kind_whole_output(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert scan_json(FIXTURES / kind, capsys) == CASES[kind]


def test_every_yaml_rule_has_a_fixture_tree() -> None:
    yaml_kinds = {rule.kind for rule in load_rules() if rule.extractor == "yaml"}
    assert yaml_kinds == set(CASES)
    for kind in yaml_kinds:
        assert any(p.is_file() for p in (FIXTURES / kind).rglob("*")), kind


def test_crlf_and_bom_fixtures_are_kept_byte_for_byte() -> None:
    assert b"\r\n" in (FIXTURES / "kubernetes" / "crlf.yaml").read_bytes()
    assert (FIXTURES / "kubernetes" / "bom.yaml").read_bytes().startswith(b"\xef\xbb\xbf")
