from __future__ import annotations

import os
import subprocess
import sys
import time

from bot.policy import DEFAULT_INTERNAL, Policy
from bot.rules import load_rules
from bot.scan import core
from bot.scan.core import PARALLEL_THRESHOLD, ScanOptions, scan
from tests.helpers import ROOT, git, ref, run_cli, scan_json, write_tree
from tests.scan import make_folder_links

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.14.2
"""


def test_positions_count_only_newlines_and_not_the_bom(tmp_path, capsys):
    # A BOM is not a column; CRLF ends a line; \u2028 and \x85 (YAML line breaks in a quoted value) do not.
    text = (
        "\ufeffapiVersion: v1\r\n"
        "kind: Pod\r\n"
        "metadata: {name: p, annotations: {note: \"odd\u2028separator and \x85 here\"}}\r\n"
        "spec:\r\n"
        "  containers: [{name: a, image: \"redis:7\"}]\r\n"
    )
    write_tree(tmp_path, {"pod.yaml": text, "bom-first.yaml": "\ufeffimage: x\n"})
    assert scan_json(capsys, tmp_path)["references"] == [
        ref("pod.yaml", 5, 34, "kubernetes", "redis:7", "docker.io/library/redis:7"),
    ]


def test_ignore_comments_and_excluded_images(tmp_path, capsys):
    write_tree(tmp_path, {
        "pods.yaml": """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: a
      image: busybox:1.36  # rehome: ignore
    - name: b
      # rehome: ignore
      image: alpine:3.20
    - name: c
      image: quay.io/prometheus/node-exporter:v1.8.2
    - name: d
      image: redis:7
