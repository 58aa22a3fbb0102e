from __future__ import annotations

import json

import pytest

from bot import plan as plan_module
from bot.imageref import parse
from bot.policy import MappingError, check_template, map_to_mirror
from tests.helpers import ref, run_cli, shared_anchor, write_tree

DEST = "us-docker.pkg.dev/acme/mirror"


def test_plan_json_groups_moves_by_source(tmp_path, capsys):
    write_tree(tmp_path, {
        "a.yaml": """\
apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  containers:
    - {name: a, image: "nginx:1.27"}
    - {name: b, image: registry.example.com:5000/team/app@sha256:""" + "b" * 64 + """}
    - {name: c, image: "[::1]:5000/app:1"}
    - {name: d, image: "$(params.image)"}
    - {name: e, image: us-docker.pkg.dev/acme/mirror/docker.io/library/redis:7}
""",
        "Dockerfile": "FROM nginx:1.27\nFROM index.docker.io/library/nginx:1.27\n",
        "old/Dockerfile": b"FROM redis:7\nLABEL x=\xff\n",
    })
    code, out, err = run_cli(capsys, "plan", str(tmp_path), "--to", DEST, "--format", "json")
    assert code == 0, err
    assert json.loads(out) == {
        "version": 1,
        "destination": DEST,
        "pin_digest": False,
        "moves": [
            {
                "source": "docker.io/library/nginx:1.27",
                "target": f"{DEST}/docker.io/library/nginx:1.27",
                "occurrences": [
                    {"path": "Dockerfile", "line": 1, "column": 6},
                    {"path": "Dockerfile", "line": 2, "column": 6},
                    {"path": "a.yaml", "line": 6, "column": 25},
                ],
                "pulls": None,
                "repository_pulls": None,
            },
            {
                "source": "registry.example.com:5000/team/app@sha256:" + "b" * 64,
                "target": f"{DEST}/registry.example.com__5000/team/app@sha256:" + "b" * 64,
                "occurrences": [{"path": "a.yaml", "line": 7, "column": 24}],
                "pulls": None,
                "repository_pulls": None,
            },
        ],
        "unresolved": [
            ref("a.yaml", 8, 25, "kubernetes", "[::1]:5000/app:1", "[::1]:5000/app:1", "unresolved",
                "registry [::1]:5000 is an IPv6 literal, which has no reversible form in a repository path"),
            ref("a.yaml", 9, 25, "kubernetes", "$(params.image)", None, "unresolved", "contains a parameter: $(params.image)"),
        ],
        "covered": [],
        "skipped": [{"path": "old/Dockerfile", "reason": "not UTF-8 (byte 0xff at offset 21)"}],
    }


def test_destination_and_mapping_come_from_config_and_flags(tmp_path, capsys):
    write_tree(tmp_path, {
        "Dockerfile": "FROM quay.io/org/tool:1\n",
        "rehome.yaml": "destination: europe-docker.pkg.dev/acme/cache\nmapping: '{destination}/{path}'\npin_digest: true\n",
    })
    code, out, _ = run_cli(capsys, "plan", str(tmp_path), "--format", "json")
    plan = json.loads(out)
    assert (code, plan["destination"], plan["pin_digest"], plan["moves"][0]["target"]) == (
        0, "europe-docker.pkg.dev/acme/cache", True, "europe-docker.pkg.dev/acme/cache/org/tool:1")
    code, out, _ = run_cli(capsys, "plan", str(tmp_path), "--to", "localhost:5000/m", "--format", "json")
    assert json.loads(out)["moves"][0]["target"] == "localhost:5000/m/org/tool:1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no destination: give --to DEST or set `destination` in rehome.yaml"),
        (["--to", ""], "--to is empty: give the mirror prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY"),
        (["--to", "mirror"], "--to: destination 'mirror' must start with a registry host, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY"),
        (["--to", "gcr.io/acme:1"], "--to: destination 'gcr.io/acme:1' must be a registry path without tag or digest"),
        (["--to", "127.0.0.1:5000"], "--to: destination '127.0.0.1:5000' is not a registry path: 127.0.0.1:5000 names a registry but no repository; add a repository path, e.g. "
                                     "127.0.0.1:5000/NAME"),
        (["--to", "registry.example.com"], "--to: destination 'registry.example.com' is not a registry path: "
                                           "registry.example.com names a registry but no repository; add a repository path, e.g. registry.example.com/NAME"),
        (["--to", DEST, "--mapping", "{destination}/{registry}/{path}"],
         "mapping template '{destination}/{registry}/{path}' uses unknown placeholder(s) {registry}; known: {destination}, {domain}, {path}"),
        (["--to", DEST, "--mapping", "{destination}/{domain}"],
         "mapping template '{destination}/{domain}' must contain {path}, or every image would land on one name"),
    ],
)
def test_bad_destination_or_mapping_is_a_usage_error(tmp_path, capsys, argv, message):
    code, out, err = run_cli(capsys, "plan", str(tmp_path), *argv)
    assert (code, out, err) == (2, "", f"rehome: error: {message}\n")


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("nginx", f"{DEST}/docker.io/library/nginx"),
        ("nginx:1.27@sha256:" + "c" * 64, f"{DEST}/docker.io/library/nginx:1.27@sha256:" + "c" * 64),
        ("registry:5000/app", f"{DEST}/registry__5000/app"),
        ("localhost/app:1", f"{DEST}/localhost/app:1"),
        ("ghcr.io/acme/tools/cli:v2", f"{DEST}/ghcr.io/acme/tools/cli:v2"),
    ],
)
def test_default_mapping(source, target):
    assert str(map_to_mirror(parse(source), DEST, "{destination}/{domain}/{path}")) == target


