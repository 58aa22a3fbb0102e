"""The generic YAML extractor: GitLab CI variables written in the expanded form, and `$$` (GitLab CI, Compose,
Cloud Build)."""
from __future__ import annotations

from bot.policy import DEFAULT_INTERNAL, Policy
from bot.rules import load_rules
from bot.scan import yaml
from bot.scan.base import Extraction, FileContext
from bot.scan.core import ScanOptions, scan
from bot.scan.files import DiskTree, GitTree
from tests.helpers import committed, ref, scan_json, write_tree

# The image a variable holds is found where it is written: at the anchored value of the plain form
# (`DB: &db ...`) and at the `value:` of the expanded one, whose description and options are no
# images (an option such as `none` would read as one); `${CACHE}` names that value too: it is not listed again.
# `$$` is a `$` GitLab passes on as written.
EXPANDED_VARIABLE = """\
variables:
  CACHE:
    value: &cache "redis:7"
    description: The cache the tests run against
    options: ["redis:7", "redis:6.2", none]
  DB: &db postgres:16
test:
  image: *cache
  services:
    - ${CACHE}
    - *db
    - $$CACHE
  script: [redis-cli -h redis ping]
deploy:
  image: $$REGISTRY/$CACHE
  script: [x]
"""


def test_a_gitlab_variable_in_the_expanded_form_is_found_at_its_value_and_a_literal_dollar_is_said(tmp_path,
                                                                                                    capsys):
    write_tree(tmp_path, {".gitlab-ci.yml": EXPANDED_VARIABLE})
    assert scan_json(capsys, tmp_path) == {
        "version": 1,
        "references": [
            ref(".gitlab-ci.yml", 3, 20, "gitlab-ci", "redis:7", "docker.io/library/redis:7"),
            ref(".gitlab-ci.yml", 6, 11, "gitlab-ci", "postgres:16", "docker.io/library/postgres:16"),
            ref(".gitlab-ci.yml", 12, 7, "gitlab-ci", "$$CACHE", None, "unresolved",
                "contains a literal $ (written $$, not a variable): $$CACHE"),
            ref(".gitlab-ci.yml", 15, 10, "gitlab-ci", "$$REGISTRY/$CACHE", None, "unresolved",
                "contains a variable: $CACHE"),
        ],
        "ignored": 0,
        "skipped": [],
    }


LITERAL = "contains a literal $ (written $$, not a variable): "


def test_a_literal_dollar_in_compose_and_cloud_build_is_said_to_be_one_not_a_variable(tmp_path, capsys):
    # Compose reads `$$` as a `$`; in Cloud Build it escapes a substitution.
    write_tree(tmp_path, {
        "compose.yaml": """\
services:
  web: {image: $$IMG}
  db: {image: "$${REGISTRY}/postgres:16"}
  cache: {image: redis:$$7}
  app: {image: $$REGISTRY/$APP}
  api: {image: $$$API}
""",
        "cloudbuild.yaml": "steps:\n  - name: $$IMG\n  - name: $${_REGISTRY}/builder\n  - name: $_DEPLOYER\n",
    })
    assert scan_json(capsys, tmp_path) == {
        "version": 1,
        "references": [
            ref("cloudbuild.yaml", 2, 11, "cloudbuild", "$$IMG", None, "unresolved", LITERAL + "$$IMG"),
            ref("cloudbuild.yaml", 3, 11, "cloudbuild", "$${_REGISTRY}/builder", None, "unresolved",
                LITERAL + "$${_REGISTRY}"),
            ref("cloudbuild.yaml", 4, 11, "cloudbuild", "$_DEPLOYER", None, "unresolved",
                "contains a variable: $_DEPLOYER"),
            ref("compose.yaml", 2, 16, "compose", "$$IMG", None, "unresolved", LITERAL + "$$IMG"),
            ref("compose.yaml", 3, 16, "compose", "$${REGISTRY}/postgres:16", None, "unresolved",
                LITERAL + "$${REGISTRY}"),
            ref("compose.yaml", 4, 18, "compose", "redis:$$7", None, "unresolved", LITERAL + "$$7"),
            ref("compose.yaml", 5, 16, "compose", "$$REGISTRY/$APP", None, "unresolved", "contains a variable: $APP"),
            ref("compose.yaml", 6, 16, "compose", "$$$API", None, "unresolved", "contains a variable: $API"),
        ],
        "ignored": 0,
        "skipped": [],
    }