""",
        "rehome.yaml": "exclude_images: ['quay.io/prometheus/*']\n",
    })
    assert scan_json(capsys, tmp_path) == {
        "version": 1,
        "references": [ref("pods.yaml", 14, 14, "kubernetes", "redis:7", "docker.io/library/redis:7")],
        "ignored": 3,
        "skipped": [],
    }


def test_files_that_cannot_be_read_whole_are_skipped_with_a_reason(tmp_path, capsys):
    outside = tmp_path / "outside"
    root = tmp_path / "repo"
    write_tree(outside, {"secret.yaml": DEPLOYMENT})
    write_tree(root, {
        "big.yaml": DEPLOYMENT + "# " + "x" * 2000 + "\n",
        "binary.yaml": b"apiVersion: v1\x00\x01",
        "latin1.yaml": "kind: Pod\nimage: caf\xe9\n".encode("latin-1"),
        "broken.yaml": "apiVersion: v1\nkind: Pod\nspec: {containers: [{image: nginx}\n",
        "ok.yaml": DEPLOYMENT,
    })
    os.symlink(outside / "secret.yaml", root / "escape.yaml")
    os.symlink(root / "loop-a.yaml", root / "loop-b.yaml")
    os.symlink(root / "loop-b.yaml", root / "loop-a.yaml")
    os.symlink("ok.yaml", root / "alias.yaml")
    result = scan_json(capsys, root, "--max-file-size", "1KiB")
    assert result == {
        "version": 1,
        "references": [ref("ok.yaml", 10, 18, "kubernetes", "nginx:1.14.2", "docker.io/library/nginx:1.14.2")],
        "ignored": 0,
        "skipped": [
            {"path": "alias.yaml", "reason": "symlink to ok.yaml, read under that name"},
            {"path": "big.yaml", "reason": "larger than 1 KiB"},
            {"path": "binary.yaml", "reason": "binary file"},
            {"path": "broken.yaml", "reason": "not valid YAML: expected ',' or ']', but got '<stream end>' (line 4, column 1)"},
            {"path": "escape.yaml", "reason": "symlink leads outside the scanned root"},
            {"path": "latin1.yaml", "reason": "not UTF-8 (byte 0xe9 at offset 20)"},
            {"path": "loop-a.yaml", "reason": "unreadable: symlink loop"},
            {"path": "loop-b.yaml", "reason": "unreadable: symlink loop"},
        ],
    }


def test_in_a_git_checkout_only_tracked_files_unless_untracked(tmp_path, capsys):
    write_tree(tmp_path, {"tracked.yaml": DEPLOYMENT, ".gitignore": "ignored.yaml\n"})
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "init")
    write_tree(tmp_path, {"new.yaml": DEPLOYMENT, "ignored.yaml": DEPLOYMENT})
    assert [r["path"] for r in scan_json(capsys, tmp_path)["references"]] == ["tracked.yaml"]
    assert [r["path"] for r in scan_json(capsys, tmp_path, "--untracked")["references"]] == ["new.yaml", "tracked.yaml"]


def test_vendored_folders_are_skipped_and_globs_select(tmp_path, capsys):
    write_tree(tmp_path, {
        "deploy/web.yaml": DEPLOYMENT,
        "deploy/extra/web.yaml": DEPLOYMENT,
        "a/node_modules/x.yaml": DEPLOYMENT,
        "vendor/x.yaml": DEPLOYMENT,
        "b/third_party/x.yaml": DEPLOYMENT,
        "docs/example.yaml": DEPLOYMENT,
    })
    assert [r["path"] for r in scan_json(capsys, tmp_path)["references"]] == [
        "deploy/extra/web.yaml", "deploy/web.yaml", "docs/example.yaml",
    ]
    paths = [r["path"] for r in scan_json(capsys, tmp_path, "--include", "deploy/**", "--exclude", "**/extra/**")["references"]]
    assert paths == ["deploy/web.yaml"]


def test_alias_bomb_is_bounded_and_reported_once(tmp_path, capsys):
    lines = ["apiVersion: v1", "kind: List", "a0: &a0 [{name: c, image: 'nginx:1'}]"]
    for i in range(1, 30):
        lines.append(f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]")
    lines.append("spec: {containers: *a0, more: *a29}")
    write_tree(tmp_path, {"bomb.yaml": "\n".join(lines) + "\n"})
    started = time.monotonic()
    result = scan_json(capsys, tmp_path)
    assert time.monotonic() - started < 10
    assert result["references"] == [ref("bomb.yaml", 3, 28, "kubernetes", "nginx:1", "docker.io/library/nginx:1")]


def test_internal_patterns_and_destination(tmp_path, capsys):
    write_tree(tmp_path, {"pod.yaml": """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - {name: a, image: us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0}
    - {name: b, image: us-docker.pkg.dev/acme/mirror/docker.io/library/nginx:1.27}
    - {name: c, image: k8s.gcr.io/pause:3.9}
    - {name: d, image: "europe-docker.pkg.dev/acme/apps/api:2"}
