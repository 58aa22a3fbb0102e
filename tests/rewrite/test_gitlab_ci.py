"""GitLab CI: services keep the host names gitlab-runner gives them, and YAML anchors move with
every job that uses them."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.scan.yaml import gitlab_host_names, is_alias
from tests.helpers import run_cli, shared_anchor, write_tree

DEST = "us-docker.pkg.dev/acme/mirror"
MIRROR = f"{DEST}/docker.io/library"


def test_host_names_are_the_image_name_without_tag_digest_or_registry_port():
    digest = "sha256:" + "a" * 64
    assert {raw: gitlab_host_names(raw) for raw in (
        "redis:7", "bitnami/mysql:8.0", "registry.example.com:5000/group/postgres:11",
        f"localhost:5000/app@{digest}", "registry.example.com/tools/db:1",
    )} == {
        "redis:7": ["redis"],
        "bitnami/mysql:8.0": ["bitnami__mysql", "bitnami-mysql"],
        "registry.example.com:5000/group/postgres:11": ["registry.example.com__group__postgres",
                                                        "registry.example.com-group-postgres"],
        f"localhost:5000/app@{digest}": ["localhost__app", "localhost-app"],
        "registry.example.com/tools/db:1": ["registry.example.com__tools__db", "registry.example.com-tools-db"],
    }


MIXED_SERVICE_ANCHOR = ("the service is the YAML anchor &{}, also written or used where it is not an item of a "
                        "services list: it cannot become the name: and alias: mapping that keeps the service's host "
                        "names; change it by hand")


ONE_MOVED = ("FILE            REFERENCES\n--------------  ----------\n.gitlab-ci.yml  1\n"
             "1 file rewritten, 1 reference moved\n")
TWO_MOVED = ("FILE            REFERENCES\n--------------  ----------\n.gitlab-ci.yml  2\n"
             "1 file rewritten, 2 references moved\n")


def _only_one_moves(capsys, root: Path, before: str, raw: str, *unresolved: str) -> None:
    """Of `before` (the whole `.gitlab-ci.yml`), only `raw`, an image of docker.io/library, moves;
    the summary lists `unresolved`. A second rewrite changes nothing."""
    write_tree(root, {".gitlab-ci.yml": before})
    code, out, err = run_cli(capsys, "rewrite", str(root), "--to", DEST)
    assert (code, out, err) == (0, ONE_MOVED + "".join(f"unresolved: .gitlab-ci.yml:{u}\n" for u in unresolved), "")
    after = before.replace(raw, f"{MIRROR}/{raw}")
    assert (root / ".gitlab-ci.yml").read_text() == after
    run_cli(capsys, "rewrite", str(root), "--to", DEST)
    assert (root / ".gitlab-ci.yml").read_text() == after


def test_an_anchored_service_item_also_used_outside_a_services_list_stays_and_the_rest_of_the_file_moves(
        tmp_path, capsys):
    _only_one_moves(capsys, tmp_path, """\
image: ruby:3.3
services:
  - &mysql mysql:8
other:
  image: *mysql
""", "ruby:3.3", f"3:12: mysql:8: {MIXED_SERVICE_ANCHOR.format('mysql')}")


def test_an_image_anchored_in_a_variable_moves_with_the_variable(tmp_path, capsys):
    _only_one_moves(capsys, tmp_path, """\
variables:
  IMG: &img "python:3.12"
  TOOL: &tool golang:1.22
job: {image: *img, variables: {PY: *img}, script: [echo $IMG]}
build: {image: *tool, script: [*tool]}
""", "python:3.12", f"3:15: golang:1.22: {shared_anchor('tool', 5)}")


def test_a_reference_to_another_jobs_services_is_left_as_written(tmp_path, capsys):
    before = """\
.db:
  services: [postgres:16]
job:
  services: !reference [.db, services]
  script: [x]
