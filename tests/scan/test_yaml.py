"""The generic YAML extractor: GitLab CI variables written in the expanded form, and `$$` (GitLab CI, Compose,
Cloud Build)."""
from __future__ import annotations

from tests.helpers import ref, scan_json, write_tree

# The image a variable holds is found where it is written: at the anchored value of the plain form
# (`DB: &db ...`) and at the `value:` of the expanded one, whose description and options are no
# images (an option such as `none` would read as one). `$$` is a `$` GitLab passes on as written.
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
            ref(".gitlab-ci.yml", 10, 7, "gitlab-ci", "${CACHE}", None, "unresolved", "contains a variable: ${CACHE}"),
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