def test_mapping_refuses_what_it_cannot_encode():
    with pytest.raises(MappingError, match="uppercase"):
        map_to_mirror(parse("Registry.example.com/app"), DEST, "{destination}/{domain}/{path}")
    with pytest.raises(MappingError, match="not a valid image name"):
        map_to_mirror(parse("nginx"), DEST, "{destination}/{domain}/{path}/" + "x" * 300)
    with pytest.raises(MappingError, match="malformed"):
        check_template("{destination/{path}")


def test_plan_shows_pull_counts_from_a_log_export(tmp_path, capsys):
    entries = [
        ("2026-11-20T10:00:00Z", "Pulling", 'Pulling image "nginx:1.27"'),
        ("2026-11-20T11:00:00Z", "Pulling", 'Pulling image "docker.io/library/nginx:1.27"'),
        ("2026-11-20T12:00:00Z", "Pulling", 'Pulling image "index.docker.io/library/nginx:1.25"'),
        ("2026-11-20T12:00:01Z", "Pulled", 'Successfully pulled image "nginx:1.27"'),
    ]
    export = tmp_path / "pulls.ndjson"
    export.write_text("".join(
        json.dumps({"timestamp": t, "jsonPayload": {"reason": r, "message": m},
                    "resource": {"type": "k8s_pod", "labels": {"cluster_name": "prod"}}}) + "\n"
        for t, r, m in entries
    ))
    write_tree(tmp_path / "repo", {"Dockerfile": "FROM nginx:1.27\nFROM redis:7\n"})
    code, out, err = run_cli(capsys, "plan", str(tmp_path / "repo"), "--to", DEST, "--pulls", str(export), "--format", "json")
    assert code == 0, err
    assert [(m["source"], m["pulls"], m["repository_pulls"]) for m in json.loads(out)["moves"]] == [
        ("docker.io/library/nginx:1.27", 2, 3),
        ("docker.io/library/redis:7", None, None),
    ]
    code, out, err = run_cli(capsys, "plan", str(tmp_path / "repo"), "--to", DEST, "--pulls", str(tmp_path / "nope"))
    assert (code, err) == (2, f"rehome: error: --pulls: {tmp_path / 'nope'}: no such file\n")
    code, out, err = run_cli(capsys, "plan", str(tmp_path / "repo"), "--to", DEST, "--pulls", "bigquery://Acme.logs")
    assert (code, err) == (2, "rehome: error: --pulls: bigquery://Acme.logs: project 'Acme': not a project ID (6 to 30 "
                              "lowercase letters, digits and hyphens, starting with a letter; for example acme-prod)\n")


def test_plan_says_which_pull_count_entries_it_skipped(tmp_path, capsys):
    pulls = tmp_path / "pulls.csv"
    pulls.write_text("imageName,numberOfPulls\nnginx:1.27,5\nredis:7,lots\n")
    write_tree(tmp_path / "repo", {"Dockerfile": "FROM nginx:1.27\n"})
    code, out, err = run_cli(capsys, "plan", str(tmp_path / "repo"), "--to", DEST, "--pulls", str(pulls),
                             "--format", "json")
    assert (code, err) == (0, "pulls.csv (CSV of the guide's query (imageName,numberOfPulls)): "
                              "malformed entries skipped: 1 (at 3)\n")
    assert [(m["source"], m["pulls"]) for m in json.loads(out)["moves"]] == [("docker.io/library/nginx:1.27", 5)]