"""
    write_tree(tmp_path, {".gitlab-ci.yml": before})
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST) == (0, ONE_MOVED, "")
    assert (tmp_path / ".gitlab-ci.yml").read_text() == before.replace(
        "[postgres:16]", f"[{{name: {MIRROR}/postgres:16, alias: postgres}}]")


def test_a_services_list_in_brackets_over_several_lines_gets_mappings_in_brackets(tmp_path, capsys):
    write_tree(tmp_path, {".gitlab-ci.yml": 'job:\n  services: [\n    redis:7,\n    "memcached:1.6"\n  ]\n'})
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST) == (0, (
        "FILE            REFERENCES\n--------------  ----------\n.gitlab-ci.yml  2\n"
        "1 file rewritten, 2 references moved\n"), "")
    assert (tmp_path / ".gitlab-ci.yml").read_text() == (
        f"job:\n  services: [\n    {{name: {MIRROR}/redis:7, alias: redis}},\n"
        f"    {{name: {MIRROR}/memcached:1.6, alias: memcached}}\n  ]\n")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_service_item_written_as_a_block_scalar_becomes_a_mapping_before_the_next_key(tmp_path, capsys, newline):
    before = "job:\n  services:\n    - >-\n      redis:7\n    - &db |-\n      postgres:16\n  script: [x]\n" \
             "other:\n  services: [*db]\n  script: [x]\n"
    write_tree(tmp_path, {".gitlab-ci.yml": before.replace("\n", newline)})
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST) == (0, TWO_MOVED, "")
    assert (tmp_path / ".gitlab-ci.yml").read_bytes().decode() == (
        f"job:\n  services:\n    - name: {MIRROR}/redis:7\n      alias: redis\n    - &db\n"
        f"      name: {MIRROR}/postgres:16\n      alias: postgres\n  script: [x]\n"
        "other:\n  services: [*db]\n  script: [x]\n").replace("\n", newline)


@pytest.mark.parametrize("item", [">\n      redis:7\n", "|+\n      redis:7\n\n"])
def test_a_service_item_written_as_a_block_scalar_keeping_its_final_newline_stays_and_says_why(tmp_path, capsys,
                                                                                             item):
    _only_one_moves(capsys, tmp_path, f"job:\n  image: ruby:3.3\n  services:\n    - {item}  script: [x]\n", "ruby:3.3",
                    "5:7: redis:7: the service is a block scalar that keeps its final newline (`>` or `|`): it cannot "
                    "become the name: and alias: mapping that keeps its host names; write it on the item's line, or "
                    "use `|-`/`>-`")


def test_a_service_in_a_merge_keys_brackets_gets_a_mapping_in_brackets(tmp_path, capsys):
    # YAML merges mappings only, but the string stands where the services item does.
    before = "job:\n  services:\n    - <<: [postgres:15, {alias: db}]\n"
    assert _rewritten(capsys, tmp_path, before, ONE_MOVED) == before.replace(
        "postgres:15", f"{{name: {MIRROR}/postgres:15, alias: postgres}}")


def _rewritten(capsys, root: Path, before: str, summary: str) -> str:
    """`.gitlab-ci.yml` after `rehome rewrite` of `before`, which prints `summary`; a second rewrite
    changes nothing."""
    write_tree(root, {".gitlab-ci.yml": before})
    assert run_cli(capsys, "rewrite", str(root), "--to", DEST) == (0, summary, "")
    after = (root / ".gitlab-ci.yml").read_text()
    run_cli(capsys, "rewrite", str(root), "--to", DEST)
    assert (root / ".gitlab-ci.yml").read_text() == after
    return after


def test_only_host_names_the_kubernetes_executor_accepts_become_aliases():
    # Its rule for an alias: a lowercase RFC 1123 host name, at most 253 characters.
    names = ["postgres", "bitnami-mysql", "bitnami__mysql", "acme-my_db", "Registry.example.com-db",
             "registry.example.com-group-postgres", "-db", "db-", "a" * 253, "a" * 254]
    assert [name for name in names if is_alias(name)] == [
        "postgres", "bitnami-mysql", "registry.example.com-group-postgres", "a" * 253]


def test_a_service_gets_the_host_name_with_dashes_not_the_one_with_underscores_unless_its_alias_has_it(
        tmp_path, capsys):
    summary = ("FILE            REFERENCES\n--------------  ----------\n.gitlab-ci.yml  2\n"
               "1 file rewritten, 2 references moved\n")
    before = "job:\n  services: [bitnami/mysql:8, {name: bitnami/redis:7, alias: bitnami__redis}]\n"
    assert _rewritten(capsys, tmp_path, before, summary) == (
        f"job:\n  services: [{{name: {DEST}/docker.io/bitnami/mysql:8, alias: bitnami-mysql}}, "
        f"{{name: {DEST}/docker.io/bitnami/redis:7, alias: \"bitnami__redis,bitnami-redis\"}}]\n")


def test_a_service_whose_host_names_no_alias_can_keep_stays_and_says_why(tmp_path, capsys):
    before = """\