"""})
    default = [(r["raw"].split("/")[1], r["status"]) for r in scan_json(capsys, tmp_path)["references"]]
    assert default == [("google-samples", "internal"), ("acme", "internal"), ("pause:3.9", "internal"), ("acme", "internal")]
    write_tree(tmp_path, {"rehome.yaml": "destination: us-docker.pkg.dev/acme/mirror\n"})
    own_only = scan_json(capsys, tmp_path, "--internal", "*-docker.pkg.dev/acme/apps/*")["references"]
    assert [r["status"] for r in own_only] == ["third-party", "internal", "third-party", "internal"]


def test_unresolved_values_say_why(tmp_path, capsys):
    write_tree(tmp_path, {"pod.yaml": """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - {name: a, image: "gcr.io/<<PROJECT>>/app"}
    - {name: b, image: CONTAINER_REGISTRY/app}
    - {name: c, image: "${REGISTRY}/app:1"}
    - {name: d, image: ko://github.com/acme/cmd/app}
"""})
    assert scan_json(capsys, tmp_path)["references"] == [
        ref("pod.yaml", 6, 25, "kubernetes", "gcr.io/<<PROJECT>>/app", None, "unresolved",
            "contains a placeholder: <<PROJECT>>"),
        ref("pod.yaml", 7, 24, "kubernetes", "CONTAINER_REGISTRY/app", None, "unresolved",
            "not a valid image reference: invalid reference 'CONTAINER_REGISTRY/app': repository name must be lowercase"),
        ref("pod.yaml", 8, 25, "kubernetes", "${REGISTRY}/app:1", None, "unresolved", "contains a variable: ${REGISTRY}"),
    ]


def test_table_groups_by_image(tmp_path, capsys):
    write_tree(tmp_path, {"a.yaml": DEPLOYMENT, "b/a.yaml": DEPLOYMENT, "big.yaml": b"\x00"})
    code, out, _ = run_cli(capsys, "scan", str(tmp_path))
    assert code == 0
    assert out == (
        "IMAGE                           STATUS       REFS  FILES    KINDS       REASON\n"
        "------------------------------  -----------  ----  -------  ----------  ------\n"
        "docker.io/library/nginx:1.14.2  third-party  2     2 files  kubernetes\n"
        "2 references in 2 files: 2 third-party, 0 internal, 0 unresolved; 0 ignored\n"
        "skipped big.yaml: binary file\n"
    )


def test_the_summary_says_one_reference_in_one_file(tmp_path, capsys):
    write_tree(tmp_path, {"a.yaml": DEPLOYMENT})
    assert run_cli(capsys, "scan", str(tmp_path)) == (0, (
        "IMAGE                           STATUS       REFS  FILES   KINDS       REASON\n"
        "------------------------------  -----------  ----  ------  ----------  ------\n"
        "docker.io/library/nginx:1.14.2  third-party  1     a.yaml  kubernetes\n"
        "1 reference in 1 file: 1 third-party, 0 internal, 0 unresolved; 0 ignored\n"
    ), "")


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    code, out, err = run_cli(capsys, "scan", str(tmp_path / "missing"))
    assert (code, out, err) == (2, "", f"rehome: error: {tmp_path / 'missing'}: no such file or directory\n")

    write_tree(tmp_path, {"rehome.yaml": "internal: gcr.io\n"})
    code, out, err = run_cli(capsys, "scan", str(tmp_path))
    assert (code, err) == (2, f"rehome: error: {tmp_path / 'rehome.yaml'}: key 'internal': 'gcr.io' is not of type 'array'\n")

    write_tree(tmp_path, {"rehome.yaml": "destinaton: x\n"})
    code, out, err = run_cli(capsys, "scan", str(tmp_path))
    assert code == 2 and err.startswith(f"rehome: error: {tmp_path / 'rehome.yaml'}: unknown key 'destinaton' (known keys: ")

    code, out, err = run_cli(capsys, "scan", str(tmp_path), "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err


# Scans each file slowly; the worker given the first one sends Ctrl-C to the whole process group, as a terminal does.
INTERRUPTED_SCAN = """
import os, signal, sys, time
from bot.cli import main
from bot.scan import core

def scan_file(tree, path, rules, options):
    if path == "0.yaml":
        os.killpg(0, signal.SIGINT)
    time.sleep(0.01)
    return core._FileScan()

core._scan_file = scan_file
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_during_a_parallel_scan_stops_it_quietly(tmp_path):
    write_tree(tmp_path, {f"{n}.yaml": DEPLOYMENT for n in range(PARALLEL_THRESHOLD)})
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_SCAN, "check", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, start_new_session=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "rehome: interrupted\n")