def test_a_mapping_that_gives_two_images_one_mirror_name_moves_neither(tmp_path, capsys):
    write_tree(tmp_path, {
        "rehome.yaml": "mapping: '{destination}/{path}'\n",
        "pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
                    "    - {name: a, image: redis:7}\n    - {name: b, image: quay.io/library/redis:7}\n"
                    "    - {name: c, image: nginx:1.27}\n",
    })
    code, out, err = run_cli(capsys, "plan", str(tmp_path), "--to", DEST, "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert [(m["source"], m["target"]) for m in plan["moves"]] == [
        ("docker.io/library/nginx:1.27", f"{DEST}/library/nginx:1.27")]
    why = ("the mapping gives {} and {} one mirror name, " + DEST + "/library/redis:7; "
           "put {{domain}} in the mapping to keep them apart")
    assert plan["unresolved"] == [
        ref("pod.yaml", 6, 24, "kubernetes", "redis:7", "docker.io/library/redis:7", "unresolved",
            why.format("docker.io/library/redis:7", "quay.io/library/redis:7")),
        ref("pod.yaml", 7, 24, "kubernetes", "quay.io/library/redis:7", "quay.io/library/redis:7", "unresolved",
            why.format("quay.io/library/redis:7", "docker.io/library/redis:7")),
    ]


def test_images_whose_copies_would_write_one_mirror_tag_clash_however_the_targets_are_spelt(tmp_path, capsys):
    digest_a, digest_b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    write_tree(tmp_path, {
        "rehome.yaml": "mapping: '{destination}/{path}'\n",
        "Dockerfile": (f"FROM quay.io/x/app\nFROM docker.io/x/app:latest\n"  # both write x/app:latest
                       f"FROM docker.io/library/redis\nFROM redis:latest\n"  # one image, spelt twice
                       f"FROM quay.io/y/app@{digest_a}\nFROM docker.io/y/app@{digest_b}\n"),  # by digest: no tag
    })
    code, out, err = run_cli(capsys, "plan", str(tmp_path), "--to", DEST, "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert [(m["source"], m["target"]) for m in plan["moves"]] == [
        ("docker.io/library/redis", f"{DEST}/library/redis"),
        ("docker.io/library/redis:latest", f"{DEST}/library/redis:latest"),
        (f"docker.io/y/app@{digest_b}", f"{DEST}/y/app@{digest_b}"),
        (f"quay.io/y/app@{digest_a}", f"{DEST}/y/app@{digest_a}"),
    ]
    why = "the mapping gives {} and {} one mirror name, {}; put {{domain}} in the mapping to keep them apart"
    assert plan["unresolved"] == [
        ref("Dockerfile", 1, 6, "dockerfile", "quay.io/x/app", "quay.io/x/app", "unresolved",
            why.format("quay.io/x/app", "docker.io/x/app:latest", f"{DEST}/x/app")),
        ref("Dockerfile", 2, 6, "dockerfile", "docker.io/x/app:latest", "docker.io/x/app:latest", "unresolved",
            why.format("docker.io/x/app:latest", "quay.io/x/app", f"{DEST}/x/app:latest")),
    ]


def test_plan_and_rewrite_name_the_files_the_scan_could_not_read(tmp_path, capsys):
    write_tree(tmp_path, {
        "latin.yaml": b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: alpine:3.19 # caf\xe9\n",
        "Dockerfile": "FROM redis:7\n",
    })
    code, out, err = run_cli(capsys, "plan", str(tmp_path), "--to", DEST)
    target = f"{DEST}/docker.io/library/redis:7"
    assert (code, err) == (0, "")
    assert out == (f"FROM                       TO{' ' * len(target)}REFS  PULLS\n"
                   f"-------------------------  {'-' * len(target)}  ----  -----\n"
                   f"docker.io/library/redis:7  {target}  1     -\n"
                   f"1 image to move to {DEST}, in 1 file\n"
                   "skipped latin.yaml: not UTF-8 (byte 0xe9 at offset 73)\n")
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    assert out == ("FILE        REFERENCES\n----------  ----------\nDockerfile  1\n1 file rewritten, 1 reference moved\n"
                   "skipped latin.yaml: not UTF-8 (byte 0xe9 at offset 73)\n")