job:
  image: ruby:3.3
  services:
    - acme/my_db:1
    - name: acme/db:1
      alias: db
  variables:
    DB_HOST: acme__db
"""
    write_tree(tmp_path, {".gitlab-ci.yml": before})
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, out, err) == (0, ONE_MOVED + (
        "unresolved: .gitlab-ci.yml:4:7: acme/my_db:1: no host name gitlab-runner gives the service (acme__my_db, "
        "acme-my_db) can be an alias (a lowercase RFC 1123 host name, as the Kubernetes executor requires): moved, "
        "jobs could no longer reach it by name; change it by hand\n"
        "unresolved: .gitlab-ci.yml:5:13: acme/db:1: the file uses the service's host name acme__db, which no alias "
        "can keep (not a lowercase RFC 1123 host name, as the Kubernetes executor requires); use acme-db instead, "
        "or change it by hand\n"), "")
    assert (tmp_path / ".gitlab-ci.yml").read_text() == before.replace("ruby:3.3", f"{MIRROR}/ruby:3.3")


def test_a_service_merged_from_an_anchored_mapping_gets_the_alias_in_each_mapping_that_merges_it(tmp_path, capsys):
    # A mapping's own alias hides the one it merges: the host name joins the alias each mapping reads.
    before = """\
.pg: &pg
  name: postgres:16
.cache: &cache {name: redis:7, alias: kv}
job:
  services:
    - <<: *pg
      alias: db
    - <<: *cache
      command: [--save, ""]
  script: [x]
other:
  services: [{<<: *pg}, {<<: *cache, alias: cache}, *cache]
  script: [x]
"""
    summary = ("FILE            REFERENCES\n--------------  ----------\n.gitlab-ci.yml  2\n"
               "1 file rewritten, 2 references moved\n")
    assert _rewritten(capsys, tmp_path, before, summary) == f"""\
.pg: &pg
  name: {MIRROR}/postgres:16
.cache: &cache {{name: {MIRROR}/redis:7, alias: "kv,redis"}}
job:
  services:
    - <<: *pg
      alias: db,postgres
    - <<: *cache
      alias: kv,redis
      command: [--save, ""]
  script: [x]
other:
  services: [{{<<: *pg, alias: postgres}}, {{<<: *cache, alias: "cache,redis"}}, *cache]
  script: [x]
"""


def test_a_service_anchored_in_a_variable_a_hidden_key_or_a_name_gets_its_alias_at_each_use(tmp_path, capsys):
    # The anchor stays a string (a variable, a key GitLab does not read, a name); each `*pg` item becomes a mapping.
    before = """\
.defs:
  svc: &pg postgres:16
variables:
  CACHE: &cache redis:7
db:
  services:
    - name: &my mysql:8
      alias: db
  script: [x]
job:
  services: [*pg, *cache, *my]
  script: [x]
other:
  services:
    - *cache  # shared
    - name: *pg
      alias: db
  script: [x]
"""
    summary = ("FILE            REFERENCES\n--------------  ----------\n.gitlab-ci.yml  3\n"
               "1 file rewritten, 3 references moved\n")
    assert _rewritten(capsys, tmp_path, before, summary) == f"""\
.defs:
  svc: &pg {MIRROR}/postgres:16
variables:
  CACHE: &cache {MIRROR}/redis:7
db:
  services:
    - name: &my {MIRROR}/mysql:8
      alias: db,mysql
  script: [x]
job:
  services: [{{name: *pg, alias: postgres}}, {{name: *cache, alias: redis}}, {{name: *my, alias: mysql}}]
  script: [x]
other:
  services:
    - name: *cache
      alias: redis  # shared
    - name: *pg
      alias: db,postgres
  script: [x]
"""


def test_a_service_image_anchored_in_a_variable_moves_with_its_alias_wherever_it_is_used(tmp_path, capsys):
    before = """\
variables:
  IMG: &img quay.io/acme/postgres:16
job:
  services: [{name: *img}]
  script: [x]