def test_the_files_a_compose_file_includes_or_extends_are_scanned_whatever_their_names(tmp_path, capsys):
    # `include:` paths (strings, or mappings whose `path:` is one or a list) and `extends:` files, relative to
    # the naming file's folder; an env file, and a compose-like file nothing names, are not read.
    write_tree(tmp_path, {
        "docker-compose.yml": """\
include:
  - infra/db.yml
  - path: infra/cache.yml
  - path:
      - infra/queue.yml
      - infra/queue.override.yml
    project_directory: infra
    env_file: infra/.env
services:
  app:
    extends: {file: infra/common-services.yml, service: base}
""",
        "infra/db.yml": "services:\n  db:\n    image: postgres:16\n",
        "infra/cache.yml": 'services:\n  cache: {image: "redis:7"}\n',
        "infra/queue.yml": "services:\n  queue:\n    image: rabbitmq:3-management\n",
        "infra/queue.override.yml": "services:\n  queue-ui:\n    image: 'nginx:1.27-alpine'\n",
        "infra/common-services.yml": "services:\n  base:\n    image: nginx:1.27\n",
        "infra/.env": "image: busybox:1.36\n",
        "notes/services.yml": "services:\n  web:\n    image: httpd:2.4\n",
    })
    assert scan_json(capsys, tmp_path) == {
        "version": 1,
        "references": [
            ref("infra/cache.yml", 2, 19, "compose", "redis:7", "docker.io/library/redis:7"),
            ref("infra/common-services.yml", 3, 12, "compose", "nginx:1.27", "docker.io/library/nginx:1.27"),
            ref("infra/db.yml", 3, 12, "compose", "postgres:16", "docker.io/library/postgres:16"),
            ref("infra/queue.override.yml", 3, 13, "compose", "nginx:1.27-alpine",
                "docker.io/library/nginx:1.27-alpine"),
            ref("infra/queue.yml", 3, 12, "compose", "rabbitmq:3-management", "docker.io/library/rabbitmq:3-management"),
        ],
        "ignored": 0,
        "skipped": [],
    }


def test_named_compose_files_are_followed_through_chains_and_loops_within_the_scan_filters(tmp_path, capsys):
    # compose.yaml includes stack/a.yml, which includes b.yml, which includes a.yml again and has a service
    # extending one of base/c.yml. A file outside the root, a missing one and one `--exclude` leaves out are not
    # read; one over the size limit is skipped, as any file is.
    root = write_tree(tmp_path / "repo", {
        "compose.yaml": """\
include:
  - stack/a.yml
  - ../outside.yml
  - stack/missing.yml
  - private/secret.yml
  - stack/big.yml
""",
        "stack/a.yml": "include: [b.yml]\nservices:\n  a:\n    image: alpine:3.20\n",
        "stack/b.yml": "include: [a.yml]\nservices:\n  b:\n    extends: {file: ../base/c.yml, service: c}\n",
        "base/c.yml": "services:\n  c:\n    image: busybox:1.36\n",
        "private/secret.yml": "services:\n  s:\n    image: vault:1.13\n",
        "stack/big.yml": "services:\n  big:\n    image: httpd:2.4\n# " + "x" * 2000 + "\n",
    })
    write_tree(tmp_path, {"outside.yml": "services:\n  o:\n    image: traefik:3\n"})
    assert scan_json(capsys, root, "--exclude", "private/**", "--max-file-size", "1KiB") == {
        "version": 1,
        "references": [
            ref("base/c.yml", 3, 12, "compose", "busybox:1.36", "docker.io/library/busybox:1.36"),
            ref("stack/a.yml", 4, 12, "compose", "alpine:3.20", "docker.io/library/alpine:3.20"),
        ],
        "ignored": 0,
        "skipped": [{"path": "stack/big.yml", "reason": "larger than 1 KiB"}],
    }