# An image or service named by a variable alone is found at the value the file gives the variable, once, in its
# `variables:` or in those of the job it is in; every other case says why it stays as written.
VARIABLE_IMAGES = """\
variables:
  IMG: redis:7
  PG: "postgres:16"
  TWICE: mysql:8
  USED: nginx:1.27
  TOOLS: $CI_REGISTRY/tools:1
  ANCHORED: &tools alpine:3.20
build:
  image: $IMG
  services: [$PG, {name: "${PG}", alias: db}, $OWN]
  variables:
    TWICE: mariadb:11
    OWN: {value: golang:1.22, description: the compiler}
  script: [go build]
test:
  image: ${IMG}
  services: [$TWICE, $USED, $TOOLS, $ANCHORED, $OWN, $MATRIX, $UNSET]
  parallel:
    matrix:
      - MATRIX: [memcached:1.6]
  script: [curl $USED, *tools]
"""


def test_a_gitlab_image_named_by_a_variable_alone_is_found_at_the_value_the_file_gives_it(tmp_path, capsys):
    write_tree(tmp_path, {".gitlab-ci.yml": VARIABLE_IMAGES,
                          ".gitlab/ci/jobs.yml": "include: [.gitlab/ci/more.yml]\nvariables: {IMG: redis:7}\n"
                                                 "job: {image: $IMG}\n"})

    def stays(column: int, raw: str, reason: str) -> dict:
        return ref(".gitlab-ci.yml", 17, column, "gitlab-ci", raw, None, "unresolved", reason)

    assert scan_json(capsys, tmp_path) == {
        "version": 1,
        "references": [
            ref(".gitlab-ci.yml", 2, 8, "gitlab-ci", "redis:7", "docker.io/library/redis:7", "third-party",
                "value of the variable IMG, used by the images at lines 9, 16"),
            ref(".gitlab-ci.yml", 3, 8, "gitlab-ci", "postgres:16", "docker.io/library/postgres:16", "third-party",
                "value of the variable PG, used by the image at line 10"),
            ref(".gitlab-ci.yml", 13, 18, "gitlab-ci", "golang:1.22", "docker.io/library/golang:1.22", "third-party",
                "value of the variable OWN, used by the image at line 10"),
            stays(14, "$TWICE", "TWICE is given a value at lines 4, 12"),
            stays(22, "$USED", "the variable USED is also used at line 21"),
            stays(29, "$TOOLS", "TOOLS is given its value at line 6 with a variable in it: $CI_REGISTRY/tools:1"),
            stays(37, "$ANCHORED", "ANCHORED is given its value at line 7 as the YAML anchor &tools, also used at "
                                   "line 21"),
            stays(48, "$OWN", "OWN is given its value at line 13 in the variables: of build, not of the job this image "
                              "is in"),
            stays(54, "$MATRIX", "MATRIX is given its values at line 20 by parallel: matrix:, which runs the job once "
                                 "for each value it lists"),
            stays(63, "$UNSET", "contains a variable: $UNSET"),
            ref(".gitlab/ci/jobs.yml", 3, 14, "gitlab-ci", "$IMG", None, "unresolved",
                "the file includes other files (line 1), which may give IMG a value or use it"),
        ],
        "ignored": 0,
        "skipped": [],
    }


BLOCK_SCALAR_NEWLINE = ("not a valid image reference: a block scalar keeps its final newline: write the value on the "
                        "key's line, or use `|-`/`>-`")


def test_a_gitlab_variable_written_as_a_block_scalar_keeping_its_final_newline_says_so(tmp_path, capsys):
    # `|` and `>` end the value in a newline; `|-` and `>-` strip it: those name the image.
    write_tree(tmp_path, {".gitlab-ci.yml": """\
variables:
  LITERAL: |
    redis:7
  FOLDED: >
    postgres:16
  STRIPPED: |-
    mysql:8
  FOLDED_STRIPPED: >-
    nginx:1.27
job:
  image: $LITERAL
  services: [$FOLDED, $STRIPPED, $FOLDED_STRIPPED]
  script: [x]
"""})
    found = [ref(".gitlab-ci.yml", line, 5, "gitlab-ci", raw, f"docker.io/library/{raw}", "third-party",
                 f"value of the variable {name}, used by the image at line 12")
             for line, raw, name in [(7, "mysql:8", "STRIPPED"), (9, "nginx:1.27", "FOLDED_STRIPPED")]]
    stay = [ref(".gitlab-ci.yml", line, column, "gitlab-ci", f"${name}", None, "unresolved",
                f"{name} is given its value at line {given}, which is {BLOCK_SCALAR_NEWLINE}")
            for line, column, name, given in [(11, 10, "LITERAL", 2), (12, 14, "FOLDED", 4)]]
    assert scan_json(capsys, tmp_path) == {"version": 1, "references": found + stay, "ignored": 0, "skipped": []}


COMPOSE_EXTENDING = """\
services:
  web:
    extends: {file: ../common/services.yml, service: web}
    image: ghcr.io/acme/web:1
  cache:
    extends: {file: ../common/services.yml, service: cache}
    image: redis:7
  proxy:
    extends: {file: ../../shared/services.yml, service: proxy}
    image: nginx:1.27
"""