other:
  services: [*img]
  script: [x]
"""
    summary = ("FILE            REFERENCES\n--------------  ----------\n.gitlab-ci.yml  1\n"
               "1 file rewritten, 1 reference moved\n")
    assert _rewritten(capsys, tmp_path, before, summary) == f"""\
variables:
  IMG: &img {DEST}/quay.io/acme/postgres:16
job:
  services: [{{name: *img, alias: quay.io-acme-postgres}}]
  script: [x]
other:
  services: [{{name: *img, alias: quay.io-acme-postgres}}]
  script: [x]
"""


def test_a_service_named_by_a_variable_keeps_the_host_names_of_the_image_the_variable_holds(tmp_path, capsys):
    # The variable holds the mirror image after the move: gitlab-runner would derive other host names from it.
    before = """\
variables:
  IMG: &pg postgres:15
.pgsvc: &pgsvc {name: $IMG}
job:
  image: *pg
  services:
    - name: $IMG
    - ${IMG}
  script: [psql -h postgres]
other:
  services: [{name: $IMG}, "$IMG", *pgsvc]
  script: [x]
merged:
  services:
    - <<: *pgsvc
      alias: db
  script: [x]
"""
    assert _rewritten(capsys, tmp_path, before, ONE_MOVED) == f"""\
variables:
  IMG: &pg {MIRROR}/postgres:15
.pgsvc: &pgsvc {{name: $IMG, alias: postgres}}
job:
  image: *pg
  services:
    - name: $IMG
      alias: postgres
    - name: ${{IMG}}
      alias: postgres
  script: [psql -h postgres]
other:
  services: [{{name: $IMG, alias: postgres}}, {{name: "$IMG", alias: postgres}}, *pgsvc]
  script: [x]
merged:
  services:
    - <<: *pgsvc
      alias: db,postgres
  script: [x]
"""


VARIABLE_SERVICE = "the service at line 5 is named {}, which takes this image from the variable {}: "
NOT_ALONE = ("only a service named by the variable that holds the image, and by nothing else, can keep its host names; "
             "change it by hand")


@pytest.mark.parametrize(("variables", "services", "unresolved"), [
    pytest.param("IMG: &pg postgres:15", "[{name: $IMG:15}]", (
        "2:12: postgres:15: " + VARIABLE_SERVICE.format("$IMG:15", "IMG") + NOT_ALONE,
        "5:21: $IMG:15: contains a variable: $IMG"), id="not alone"),
    pytest.param("IMG: &pg postgres:15\n  PG: $IMG", "[$PG]", (
        "2:12: postgres:15: " + VARIABLE_SERVICE.format("$PG", "PG").replace("line 5", "line 6") + NOT_ALONE,
        "6:14: $PG: PG is given its value at line 3 with a variable in it: $IMG"), id="through another variable"),
    pytest.param("IMG: &pg postgres:15", "[$IMG]\n  variables: {IMG: 'mysql:8'}", (
        "2:12: postgres:15: the service at line 5 is named $IMG, and the file gives the variable IMG holding this "
        "image several values (lines 2, 6): which one the service reads depends on the job; change it by hand",
        "5:14: $IMG: IMG is given a value at lines 2, 6"), id="several values"),
    pytest.param("IMG: &pg postgres:15", '[$IMG]\n  parallel:\n    matrix:\n      - IMG: ["mysql:8", "mariadb:11"]', (
        "2:12: postgres:15: the service at line 5 is named $IMG, and the file gives the variable IMG holding this "
        "image several values (lines 2, 8): which one the service reads depends on the job; change it by hand",
        "5:14: $IMG: IMG is given its values at line 8 by parallel: matrix:, which runs the job once for each "
        "value it lists"),
        id="a matrix"),
    pytest.param("IMG: &pg acme/my_db:1", "[$IMG]", (
        "2:12: acme/my_db:1: " + VARIABLE_SERVICE.format("$IMG", "IMG") + "no host name gitlab-runner gives the "
        "service (acme__my_db, acme-my_db) can be an alias (a lowercase RFC 1123 host name, as the Kubernetes "
        "executor requires): moved, jobs could no longer reach it by name; change it by hand",), id="no alias"),
])
def test_a_service_named_by_a_variable_that_cannot_keep_its_host_names_keeps_the_image_and_says_why(
        tmp_path, capsys, variables: str, services: str, unresolved: tuple[str, ...]):
    before = f"variables:\n  {variables}\njob:\n  image: *pg\n  services: {services}\n  script: [x]\n"
    _only_one_moves(capsys, tmp_path, before + "build: {image: ruby:3.3}\n", "ruby:3.3", *unresolved)


def test_an_image_a_reference_names_where_an_image_or_a_variable_is_expected_moves_with_it(tmp_path, capsys):
    # GitLab puts the value `!reference` names where it is written: the job's image and IMG name the mirror image.
    before = """\