def test_a_parallel_scan_finds_the_files_a_compose_file_names_beside_it(tmp_path, monkeypatch):
    # Each worker scans every second file: the results must still be told apart by the file they are of.
    monkeypatch.setattr(core, "PARALLEL_THRESHOLD", 2)
    write_tree(tmp_path, {
        "a/Dockerfile": "FROM alpine:3.20\n",
        "b/compose.yaml": "include:\n  - infra/db.yml\n",
        "b/infra/db.yml": "services:\n  db:\n    image: postgres:16\n",
        "c/Dockerfile": "FROM busybox:1.36\n",
    })
    options = ScanOptions(rules=tuple(load_rules()), policy=Policy(DEFAULT_INTERNAL), jobs=2)
    assert scan(tmp_path, options).to_json() == {
        "version": 1,
        "references": [
            ref("a/Dockerfile", 1, 6, "dockerfile", "alpine:3.20", "docker.io/library/alpine:3.20"),
            ref("b/infra/db.yml", 3, 12, "compose", "postgres:16", "docker.io/library/postgres:16"),
            ref("c/Dockerfile", 1, 6, "dockerfile", "busybox:1.36", "docker.io/library/busybox:1.36"),
        ],
        "ignored": 0,
        "skipped": [],
    }


def test_a_symlinks_target_no_rule_reads_is_read_with_the_rules_that_selected_the_link(tmp_path, capsys):
    # The target is read once under its own name, however many links lead to it (deploy/db.yml, which only
    # the kubernetes rule selects, leads to the compose file too), so a rewrite edits it; a file a compose
    # file includes may be such a link too.
    root = write_tree(tmp_path, {
        "shared/db.yml": "services:\n  db:\n    image: postgres:16\n",
        "ci/build.yaml": "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    container: node:20\n",
        "stack/services.yml": "include: [../infra/cache.yml]\nservices:\n  web:\n    image: nginx:1.27\n",
        "infra/shared/cache.yml": "services:\n  cache:\n    image: redis:7\n",
    })
    os.symlink("shared/db.yml", root / "docker-compose.yml")
    (root / "deploy").mkdir()
    os.symlink("../shared/db.yml", root / "deploy/db.yml")
    (root / ".github/workflows").mkdir(parents=True)
    os.symlink("../../ci/build.yaml", root / ".github/workflows/ci.yml")
    (root / "a").mkdir()
    (root / "b").mkdir()
    os.symlink("../stack/services.yml", root / "a/compose.yaml")
    os.symlink("../stack/services.yml", root / "b/docker-compose.yml")
    os.symlink("shared/cache.yml", root / "infra/cache.yml")
    assert scan_json(capsys, root) == {
        "version": 1,
        "references": [
            ref("ci/build.yaml", 5, 16, "github-actions", "node:20", "docker.io/library/node:20"),
            ref("infra/shared/cache.yml", 3, 12, "compose", "redis:7", "docker.io/library/redis:7"),
            ref("shared/db.yml", 3, 12, "compose", "postgres:16", "docker.io/library/postgres:16"),
            ref("stack/services.yml", 4, 12, "compose", "nginx:1.27", "docker.io/library/nginx:1.27"),
        ],
        "ignored": 0,
        "skipped": [
            {"path": ".github/workflows/ci.yml", "reason": "symlink to ci/build.yaml, read under that name"},
            {"path": "a/compose.yaml", "reason": "symlink to stack/services.yml, read under that name"},
            {"path": "b/docker-compose.yml", "reason": "symlink to stack/services.yml, read under that name"},
            {"path": "deploy/db.yml", "reason": "symlink to shared/db.yml, read under that name"},
            {"path": "docker-compose.yml", "reason": "symlink to shared/db.yml, read under that name"},
            {"path": "infra/cache.yml", "reason": "symlink to infra/shared/cache.yml, read under that name"},
        ],
    }


def test_ignored_counts_only_what_the_scan_would_have_listed(tmp_path, capsys):
    # web-dev names the output of the base file's build, app the Dockerfile's target: neither is a reference,
    # ignored or not; the redis line is.
    root = write_tree(tmp_path, {
        "deploy/compose.yaml": "services:\n  web:\n    build: .\n  app:\n    build: ../app\n    image: acme/app:1\n",
        "deploy/compose.override.yaml": "services:\n  web:\n    image: ghcr.io/acme/web-dev:1  # rehome: ignore\n"
                                        "  cache:\n    image: redis:7  # rehome: ignore\n",
        "tools/Dockerfile": "# rehome: ignore\nFROM acme/app:1\n",
    })
    assert scan_json(capsys, root) == {"version": 1, "references": [], "ignored": 1, "skipped": []}