def _plan(capsys, root, destination: str = DEST) -> dict:
    code, out, err = run_cli(capsys, "plan", str(root), "--to", destination, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def _moves(plan: dict) -> list[tuple[str, list[tuple[str, int, int]]]]:
    return [(m["source"], [(o["path"], o["line"], o["column"]) for o in m["occurrences"]]) for m in plan["moves"]]


def test_what_the_rewrite_cannot_edit_is_unresolved_and_the_rest_of_the_file_moves(tmp_path, capsys):
    write_tree(tmp_path, {
        "Dockerfile": "ARG REG=docker.io\nARG IMG=alpine:3.20\nFROM ${REG}/prometheus/prometheus:v2\n"
                      "FROM ${IMG}\nRUN echo ${IMG}\nFROM ${NOPE:-nginx:1.25}\nFROM redis:7\n",
        "pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    base: &img busybox:1.36\n"
                    "spec:\n  containers:\n    - {name: a, image: *img}\n    - {name: b, image: &ok node:20}\n"
                    "    - {name: c, image: *ok}\n    - name: d\n      image: |\n        python:3.12\n",
    })
    plan = _plan(capsys, tmp_path)
    assert _moves(plan) == [
        ("docker.io/library/nginx:1.25", [("Dockerfile", 6, 14)]),
        ("docker.io/library/node:20", [("pod.yaml", 10, 28)]),
        ("docker.io/library/python:3.12", [("pod.yaml", 14, 9)]),
        ("docker.io/library/redis:7", [("Dockerfile", 7, 6)]),
    ]
    assert plan["unresolved"] == [
        ref("Dockerfile", 2, 9, "dockerfile", "alpine:3.20", "docker.io/library/alpine:3.20", "unresolved",
            "ARG IMG holds the image and is also used outside FROM lines; change it by hand"),
        ref("Dockerfile", 3, 6, "dockerfile", "${REG}/prometheus/prometheus:v2", "docker.io/prometheus/prometheus:v2",
            "unresolved",
            "the image name comes from a variable: only a name written out can be rewritten; change it by hand"),
        ref("pod.yaml", 6, 16, "kubernetes", "busybox:1.36", "docker.io/library/busybox:1.36", "unresolved",
            shared_anchor("img", 6)),
    ]


def test_an_anchored_image_a_merge_key_brings_where_no_image_is_expected_stays_with_the_merge_keys_line(
        tmp_path, capsys):
    write_tree(tmp_path, {"pod.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                      "    - &c {name: a, image: &img nginx:1.27}\n"
                                      "metadata:\n  name: p\n  annotations:\n    <<: *c\n"})
    plan = _plan(capsys, tmp_path)
    assert (plan["moves"], plan["unresolved"]) == ([], [
        ref("pod.yaml", 5, 32, "kubernetes", "nginx:1.27", "docker.io/library/nginx:1.27", "unresolved",
            shared_anchor("img", 9)),
    ])


def test_an_anchor_defined_in_a_holder_and_used_only_by_images_moves(tmp_path, capsys):
    write_tree(tmp_path, {
        "compose.yaml": "x-images: {web: &web nginx:1.27, db: &db postgres:16}\n"
                        "x-common: &common\n  image: &red redis:7\n"
                        "services:\n  web: {image: *web}\n  db: {image: *db, labels: {base: *db}}\n"
                        "  cache:\n    <<: *common\n",
        ".gitlab-ci.yml": ".images: {python: &python python:3.12, go: &go golang:1.22}\n"
                          "test: {image: *python, script: [x]}\nbuild: {image: *go, script: [*go]}\n",
    })
    plan = _plan(capsys, tmp_path)
    assert _moves(plan) == [
        ("docker.io/library/nginx:1.27", [("compose.yaml", 1, 22)]),
        ("docker.io/library/python:3.12", [(".gitlab-ci.yml", 1, 27)]),
        ("docker.io/library/redis:7", [("compose.yaml", 3, 15)]),
    ]
    assert plan["unresolved"] == [
        ref(".gitlab-ci.yml", 1, 48, "gitlab-ci", "golang:1.22", "docker.io/library/golang:1.22", "unresolved",
            shared_anchor("go", 3)),
        ref("compose.yaml", 1, 42, "compose", "postgres:16", "docker.io/library/postgres:16", "unresolved",
            shared_anchor("db", 6)),
    ]
    code, _, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    mirror = f"{DEST}/docker.io/library"
    assert (tmp_path / "compose.yaml").read_text() == (
        f"x-images: {{web: &web {mirror}/nginx:1.27, db: &db postgres:16}}\n"
        f"x-common: &common\n  image: &red {mirror}/redis:7\n"
        "services:\n  web: {image: *web}\n  db: {image: *db, labels: {base: *db}}\n  cache:\n    <<: *common\n")
    assert (tmp_path / ".gitlab-ci.yml").read_text() == (
        f".images: {{python: &python {mirror}/python:3.12, go: &go golang:1.22}}\n"
        "test: {image: *python, script: [x]}\nbuild: {image: *go, script: [*go]}\n")


HELM_VALUES = """\
podLabels: {registry: &reg docker.io}
image: {registry: *reg, repository: bitnami/nginx, tag: "1.27"}
sidecarImage: &side busybox:1.36
commonLabels: {side: *side}
api:
  image: {registry: &quay quay.io, repository: prometheus/node-exporter, tag: v1}
  exporterImage: {registry: *quay, repository: prometheus/blackbox-exporter, tag: v2}
"""


def test_helm_values_keep_an_anchor_also_used_where_no_image_is_expected(tmp_path, capsys):
    write_tree(tmp_path, {"Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\n", "values.yaml": HELM_VALUES})
    plan = _plan(capsys, tmp_path)
    assert _moves(plan) == [
        ("quay.io/prometheus/blackbox-exporter:v2", [("values.yaml", 7, 48)]),
        ("quay.io/prometheus/node-exporter:v1", [("values.yaml", 6, 48)]),
    ]
    assert plan["unresolved"] == [
        ref("values.yaml", 2, 37, "helm-values", "docker.io/bitnami/nginx:1.27", "docker.io/bitnami/nginx:1.27",
            "unresolved", shared_anchor("reg", 1)),
        ref("values.yaml", 3, 21, "helm-values", "busybox:1.36", "docker.io/library/busybox:1.36", "unresolved",
            shared_anchor("side", 4)),
    ]
    code, _, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    mirrored = "repository: acme/mirror/quay.io/prometheus/"
    assert (tmp_path / "values.yaml").read_text() == HELM_VALUES.replace(
        "&quay quay.io", "&quay us-docker.pkg.dev").replace("repository: prometheus/", mirrored)


def test_helm_split_entries_stay_where_the_values_set_a_global_image_registry(tmp_path, capsys):
    """Charts built on Bitnami's common library pull each split entry from `global.imageRegistry` when it is
    not empty, whatever the entry's own `registry` says: the entry moved alone would name an image that is
    nowhere. A reference written whole is not read that way, and moves."""
    values = ("global:\n  imageRegistry: docker.io\nimage: {registry: docker.io, repository: bitnami/redis, tag: 7.2.4}\n"
              "metrics:\n  image: {repository: oliver006/redis_exporter, tag: v1.58.0}\nsidecarImage: busybox:1.36\n")
    write_tree(tmp_path, {"Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\n", "values.yaml": values})
    plan = _plan(capsys, tmp_path)
    assert _moves(plan) == [("docker.io/library/busybox:1.36", [("values.yaml", 6, 15)])]
    why = ("global.imageRegistry (docker.io, line 2) is set, and charts that read it (Bitnami's) pull this image from "
           "there, not from the entry's own registry: move it by hand, or empty global.imageRegistry first")
    assert plan["unresolved"] == [
        ref("values.yaml", 3, 42, "helm-values", "docker.io/bitnami/redis:7.2.4", None, "unresolved", why),
        ref("values.yaml", 5, 23, "helm-values", "oliver006/redis_exporter:v1.58.0", None, "unresolved", why),
    ]
    # Empty, it leaves each entry its own registry.
    (tmp_path / "values.yaml").write_text(values.replace("imageRegistry: docker.io", 'imageRegistry: ""'))
    assert [source for source, _ in _moves(_plan(capsys, tmp_path))] == [
        "docker.io/bitnami/redis:7.2.4", "docker.io/library/busybox:1.36", "docker.io/oliver006/redis_exporter:v1.58.0"]


ARG_READ_BY_A_FROM_THAT_STAYS = ("ARG PY=python:3.12\nARG B2=perl:5\nFROM ${PY} AS base\nFROM ${PY}-slim\n"
                                 "FROM ${B2}\nFROM ${B3:-${B2}}\nFROM alpine:3.19\n")


def test_an_arg_that_a_from_which_stays_reads_stays_too(tmp_path, capsys):
    write_tree(tmp_path, {"Dockerfile": ARG_READ_BY_A_FROM_THAT_STAYS})
    plan = _plan(capsys, tmp_path)
    assert _moves(plan) == [("docker.io/library/alpine:3.19", [("Dockerfile", 7, 6)])]
    from_a_variable = "the image name comes from a variable: only a name written out can be rewritten; change it by hand"
    assert plan["unresolved"] == [
        ref("Dockerfile", 1, 8, "dockerfile", "python:3.12", "docker.io/library/python:3.12", "unresolved",
            "ARG PY is also read by ${PY}-slim (line 4), which stays: moving its default would change that image "
            "too; change it by hand"),
        ref("Dockerfile", 2, 8, "dockerfile", "perl:5", "docker.io/library/perl:5", "unresolved",
            "ARG B2 is also read by ${B2} (line 6), which stays: moving its default would change that image "
            "too; change it by hand"),
        ref("Dockerfile", 4, 6, "dockerfile", "${PY}-slim", "docker.io/library/python:3.12-slim", "unresolved",
            from_a_variable),
        ref("Dockerfile", 6, 12, "dockerfile", "${B2}", "docker.io/library/perl:5", "unresolved", from_a_variable),
    ]
    code, _, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    assert (tmp_path / "Dockerfile").read_text() == ARG_READ_BY_A_FROM_THAT_STAYS.replace(
        "alpine:3.19", f"{DEST}/docker.io/library/alpine:3.19")


def test_a_rewrite_that_would_change_an_unplanned_image_says_which(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(plan_module, "held_by_args", lambda references, moving: {})
    write_tree(tmp_path, {"Dockerfile": ARG_READ_BY_A_FROM_THAT_STAYS})
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST, "--dry-run")
    assert (code, err) == (1, "")
    assert out.splitlines()[1] == (
        "left untouched: Dockerfile: line 4: ${PY}-slim would name us-docker.pkg.dev/acme/mirror/docker.io/library/"
        "python:3.12-slim instead of docker.io/library/python:3.12-slim, which was not planned")


def test_a_name_that_an_earlier_stage_took_is_the_stage(tmp_path, capsys):
    write_tree(tmp_path, {"Dockerfile": "FROM node AS first\nFROM python AS node\nFROM node\nCOPY --from=node /a /b\n"})
    assert _moves(_plan(capsys, tmp_path)) == [
        ("docker.io/library/node", [("Dockerfile", 1, 6)]),
        ("docker.io/library/python", [("Dockerfile", 2, 6)]),
    ]


def test_images_on_loopback_registries_stay_unless_the_mirror_is_on_loopback_too(tmp_path, capsys):
    write_tree(tmp_path, {"Dockerfile": "FROM localhost:5000/app:1\nFROM 127.0.0.1:5000/tool:2\nFROM localhost/base\n"})
    why = "registry {} is a loopback address: only the machine that pulls the image can reach it"
    plan = _plan(capsys, tmp_path)
    assert (plan["moves"], plan["unresolved"]) == ([], [
        ref("Dockerfile", 1, 6, "dockerfile", "localhost:5000/app:1", "localhost:5000/app:1", "unresolved",
            why.format("localhost:5000")),
        ref("Dockerfile", 2, 6, "dockerfile", "127.0.0.1:5000/tool:2", "127.0.0.1:5000/tool:2", "unresolved",
            why.format("127.0.0.1:5000")),
        ref("Dockerfile", 3, 6, "dockerfile", "localhost/base", "localhost/base", "unresolved", why.format("localhost")),
    ])
    plan = _plan(capsys, tmp_path, "127.0.0.1:5001/mirror")
    assert ([m["target"] for m in plan["moves"]], plan["unresolved"]) == ([
        "127.0.0.1:5001/mirror/127.0.0.1__5000/tool:2",
        "127.0.0.1:5001/mirror/localhost/base",
        "127.0.0.1:5001/mirror/localhost__5000/app:1",
    ], [])