.base:
  image: python:3.12
job:
  image: !reference [.base, image]
  variables:
    IMG: !reference [.base, image]
  services: [$IMG]
  script: [x]
"""
    assert _rewritten(capsys, tmp_path, before, ONE_MOVED) == before.replace(
        "image: python", f"image: {MIRROR}/python").replace("[$IMG]", "[{name: $IMG, alias: python}]")


@pytest.mark.parametrize(("use", "reason"), [
    pytest.param("services:\n    - !reference [.defs, pg]",
                 "the !reference at line 8 makes it a service, whose host names (postgres) a rewrite cannot keep "
                 "there; change it by hand", id="a service"),
    pytest.param("services:\n    - name: !reference [.defs, pg]\n      alias: db",
                 "the !reference at line 8 makes it a service, whose host names (postgres) a rewrite cannot keep "
                 "there; change it by hand", id="a service's name"),
    pytest.param("script:\n    - !reference [.defs, pg]",
                 "the !reference at line 8 uses the value where no image is expected: moving it would change that "
                 "value too; change it by hand", id="a script line"),
])
def test_an_image_a_reference_names_where_it_would_change_meaning_stays_and_says_why(tmp_path, capsys, use: str,
                                                                                     reason: str):
    before = f"""\
.defs:
  pg: &pg postgres:15
job:
  image: *pg
  script: [x]
other:
  {use}
build: {{image: ruby:3.3}}
"""
    _only_one_moves(capsys, tmp_path, before, "ruby:3.3", f"2:11: postgres:15: {reason}")


@pytest.mark.parametrize(("before", "unresolved"), [
    pytest.param("""\
build:
  image:
    name: python:3.12
  script: [x]
svc:
  services:
    - !reference [build, image]
  script: [x]
""", "3:11: python:3.12: the !reference at line 7 makes it a service, whose host names (python) a rewrite cannot "
     "keep there; change it by hand", id="a job's image"),
    pytest.param("""\
svc:
  services: [!reference [.base, image]]
  script: [x]
.base:
  image: {name: "python:3.12", entrypoint: [""]}
job:
  image: !reference [.base, image]
  script: [x]
""", "5:18: python:3.12: the !reference at line 2 makes it a service, whose host names (python) a rewrite cannot "
     "keep there; change it by hand", id="a template's image, named first"),
    pytest.param("""\
build:
  image: &py
    name: python:3.12
  script: [x]
svc:
  services: [*py]
  script: [x]
""", "3:11: python:3.12: the service is the YAML anchor &py, an image's mapping: GitLab takes no alias: in an image, "
     "so the service cannot keep its host names (python); change it by hand", id="an anchored image"),
    pytest.param("""\
.base: &base {name: python:3.12}
build:
  image: {<<: *base}
  script: [x]
svc:
  services: [*base]
  script: [x]
""", "1:21: python:3.12: the service is the YAML anchor &base, an image's mapping: GitLab takes no alias: in an "
     "image, so the service cannot keep its host names (python); change it by hand", id="one an image merges"),
])
def test_an_image_mapping_also_used_as_a_service_stays_and_says_why(tmp_path, capsys, before: str, unresolved: str):
    # GitLab takes no `alias:` in an image: the mapping holding the name cannot keep the service's host names.
    _only_one_moves(capsys, tmp_path, before + "other: {image: ruby:3.3}\n", "ruby:3.3", unresolved)


@pytest.mark.parametrize(("service", "after", "unresolved"), [
    # A service's own variables are its container's environment: they do not give the name its value.
    pytest.param("- name: $IMG\n      variables: {IMG: mysql:8}",
                 "- name: $IMG\n      alias: postgres\n      variables: {IMG: mysql:8}", None, id="its own variables"),
    # `$$` is a `$` written out: the service is named `$IMG`, not by the variable.
    pytest.param("- $$IMG", "- $$IMG", "7:7: $$IMG: contains a literal $ (written $$, not a variable): $$IMG",
                 id="an escaped dollar"),
])
def test_a_service_name_the_variable_does_not_give_is_not_read_as_named_by_it(tmp_path, capsys, service: str,
                                                                               after: str, unresolved: str | None):
    before = f"""\