def test_a_symlink_to_a_file_git_does_not_track_says_the_scan_leaves_it_out(tmp_path, capsys):
    root = write_tree(tmp_path, {"local/db.yml": "services:\n  db:\n    image: postgres:16\n"})
    os.symlink("local/db.yml", root / "docker-compose.yml")
    git(root, "init", "-q")
    git(root, "add", "docker-compose.yml")
    assert scan_json(capsys, root)["skipped"] == [
        {"path": "docker-compose.yml", "reason": "symlink to local/db.yml, which this scan leaves out"}]
    assert scan_json(capsys, root, "--untracked")["skipped"] == [
        {"path": "docker-compose.yml", "reason": "symlink to local/db.yml, read under that name"}]


def test_the_files_behind_a_symlink_to_a_folder_are_read_with_the_rules_that_select_them_through_it(tmp_path, capsys):
    # The workflow under ci/ is one only as .github/workflows/build.yml (GitHub reads no nested folder there);
    # compose/ is read by name anyway; --exclude leaves private/ out; links to the root, to a folder holding
    # them, or leaving the root are not followed. The files are read at their own paths, for rewrites to edit.
    root = make_folder_links(tmp_path)
    assert scan_json(capsys, root, "--exclude", "private/**") == {
        "version": 1,
        "references": [
            ref("ci/workflows/build.yml", 5, 16, "github-actions", "node:20", "docker.io/library/node:20"),
            ref("compose/docker-compose.yml", 3, 12, "compose", "postgres:16", "docker.io/library/postgres:16"),
        ],
        "ignored": 0,
        "skipped": [
            {"path": ".github/workflows", "reason": "symlink to the folder ci/workflows/, whose files are read there"},
            {"path": "deploy", "reason": "symlink to the folder compose/, whose files are read there"},
        ],
    }


def test_a_symlinks_target_another_rule_reads_or_the_scan_leaves_out_is_not_read_through_the_link(tmp_path, capsys):
    # A target read by name stays its rule's; one outside the root, in a folder scans skip, or left out by
    # --exclude is not read.
    outside = write_tree(tmp_path / "outside", {"db.yml": "services:\n  db:\n    image: postgres:16\n"})
    root = write_tree(tmp_path / "repo", {
        "deploy/pod.yaml": DEPLOYMENT,
        "vendor/db.yml": "services:\n  db:\n    image: mysql:8\n",
        "private/db.yml": "services:\n  db:\n    image: vault:1.13\n",
    })
    for name, target in {"compose.yaml": "deploy/pod.yaml", "outside/docker-compose.yml": outside / "db.yml",
                         "vendored/docker-compose.yml": "../vendor/db.yml",
                         "excluded/docker-compose.yml": "../private/db.yml"}.items():
        (root / name).parent.mkdir(exist_ok=True)
        os.symlink(target, root / name)
    assert scan_json(capsys, root, "--exclude", "private/**") == {
        "version": 1,
        "references": [ref("deploy/pod.yaml", 10, 18, "kubernetes", "nginx:1.14.2", "docker.io/library/nginx:1.14.2")],
        "ignored": 0,
        "skipped": [
            {"path": "compose.yaml", "reason": "symlink to deploy/pod.yaml, read under that name"},
            {"path": "excluded/docker-compose.yml", "reason": "symlink to private/db.yml, which this scan leaves out"},
            {"path": "outside/docker-compose.yml", "reason": "symlink leads outside the scanned root"},
            {"path": "vendored/docker-compose.yml",
             "reason": "symlink to vendor/db.yml, in vendor/, a folder scans always skip"},
        ],
    }