def test_a_compose_service_extending_one_of_another_file_is_judged_by_that_file_in_the_commit_scanned(tmp_path):
    # A sweep scans a commit's objects: the file a service extends is read there, not from the folder; one
    # outside the scanned root is not read.
    root = write_tree(tmp_path / "repo", {
        "deploy/compose.yaml": COMPOSE_EXTENDING,
        "common/services.yml": "services:\n  web: {build: .}\n  cache: {image: redis:7}\n",
    })
    write_tree(tmp_path, {"shared/services.yml": "services:\n  proxy: {build: .}\n"})
    commit = committed(root)
    (root / "common/services.yml").write_text("services:\n  web: {image: ghcr.io/acme/web:0}\n")
    options = ScanOptions(rules=tuple(load_rules()), policy=Policy(DEFAULT_INTERNAL), jobs=1)
    assert scan(root, options, GitTree(root, commit)).to_json() == {
        "version": 1,
        "references": [
            # the file the services extend is scanned too, as the commit holds it
            ref("common/services.yml", 3, 18, "compose", "redis:7", "docker.io/library/redis:7"),
            ref("deploy/compose.yaml", 7, 12, "compose", "redis:7", "docker.io/library/redis:7"),
            ref("deploy/compose.yaml", 10, 12, "compose", "nginx:1.27", "docker.io/library/nginx:1.27", "third-party",
                "extends proxy of ../shared/services.yml, which is outside the scanned root"),
        ],
        "ignored": 0,
        "skipped": [],
    }


def test_a_compose_extends_chain_is_followed_into_32_files_at_most(tmp_path, capsys):
    # Each file's service extends the next file's; the last one builds. `shallow` reaches it in 32 files,
    # `deep` would need 33.
    chain = {f"chain/{n}.yml": f"services:\n  s:\n    extends: {{file: {n + 1}.yml, service: s}}\n"
             for n in range(1, 33)}
    write_tree(tmp_path, {
        "compose.yaml": """\
services:
  deep:
    extends: {file: chain/1.yml, service: s}
    image: ghcr.io/acme/deep:1
  shallow:
    extends: {file: chain/2.yml, service: s}
    image: ghcr.io/acme/shallow:1
""",
        **chain,
        "chain/33.yml": "services:\n  s: {build: .}\n",
    })
    assert scan_json(capsys, tmp_path) == {
        "version": 1,
        "references": [ref("compose.yaml", 4, 12, "compose", "ghcr.io/acme/deep:1", "ghcr.io/acme/deep:1",
                           "third-party", "extends through more than 32 files: the rest is not read")],
        "ignored": 0,
        "skipped": [],
    }


COMPOSE_NAMING_FILES = """\
x-base: &base
  extends: {file: ../shared/base.yml, service: base}
include:
  - infra/db.yml
  - path: infra/cache.yml
    project_directory: infra
  - path: [infra/queue.yml, "infra/queue.override.yml"]
    env_file: infra/.env
  - {path: 3}
services:
  web:
    <<: *base
  worker:
    extends: {file: common.yml, service: worker}
  api:
    extends: worker
"""


def test_a_compose_file_gives_the_files_it_includes_and_extends_as_written(tmp_path):
    # Include paths, alone or as a mapping's `path:` (one or a list), and the files services extend, a merge key's
    # included; not the project folder, the env file, a number, nor a service extended in the same file.
    compose = next(rule for rule in load_rules() if rule.kind == "compose")
    assert yaml.extract(COMPOSE_NAMING_FILES, compose, FileContext(DiskTree(tmp_path), "deploy/compose.yaml")) == (
        Extraction(found=[], builds=[], names_files=[
            "infra/db.yml", "infra/cache.yml", "infra/queue.yml", "infra/queue.override.yml", "../shared/base.yml",
            "common.yml",
        ]))


def test_a_compose_override_naming_a_service_the_base_file_builds_is_judged_in_the_commit_scanned(tmp_path):
    # A sweep scans a commit's objects: the files of the folder that build a service are read there.
    root = write_tree(tmp_path, {
        "deploy/compose.yaml": "services:\n  web:\n    build: .\n",
        "deploy/compose.override.yaml": "services:\n  web:\n    image: ghcr.io/acme/web-dev:1\n"
                                        "  cache:\n    image: redis:7\n",
    })
    commit = committed(root)
    (root / "deploy/compose.yaml").write_text("services:\n  web:\n    restart: always\n")
    options = ScanOptions(rules=tuple(load_rules()), policy=Policy(DEFAULT_INTERNAL), jobs=1)
    assert scan(root, options, GitTree(root, commit)).to_json() == {
        "version": 1,
        "references": [ref("deploy/compose.override.yaml", 5, 12, "compose", "redis:7", "docker.io/library/redis:7")],
        "ignored": 0,
        "skipped": [],
    }