variables:
  IMG: &pg postgres:15
job:
  image: *pg
  script: [x]
  services:
    {service}
"""
    summary = ONE_MOVED + (f"unresolved: .gitlab-ci.yml:{unresolved}\n" if unresolved else "")
    assert _rewritten(capsys, tmp_path, before, summary) == before.replace(
        "postgres:15", f"{MIRROR}/postgres:15").replace(service, after)


@pytest.mark.parametrize(("variable", "at"), [
    pytest.param("IMG: &pg postgres:15", "3:12", id="plain"),
    pytest.param("IMG:\n    value: &pg postgres:15\n    description: the database", "4:16", id="expanded"),
])
def test_an_image_a_variable_gives_a_service_in_another_file_stays_and_says_why(tmp_path, capsys, variable: str,
                                                                                 at: str):
    # GitLab reads the included file with the variables of the file including it: moved, the service
    # named $IMG would no longer be reachable as postgres.
    files = {
        ".gitlab-ci.yml": f"""\
include: [.gitlab/ci/db.yml]
variables:
  {variable}
build:
  image: *pg
  script: [x]
lint: {{image: ruby:3.3}}
""",
        ".gitlab/ci/db.yml": "test:\n  services: [$IMG]\n  script: [psql -h postgres]\n",
    }
    write_tree(tmp_path, files)
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST) == (0, ONE_MOVED + (
        f"unresolved: .gitlab-ci.yml:{at}: postgres:15: the service at .gitlab/ci/db.yml:2 is named $IMG, which "
        "may take this image from the variable IMG: a rewrite keeps the host names of such a service (postgres) "
        "only in the file that gives the variable; change it by hand\n"
        "unresolved: .gitlab/ci/db.yml:2:14: $IMG: contains a variable: $IMG\n"), "")
    assert {path: (tmp_path / path).read_text() for path in files} == {
        **files, ".gitlab-ci.yml": files[".gitlab-ci.yml"].replace("ruby:3.3", f"{MIRROR}/ruby:3.3")}


def test_a_variable_in_the_expanded_form_moves_at_its_value_with_the_option_that_lists_it(tmp_path, capsys):
    # GitLab requires the value to be one of the `options:`. The other options are choices for a
    # pipeline run by hand, which `image: *cache` does not read: they stay as written.
    before = """\
variables:
  CACHE:
    description: The cache the tests run against
    value: &cache "redis:7"
    options: ["redis:7", 'redis:6.2', none]
test:
  image: *cache
  services:
    - ${CACHE}
    - $$CACHE
  script: [redis-cli -h redis ping]
"""
    summary = ONE_MOVED + ("unresolved: .gitlab-ci.yml:10:7: $$CACHE: contains a literal $ (written $$, not a "
                           "variable): $$CACHE\n")
    # Both "redis:7" scalars, the value and its option; the service named by the variable gets its alias.
    assert _rewritten(capsys, tmp_path, before, summary) == before.replace(
        '"redis:7"', f'"{MIRROR}/redis:7"').replace("- ${CACHE}", "- name: ${CACHE}\n      alias: redis")


def test_an_option_anchored_as_the_image_moves_with_the_value_it_equals(tmp_path, capsys):
    # `image: *cache` reads the option: moved alone, it would leave the value out of the options. The service
    # reads the value through `$CACHE`: both are references, moved together.
    before = """\
variables:
  CACHE:
    value: redis:7
    options: [&cache redis:7, redis:6.2]
test:
  image: *cache
  services: [$CACHE]
  script: [redis-cli -h redis ping]
"""
    assert _rewritten(capsys, tmp_path, before, TWO_MOVED) == before.replace(
        "value: redis:7", f"value: {MIRROR}/redis:7").replace("&cache redis:7", f"&cache {MIRROR}/redis:7").replace(
        "[$CACHE]", "[{name: $CACHE, alias: redis}]")


LITERAL_SERVICE = "unresolved: .gitlab-ci.yml:10:7: $LITERAL: LITERAL is given its value at line 5{}\n"


@pytest.mark.parametrize(("expand", "summary", "moved"), [
    # `$CACHE` in LITERAL's value stays `$CACHE`: the service named $LITERAL does not take the image.
    pytest.param("false", TWO_MOVED + LITERAL_SERVICE.format(" with expand: false"), ("redis:7", "ruby:3.3"),
                 id="not expanded"),
    pytest.param("true", ONE_MOVED + "unresolved: .gitlab-ci.yml:3:19: redis:7: "
                 + VARIABLE_SERVICE.format("$LITERAL", "LITERAL").replace("line 5", "line 10") + NOT_ALONE + "\n"
                 + LITERAL_SERVICE.format(" with a variable in it: $CACHE"), ("ruby:3.3",), id="expanded"),
])
def test_a_variable_not_expanded_does_not_give_a_service_the_image_of_the_variable_its_value_names(
        tmp_path, capsys, expand: str, summary: str, moved: tuple[str, ...]):
    before = f"""\
variables:
  CACHE:
    value: &cache redis:7
  LITERAL:
    value: $CACHE
    expand: {expand}
test:
  image: *cache
  services:
    - $LITERAL
  script: [x]
build: {{image: ruby:3.3}}
"""
    after = before
    for raw in moved:
        after = after.replace(raw, f"{MIRROR}/{raw}")
    assert _rewritten(capsys, tmp_path, before, summary) == after


def test_an_image_named_by_a_variable_alone_moves_at_the_value_the_file_gives_the_variable(tmp_path, capsys):
    # A service named by the variable keeps the host name gitlab-runner derived from the value before.
    before = """\
variables:
  IMG: redis:7
build:
  image: ${IMG}
  variables:
    TOOL: {value: "golang:1.22", options: ["golang:1.22", "golang:1.21"]}
  services: [$TOOL]
  script: [go build]
test:
  image: $IMG
  services:
    - $IMG
  script: [redis-cli -h redis ping]
"""
    assert _rewritten(capsys, tmp_path, before, TWO_MOVED) == f"""\
variables:
  IMG: {MIRROR}/redis:7
build:
  image: ${{IMG}}
  variables:
    TOOL: {{value: "{MIRROR}/golang:1.22", options: ["{MIRROR}/golang:1.22", "golang:1.21"]}}
  services: [{{name: $TOOL, alias: golang}}]
  script: [go build]
test:
  image: $IMG
  services:
    - name: $IMG
      alias: redis
  script: [redis-cli -h redis ping]
"""


@pytest.mark.parametrize(("use", "unresolved"), [
    pytest.param("script: [echo $IMG]", "the variable IMG is also used at line 5", id="a script line"),
    pytest.param("rules: [{if: '$IMG =~ /redis/'}]", "the variable IMG is also used at line 5", id="a rule"),
    pytest.param("variables: {CACHE: $IMG}", "the variable IMG is also used at line 5", id="another variable"),
    pytest.param("variables: {IMG: mysql:8}", "IMG is given a value at lines 2, 5", id="a job redefines it"),
    pytest.param("parallel: {matrix: [{IMG: mysql:8}]}", "IMG is given its values at line 5 by parallel: matrix:, "
                 "which runs the job once for each value it lists", id="a matrix"),
    pytest.param("script: [echo %IMG%]", "the variable IMG is also used at line 5", id="a Windows batch script"),
    pytest.param("script: ['echo $env:img']", "the variable IMG is also used at line 5", id="a PowerShell script"),
    pytest.param("script: [printenv IMG]", "the variable IMG is also used at line 5", id="a script naming it"),
    pytest.param("variables: {COPY: !reference [variables, IMG]}", "the variable IMG is also used at line 5",
                 id="a reference to it"),
    pytest.param("inherit: {variables: false}", "the job job does not inherit IMG from the file's variables: "
                 "(inherit: at line 5)", id="not inherited"),
    pytest.param("inherit: {variables: [CI_DEBUG]}", "the job job does not inherit IMG from the file's variables: "
                 "(inherit: at line 5)", id="not in the inherited ones"),
])
def test_an_image_named_by_a_variable_the_file_uses_or_gives_elsewhere_stays_and_says_why(tmp_path, capsys, use: str,
                                                                                          unresolved: str):
    before = f"variables:\n  IMG: redis:7\njob:\n  image: $IMG\n  {use}\nbuild: {{image: ruby:3.3}}\n"
    _only_one_moves(capsys, tmp_path, before, "ruby:3.3", f"4:10: $IMG: {unresolved}")


USED_OUTSIDE_JOB = ("2:10: $IMG: IMG is given its value at line 3 in the variables: of job, whose content is also "
                    "used outside it (line 5)")


@pytest.mark.parametrize(("before", "unresolved"), [
    pytest.param("include: [.gitlab/ci/db.yml]\nvariables:\n  IMG: redis:7\njob:\n  services: [$IMG]\n",
                 "5:14: $IMG: the file includes other files (line 1), which may give IMG a value or use it",
                 id="an include"),
    pytest.param("job:\n  image: $IMG\n  variables: {IMG: &img redis:7}\nother:\n  variables: {CACHE: *img}\n",
                 USED_OUTSIDE_JOB, id="the job's anchor used outside it"),
    pytest.param("job:\n  image: $IMG\n  variables: {IMG: redis:7}\nother:\n  image: !reference [job, image]\n",
                 USED_OUTSIDE_JOB, id="a reference to the job"),
    pytest.param("variables:\n  IMG: redis:7\njob:\n  image: $IMG\nother:\n  trigger: acme/deploy\n",
                 "4:10: $IMG: the job other at line 5 triggers another pipeline, and passes it IMG, which may use it",
                 id="a trigger job"),
    pytest.param("job:\n  image: $IMG\n  variables: {IMG: redis:7}\nother:\n  extends: job\n  trigger: acme/deploy\n",
                 "2:10: $IMG: the job other at line 4 triggers another pipeline, and passes it IMG, which may use it",
                 id="a trigger job extending the job"),
    pytest.param("spec:\n  inputs:\n    tag: {default: $IMG}\n---\nvariables:\n  IMG: redis:7\njob:\n  image: $IMG\n",
                 "8:10: $IMG: the file has another YAML document at line 1, which may use IMG", id="a spec header"),
    pytest.param("variables:\n  IMG: redis:7\njob:\n  image: $IMG\n---\nother:\n  script: [echo $IMG]\n",
                 "4:10: $IMG: the file has another YAML document at line 6, which may use IMG",
                 id="another document"),
])
def test_an_image_named_by_a_variable_a_job_may_read_elsewhere_stays_and_says_why(tmp_path, capsys, before: str,
                                                                                  unresolved: str):
    _only_one_moves(capsys, tmp_path, before + "build: {image: ruby:3.3}\n", "ruby:3.3", unresolved)


def test_an_image_named_by_a_variable_in_a_file_others_include_stays_and_says_why(tmp_path, capsys):
    # The project's .gitlab-ci.yml uses IMG in a script: the file giving it its value cannot tell.
    jobs = "variables:\n  IMG: redis:7\nbuild:\n  image: $IMG\n"
    files = {".gitlab-ci.yml": "include: [.gitlab/ci/build.yml]\ntest:\n  script: [echo $IMG]\n",
             ".gitlab/ci/build.yml": jobs}
    write_tree(tmp_path, files)
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST) == (0, (
        "0 files rewritten, 0 references moved\n"
        "unresolved: .gitlab/ci/build.yml:4:10: $IMG: .gitlab/ci/build.yml is not a project's top .gitlab-ci.yml: "
        "a file including it may give IMG a value or use it\n"), "")
    assert (tmp_path / ".gitlab/ci/build.yml").read_text() == jobs


def test_a_variable_written_as_a_block_scalar_without_its_final_newline_moves(tmp_path, capsys):
    before = "variables:\n  IMG: |-\n    redis:7\n  DB: >-\n    postgres:16\njob: {image: $IMG, services: [$DB]}\n"
    assert _rewritten(capsys, tmp_path, before, TWO_MOVED) == before.replace(
        "redis:7", f"{MIRROR}/redis:7").replace("postgres:16", f"{MIRROR}/postgres:16").replace(
        "[$DB]", "[{name: $DB, alias: postgres}]")  # the service keeps the host name it had
