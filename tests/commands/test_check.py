from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from bot import __version__
from bot.cli import main
from bot.sarif import RULES
from tests.helpers import git, ref, run_cli, write_tree
from tests.scan import make_folder_links

HERE = Path(__file__).resolve().parent.parent / "check"
FIXTURE = HERE / "repo"
SARIF_SCHEMA = json.loads((HERE / "sarif-schema-2.1.0.json").read_text())
DEST = "us-docker.pkg.dev/acme/mirror"

UV = "ghcr.io/astral-sh/uv:0.4.18"
PYTHON = "docker.io/library/python:3.12-slim"
EXPORTER = "quay.io/prometheus/node-exporter:v1.8.2"
HOW_TO_FIX = "copy it into your registry and use the copy (`rehome plan --to DEST` names it)"
SIDECAR = (
    "deploy/app.yaml:14:18: warning: unresolved image reference ${SIDECAR_IMAGE}: contains a variable: "
    "${SIDECAR_IMAGE}; check by hand that it is not third-party"
)
COVERED = [
    ref("cache/deployment.yaml", 10, 18, "kubernetes", "redis:7", "docker.io/library/redis:7", "third-party",
        "matched by the Kustomize images: override in cache/kustomization.yaml, whose kustomization also builds "
        "resources from outside the repository (https://github.com/acme/platform//deploy/cache?ref=v1.2.0)"),
    ref("cache/kustomization.yaml", 6, 14, "kustomize", "redis:7.4", "docker.io/library/redis:7.4", "third-party",
        "the kustomization also builds resources from outside the repository "
        "(https://github.com/acme/platform//deploy/cache?ref=v1.2.0); moving this override would make it stop "
        "applying to them"),
]


@pytest.fixture
def repo(tmp_path) -> Path:
    """The fixture tree as a git repository with one commit."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "start")
    return root


def test_text_output_lists_findings_like_a_linter(repo, capsys):
    assert run_cli(capsys, "check", str(repo)) == (1, (
        f"Dockerfile:1:6: error: third-party image {PYTHON}: {HOW_TO_FIX}\n"
        f"Dockerfile:2:13: error: third-party image {UV}: {HOW_TO_FIX}\n"
        f"deploy/app.yaml:12:18: error: third-party image {EXPORTER}: {HOW_TO_FIX}\n"
        f"{SIDECAR}\n"
        "3 third-party references in 2 files; 1 unresolved; 2 covered\n"
    ), "")


def test_a_destination_names_the_mirror_image_to_use(repo, capsys):
    assert run_cli(capsys, "check", str(repo), "--to", DEST) == (1, (
        f"Dockerfile:1:6: error: third-party image {PYTHON}: use {DEST}/{PYTHON}\n"
        f"Dockerfile:2:13: error: third-party image {UV}: use {DEST}/{UV}\n"
        f"deploy/app.yaml:12:18: error: third-party image {EXPORTER}: use {DEST}/{EXPORTER}\n"
        f"{SIDECAR}\n"
        "3 third-party references in 2 files; 1 unresolved; 2 covered\n"
    ), "")


def test_destination_and_mapping_from_rehome_yaml(tmp_path, capsys):
    write_tree(tmp_path, {
        "rehome.yaml": "destination: localhost:5000/m\nmapping: '{destination}/{path}'\n",
        "Dockerfile": "FROM quay.io/org/tool:1\nFROM [::1]:5000/app:1\nFROM localhost:5000/m/org/tool:1\n",
    })
    assert run_cli(capsys, "check", str(tmp_path)) == (1, (
        "Dockerfile:1:6: error: third-party image quay.io/org/tool:1: use localhost:5000/m/org/tool:1\n"
        "Dockerfile:2:6: error: third-party image [::1]:5000/app:1: the mapping cannot name its mirror copy: "
        "registry [::1]:5000 is an IPv6 literal, which has no reversible form in a repository path\n"
        "2 third-party references in 1 file\n"
    ), "")


def test_a_placeholder_destination_in_rehome_yaml_is_left_out_with_a_warning(tmp_path, capsys):
    assert run_cli(capsys, "init", "-q", str(tmp_path)) == (0, "", "")
    write_tree(tmp_path, {"Dockerfile": "FROM quay.io/org/tool:1\n"})
    assert run_cli(capsys, "check", str(tmp_path)) == (1, (
        "Dockerfile:1:6: error: third-party image quay.io/org/tool:1: copy it into your registry and use the copy "
        "(`rehome plan --to DEST` names it)\n"
        "1 third-party reference in 1 file\n"
    ), (
        f"{tmp_path / 'rehome.yaml'}: key 'destination': destination 'us-docker.pkg.dev/PROJECT/mirror' is not a "
        "registry path: invalid reference 'us-docker.pkg.dev/PROJECT/mirror': repository name must be lowercase; "
        "checked without it (findings name no mirror image)\n"
        "hint: replace the placeholder `rehome init` wrote with your mirror, e.g. us-docker.pkg.dev/acme/mirror\n"
    ))
    assert run_cli(capsys, "check", str(tmp_path), "--to", "us-docker.pkg.dev/PROJECT/mirror")[::2] == (
        2, "rehome: error: --to: destination 'us-docker.pkg.dev/PROJECT/mirror' is not a registry path: invalid "
           "reference 'us-docker.pkg.dev/PROJECT/mirror': repository name must be lowercase\n")


def test_only_internal_covered_and_unresolved_references_pass(tmp_path, capsys):
    shutil.copytree(FIXTURE, tmp_path / "repo")
    (tmp_path / "repo" / "Dockerfile").unlink()
    app = tmp_path / "repo" / "deploy" / "app.yaml"
    app.write_text(app.read_text().replace(EXPORTER, f"{DEST}/{EXPORTER}"))
    assert run_cli(capsys, "check", str(tmp_path / "repo"), "--to", DEST) == (
        0, f"{SIDECAR}\nno third-party references; 1 unresolved; 2 covered\n", "")


def test_json_output(repo, capsys):
    code, out, err = run_cli(capsys, "check", str(repo), "--to", DEST, "--format", "json")
    assert (code, err) == (1, "")
    assert json.loads(out) == {
        "version": 1,
        "destination": DEST,
        "failed": True,
        "findings": [
            {**ref("Dockerfile", 1, 6, "dockerfile", "python:3.12-slim", PYTHON),
             "rule": "rehome/third-party-image", "level": "error",
             "message": f"third-party image {PYTHON}: use {DEST}/{PYTHON}", "target": f"{DEST}/{PYTHON}"},
            {**ref("Dockerfile", 2, 13, "dockerfile", UV, UV),
             "rule": "rehome/third-party-image", "level": "error",
             "message": f"third-party image {UV}: use {DEST}/{UV}", "target": f"{DEST}/{UV}"},
            {**ref("deploy/app.yaml", 12, 18, "kubernetes", EXPORTER, EXPORTER),
             "rule": "rehome/third-party-image", "level": "error",
             "message": f"third-party image {EXPORTER}: use {DEST}/{EXPORTER}", "target": f"{DEST}/{EXPORTER}"},
            {**ref("deploy/app.yaml", 14, 18, "kubernetes", "${SIDECAR_IMAGE}", None, "unresolved",
                   "contains a variable: ${SIDECAR_IMAGE}"),
             "rule": "rehome/unresolved-image", "level": "warning",
             "message": "unresolved image reference ${SIDECAR_IMAGE}: contains a variable: ${SIDECAR_IMAGE}; "
                        "check by hand that it is not third-party",
             "target": None},
        ],
        "known": 0,
        "covered": COVERED,
        "skipped": [],
    }


def _sarif_result(rule: int, level: str, uri: str, line: int, column: int | None, message: str) -> dict:
    region = {"startLine": line} if column is None else {"startLine": line, "startColumn": column}
    return {
        "ruleId": RULES[rule]["id"],
        "ruleIndex": rule,
        "level": level,
        "message": {"text": message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": uri},
            "region": region,
        }}],
    }


def test_sarif_output_is_valid_sarif_2_1_0(repo, capsys):
    code, out, err = run_cli(capsys, "check", str(repo), "--to", DEST, "--format", "sarif")
    assert (code, err) == (1, "")
    sarif = json.loads(out)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert [(r["id"], r["defaultConfiguration"]["level"]) for r in rules] == [
        ("rehome/third-party-image", "error"), ("rehome/unresolved-image", "warning"),
        ("rehome/skipped-file", "warning")]
    assert "rehome rewrite --to DEST" in rules[0]["help"]["text"]
    assert sarif == {
        "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "rehome", "version": __version__, "rules": RULES}},
            "columnKind": "unicodeCodePoints",
            "results": [
                _sarif_result(0, "error", "Dockerfile", 1, 6, f"third-party image {PYTHON}: use {DEST}/{PYTHON}"),
                _sarif_result(0, "error", "Dockerfile", 2, 13, f"third-party image {UV}: use {DEST}/{UV}"),
                _sarif_result(0, "error", "deploy/app.yaml", 12, 18,
                              f"third-party image {EXPORTER}: use {DEST}/{EXPORTER}"),
                _sarif_result(1, "warning", "deploy/app.yaml", 14, 18,
                              "unresolved image reference ${SIDECAR_IMAGE}: contains a variable: ${SIDECAR_IMAGE}; "
                              "check by hand that it is not third-party"),
            ],
        }],
    }


def test_sarif_uris_are_relative_to_the_repository(tmp_path, capsys):
    # Code scanning places results by their path in the repository, not in the folder checked.
    write_tree(tmp_path, {"deploy dir/Dockerfile": "FROM alpine:3.20\n"})
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    code, out, _ = run_cli(capsys, "check", str(tmp_path / "deploy dir"), "--format", "sarif")
    sarif = json.loads(out)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    assert (code, sarif["runs"][0]["results"]) == (1, [_sarif_result(
        0, "error", "deploy%20dir/Dockerfile", 1, 6, f"third-party image docker.io/library/alpine:3.20: {HOW_TO_FIX}")])


def test_sarif_without_findings_is_valid(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "check", str(tmp_path), "--format", "sarif")
    sarif = json.loads(out)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    assert (code, sarif["runs"][0]["results"]) == (0, [])


def test_the_vendored_schema_rejects_what_code_scanning_would(repo, capsys):
    code, out, _ = run_cli(capsys, "check", str(repo), "--format", "sarif")
    sarif = json.loads(out)
    sarif["runs"][0]["results"][0]["level"] = "fatal"
    sarif["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    errors = sorted(e.message for e in jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(sarif))
    assert errors == ["'fatal' is not one of ['none', 'note', 'warning', 'error']", "0 is less than the minimum of 1"]


def test_a_finding_stays_on_one_line_whatever_its_reference_holds(tmp_path, capsys):
    write_tree(tmp_path, {"pod.yaml": 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: "nginx\\n:1"\n'
                                      '    - image: "quay.io/a/b:1\\u2028"\n'})
    assert run_cli(capsys, "check", str(tmp_path)) == (0, (
        "pod.yaml:5:15: warning: unresolved image reference nginx\\n:1: not a valid image reference: invalid "
        "reference format: path component 'nginx\\n' must be lowercase letters and digits, joined by one '.', one or "
        "two '_', or dashes; check by hand that it is not third-party\n"
        "pod.yaml:6:15: warning: unresolved image reference quay.io/a/b:1\\u2028: not a valid image reference: "
        "invalid reference format: tag '1\\u2028' may hold only letters, digits, '_', '.' and '-'; check by hand that "
        "it is not third-party\n"
        "no third-party references; 2 unresolved\n"
    ), "")


def test_a_file_name_that_is_not_utf8_keeps_its_bytes(tmp_path, capsys):
    latin1 = os.fsdecode(b"caf\xe9.yaml")
    write_tree(tmp_path, {latin1: "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: nginx:1\n"})
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    finding = f"third-party image docker.io/library/nginx:1: {HOW_TO_FIX}"
    code, out, _ = run_cli(capsys, "check", str(tmp_path), "--format", "sarif")
    assert (code, json.loads(out)["runs"][0]["results"]) == (1, [_sarif_result(0, "error", "caf%E9.yaml", 5, 14, finding)])
    baseline = tmp_path.parent / "baseline.json"
    assert run_cli(capsys, "check", str(tmp_path), "--write-baseline", str(baseline)) == (
        0, "", f"recorded 1 third-party reference in {baseline}\n")
    assert baseline.read_bytes() == (b'{\n  "version": 1,\n  "references": [\n    {\n      "path": "caf\\udce9.yaml",\n'
                                     b'      "image": "docker.io/library/nginx:1"\n    }\n  ]\n}\n')
    assert run_cli(capsys, "check", str(tmp_path), "--baseline", str(baseline)) == (
        0, "no third-party references; 1 already known\n", "")


UNREADABLE = {
    "Dockerfile": b'FROM busybox:1\nLABEL x="caf\xe9"\n',
    "pod.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: nginx:1\n  bad: [\n",
}
NOT_UTF8_REASON = "not UTF-8 (byte 0xe9 at offset 27)"
NOT_YAML_REASON = "not valid YAML: expected the node content, but found '<stream end>' (line 7, column 1)"
NOT_UTF8 = f"skipped: {NOT_UTF8_REASON}; the image references in it are not checked"
NOT_YAML = f"skipped: {NOT_YAML_REASON}; the image references in it are not checked"


def test_files_the_scan_could_not_read_are_warnings_in_every_format(tmp_path, capsys):
    write_tree(tmp_path, UNREADABLE)
    assert run_cli(capsys, "check", str(tmp_path)) == (0, (
        f"Dockerfile: warning: {NOT_UTF8}\npod.yaml: warning: {NOT_YAML}\n"
        "no third-party references; 2 files not read\n"
    ), "")
    code, out, _ = run_cli(capsys, "check", str(tmp_path), "--format", "json")
    assert (code, json.loads(out)) == (0, {
        "version": 1, "destination": None, "failed": False, "findings": [], "known": 0, "covered": [],
        "skipped": [
            {"path": "Dockerfile", "reason": NOT_UTF8_REASON},
            {"path": "pod.yaml", "reason": NOT_YAML_REASON},
        ],
    })
    code, out, _ = run_cli(capsys, "check", str(tmp_path), "--format", "sarif")
    sarif = json.loads(out)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    assert (code, sarif["runs"][0]["results"]) == (0, [
        _sarif_result(2, "warning", "Dockerfile", 1, None, NOT_UTF8),
        _sarif_result(2, "warning", "pod.yaml", 1, None, NOT_YAML),
    ])


def test_fail_on_skipped_makes_files_not_read_errors(tmp_path, capsys):
    write_tree(tmp_path, UNREADABLE)
    assert run_cli(capsys, "check", str(tmp_path), "--fail-on-skipped") == (1, (
        f"Dockerfile: error: {NOT_UTF8}\npod.yaml: error: {NOT_YAML}\n"
        "no third-party references; 2 files not read\n"
    ), "")
    code, out, _ = run_cli(capsys, "check", str(tmp_path), "--fail-on-skipped", "--format", "json")
    assert (code, json.loads(out)["failed"]) == (1, True)
    code, out, _ = run_cli(capsys, "check", str(tmp_path), "--fail-on-skipped", "--format", "sarif")
    assert (code, [r["level"] for r in json.loads(out)["runs"][0]["results"]]) == (1, ["error", "error"])


def test_only_the_files_given_that_could_not_be_read_count(tmp_path, capsys, monkeypatch):
    write_tree(tmp_path, {**UNREADABLE, "ok.yaml": "apiVersion: v1\nkind: Pod\n"})
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "check", "Dockerfile", "ok.yaml", "--fail-on-skipped") == (
        1, f"Dockerfile: error: {NOT_UTF8}\nno third-party references; 1 file not read\n", "")
    assert run_cli(capsys, "check", "ok.yaml", "--fail-on-skipped") == (0, "no third-party references\n", "")


# --- files, as pre-commit passes them -----------------------------------------------------------

def test_files_given_are_checked_within_the_whole_tree(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo / "deploy")  # the root is the git top level, wherever the command runs
    # cache/deployment.yaml stays covered: the kustomization that covers it is not among the files
    code = main(["check", "app.yaml", "../cache/deployment.yaml"])
    out, err = capsys.readouterr()
    assert (code, out, err) == (1, (
        f"deploy/app.yaml:12:18: error: third-party image {EXPORTER}: {HOW_TO_FIX}\n"
        f"{SIDECAR}\n"
        "1 third-party reference in 1 file; 1 unresolved; 1 covered\n"
    ), "")


def test_files_given_without_findings_pass(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main(["check", "cache/deployment.yaml", "cache/kustomization.yaml", "README.md"]) == 0
    assert capsys.readouterr() == ("no third-party references; 2 covered\n", "")


def test_a_new_file_counts_before_git_add(repo, capsys, monkeypatch):
    write_tree(repo, {"new/Dockerfile": "FROM alpine:3.20\n"})
    monkeypatch.chdir(repo)
    assert main(["check", "new/Dockerfile"]) == 1
    assert capsys.readouterr() == (
        f"new/Dockerfile:1:6: error: third-party image docker.io/library/alpine:3.20: {HOW_TO_FIX}\n"
        "1 third-party reference in 1 file\n", "")


def test_a_symlink_given_counts_the_findings_of_its_target_and_is_no_file_not_read(repo, capsys, monkeypatch):
    write_tree(repo, {"shared/db.yml": "services:\n  db:\n    image: postgres:16\n"})
    os.symlink("shared/db.yml", repo / "docker-compose.yml")
    monkeypatch.chdir(repo)
    assert main(["check", "docker-compose.yml"]) == 1
    assert capsys.readouterr() == (
        f"shared/db.yml:3:12: error: third-party image docker.io/library/postgres:16: {HOW_TO_FIX}\n"
        "1 third-party reference in 1 file\n", "")
    # Nothing in the link goes unchecked: it is no file --fail-on-skipped fails on, unlike a link to a file the
    # scan leaves out.
    os.symlink("private/db.yml", repo / "compose.yaml")
    write_tree(repo, {"private/db.yml": "services:\n  db:\n    image: mysql:8\n"})
    assert run_cli(capsys, "check", "docker-compose.yml", "compose.yaml", "--fail-on-skipped",
                   "--exclude", "private/**") == (1, (
        f"shared/db.yml:3:12: error: third-party image docker.io/library/postgres:16: {HOW_TO_FIX}\n"
        "compose.yaml: error: skipped: symlink to private/db.yml, which this scan leaves out; the image "
        "references in it are not checked\n"
        "1 third-party reference in 1 file; 1 file not read\n"), "")


def test_a_compose_file_given_counts_the_findings_of_the_files_it_includes_and_extends(repo, capsys, monkeypatch):
    # The commit adds the include: the images already in infra/db.yml join the project now.
    write_tree(repo, {
        "stack/compose.yaml": "include: [../infra/db.yml]\nservices:\n  web:\n    extends: {file: base.yml, service: web}\n",
        "stack/base.yml": "services:\n  web:\n    image: nginx:1.27\n",
        "infra/db.yml": "include: [cache.yml]\nservices:\n  db:\n    image: postgres:16\n",
        "infra/cache.yml": "services:\n  cache:\n    image: redis:7\n",
    })
    monkeypatch.chdir(repo)
    assert main(["check", "stack/compose.yaml"]) == 1
    assert capsys.readouterr() == (
        f"infra/cache.yml:3:12: error: third-party image docker.io/library/redis:7: {HOW_TO_FIX}\n"
        f"infra/db.yml:4:12: error: third-party image docker.io/library/postgres:16: {HOW_TO_FIX}\n"
        f"stack/base.yml:3:12: error: third-party image docker.io/library/nginx:1.27: {HOW_TO_FIX}\n"
        "3 third-party references in 3 files\n", "")
    assert main(["check", "infra/cache.yml"]) == 1
    assert capsys.readouterr()[0].splitlines()[-1] == "1 third-party reference in 1 file"


def test_a_file_given_through_a_symlinked_folder_counts_as_the_file_it_is(tmp_path, capsys, monkeypatch):
    root = make_folder_links(tmp_path)
    git(root, "init", "-q", "-b", "main")
    monkeypatch.chdir(root)
    assert main(["check", ".github/workflows/build.yml"]) == 1
    assert capsys.readouterr() == (
        f"ci/workflows/build.yml:5:16: error: third-party image docker.io/library/node:20: {HOW_TO_FIX}\n"
        "1 third-party reference in 1 file\n", "")


def test_files_given_that_are_not_read_at_all_are_skipped_with_the_reason(repo, capsys, monkeypatch):
    write_tree(repo, {".gitignore": "build/\n", "build/Dockerfile": f"FROM {EXPORTER}\n"})
    os.mkfifo(repo / "pipe.yaml")  # opened for reading, it would hold the check until something writes to it
    monkeypatch.chdir(repo)
    ignored = "ignored by .gitignore (line 1: build/)"
    pipe = "a named pipe, not a file"
    assert run_cli(capsys, "check", "build/Dockerfile", "pipe.yaml", "cache/deployment.yaml") == (0, (
        f"build/Dockerfile: warning: skipped: {ignored}; the image references in it are not checked\n"
        f"pipe.yaml: warning: skipped: {pipe}; the image references in it are not checked\n"
        "no third-party references; 1 covered; 2 files not read\n"
    ), "")
    code, out, _ = run_cli(capsys, "check", "build/Dockerfile", "pipe.yaml", "--fail-on-skipped", "--format", "json")
    assert (code, json.loads(out)) == (1, {
        "version": 1, "destination": None, "failed": True, "findings": [], "known": 0, "covered": [],
        "skipped": [{"path": "build/Dockerfile", "reason": ignored}, {"path": "pipe.yaml", "reason": pipe}],
    })
    git(repo, "add", "-f", "build/Dockerfile")  # tracked, it is part of the tree whatever .gitignore says
    assert run_cli(capsys, "check", "build/Dockerfile") == (1, (
        f"build/Dockerfile:1:6: error: third-party image {EXPORTER}: {HOW_TO_FIX}\n"
        "1 third-party reference in 1 file\n"
    ), "")


def test_files_given_in_a_folder_scans_skip_or_that_exclude_leaves_out_are_skipped_with_the_reason(
        repo, capsys, monkeypatch):
    write_tree(repo, {
        ".gitignore": "docs/\n",
        "docs/Dockerfile": f"FROM {EXPORTER}\n",
        "vendor/app/Dockerfile": f"FROM {EXPORTER}\n",
        "web/node_modules/pkg/vendor/pod.yaml": f"image: {EXPORTER}\n",
    })
    git(repo, "add", ".")  # tracked or not, those folders are never scanned
    monkeypatch.chdir(repo)
    files = ["docs/Dockerfile", "vendor/app/Dockerfile", "web/node_modules/pkg/vendor/pod.yaml", "Dockerfile"]
    excludes = ["--exclude", "*.md", "--exclude", "docs/**", "--exclude", "Dockerfile"]
    # docs/ is also git-ignored: the exclude pattern is what `git add -f` would not change
    reasons = ["excluded by docs/** (--exclude)", "in vendor/, a folder scans always skip",
               "in web/node_modules/, a folder scans always skip", "excluded by Dockerfile (--exclude)"]
    skipped = sorted(zip(files, reasons))
    assert run_cli(capsys, "check", *files, *excludes) == (0, "".join(
        f"{path}: warning: skipped: {why}; the image references in it are not checked\n" for path, why in skipped
    ) + "no third-party references; 4 files not read\n", "")
    code, out, _ = run_cli(capsys, "check", *files, *excludes, "--fail-on-skipped", "--format", "json")
    assert (code, json.loads(out)) == (1, {
        "version": 1, "destination": None, "failed": True, "findings": [], "known": 0, "covered": [],
        "skipped": [{"path": path, "reason": why} for path, why in skipped],
    })
    code, out, _ = run_cli(capsys, "check", *files, *excludes, "--format", "sarif")
    sarif = json.loads(out)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    assert (code, sarif["runs"][0]["results"]) == (0, [
        _sarif_result(2, "warning", path, 1, None, f"skipped: {why}; the image references in it are not checked")
        for path, why in skipped
    ])


def test_a_file_given_that_rehome_yaml_excludes_is_skipped_naming_the_file_and_key(repo, capsys, monkeypatch):
    write_tree(repo, {"rehome.yaml": 'exclude: ["cache/**", "deploy/**"]\n'})
    monkeypatch.chdir(repo / "deploy")
    assert run_cli(capsys, "check", "app.yaml") == (0, (
        f"deploy/app.yaml: warning: skipped: excluded by deploy/** ({repo}/rehome.yaml, key 'exclude'); "
        "the image references in it are not checked\n"
        "no third-party references; 1 file not read\n"
    ), "")


def test_a_file_given_that_no_include_pattern_matches_is_skipped_naming_the_patterns(repo, capsys, monkeypatch):
    write_tree(repo, {"deploy/Dockerfile": f"FROM {EXPORTER}\n", "tools/Dockerfile": f"FROM {EXPORTER}\n"})
    monkeypatch.chdir(repo)
    files = ["deploy/Dockerfile", "tools/Dockerfile"]
    code, out, _ = run_cli(capsys, "check", *files, "--include", "deploy/**", "--include", "*.json",
                           "--exclude", "tools/**", "--format", "json")
    # an include that leaves the file out is said before an exclude that would too
    assert (code, json.loads(out)["skipped"]) == (1, [
        {"path": "tools/Dockerfile", "reason": "matched by no include pattern (deploy/**, *.json; --include)"},
    ])
    write_tree(repo, {"rehome.yaml": 'include: ["deploy/**"]\n'})
    assert run_cli(capsys, "check", *files) == (1, (
        f"deploy/Dockerfile:1:6: error: third-party image {EXPORTER}: {HOW_TO_FIX}\n"
        f"tools/Dockerfile: warning: skipped: matched by no include pattern (deploy/**; {repo}/rehome.yaml, "
        "key 'include'); the image references in it are not checked\n"
        "1 third-party reference in 1 file; 1 file not read\n"
    ), "")


def test_a_named_pipe_given_outside_git_is_skipped_unopened(tmp_path, capsys, monkeypatch):
    os.mkfifo(tmp_path / "pipe.yaml")
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "check", "pipe.yaml") == (0, (
        "pipe.yaml: warning: skipped: a named pipe, not a file; the image references in it are not checked\n"
        "no third-party references; 1 file not read\n"
    ), "")


def test_files_outside_git_are_relative_to_the_current_folder(tmp_path, capsys, monkeypatch):
    write_tree(tmp_path, {"a/Dockerfile": "FROM alpine:3.20\n", "b/Dockerfile": "FROM alpine:3.19\n"})
    monkeypatch.chdir(tmp_path)
    assert main(["check", "a/Dockerfile", str(tmp_path / "b" / "Dockerfile")]) == 1
    assert capsys.readouterr() == (
        f"a/Dockerfile:1:6: error: third-party image docker.io/library/alpine:3.20: {HOW_TO_FIX}\n"
        f"b/Dockerfile:1:6: error: third-party image docker.io/library/alpine:3.19: {HOW_TO_FIX}\n"
        "2 third-party references in 2 files\n", "")


def test_files_given_are_checked_in_their_repository_wherever_the_command_runs(repo, tmp_path, capsys, monkeypatch):
    write_tree(repo, {"rehome.yaml": f"destination: {DEST}\n"})
    elsewhere = write_tree(tmp_path / "elsewhere", {"rehome.yaml": "destination: elsewhere.example.com/m\n"})
    git(elsewhere, "init", "-q")
    for folder in (elsewhere, tmp_path):  # another checkout, a folder outside git
        monkeypatch.chdir(folder)
        assert run_cli(capsys, "check", str(repo / "Dockerfile")) == (1, (
            f"Dockerfile:1:6: error: third-party image {PYTHON}: use {DEST}/{PYTHON}\n"
            f"Dockerfile:2:13: error: third-party image {UV}: use {DEST}/{UV}\n"
            "2 third-party references in 1 file\n"
        ), "")


def test_files_of_two_repositories_are_a_usage_error(repo, tmp_path, capsys):
    other = write_tree(tmp_path / "other", {"Dockerfile": "FROM alpine:3.20\n"})
    git(other, "init", "-q")
    plain = write_tree(tmp_path / "plain", {"Dockerfile": "FROM alpine:3.20\n"})
    assert run_cli(capsys, "check", str(repo / "Dockerfile"), str(other / "Dockerfile")) == (2, "", (
        f"rehome: error: {repo}/Dockerfile is in the repository at {repo}, {other}/Dockerfile in the repository "
        f"at {other}: give the files of one repository at a time\n"))
    assert run_cli(capsys, "check", str(plain / "Dockerfile"), str(repo / "Dockerfile")) == (2, "", (
        f"rehome: error: {plain}/Dockerfile is in no git repository, {repo}/Dockerfile in the repository "
        f"at {repo}: give the files of one repository at a time\n"))


@pytest.mark.parametrize(("argv", "message"), [
    (["missing.yaml"], "missing.yaml: no such file or directory"),
    (["deploy", "Dockerfile"], "deploy: a folder: give one folder to check, or files, not both"),
    (["../outside.yaml"], "../outside.yaml: outside {repo}, the root of this check"),
    ([".", "--to", " "], "--to is empty: give the mirror prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY"),
])
def test_bad_files_are_usage_errors(repo, capsys, monkeypatch, argv, message):
    (repo.parent / "outside.yaml").write_text("image: nginx\n")
    monkeypatch.chdir(repo)
    assert run_cli(capsys, "check", *argv) == (2, "", f"rehome: error: {message.format(repo=repo)}\n")


# --- baselines ----------------------------------------------------------------------------------

def test_a_baseline_that_is_not_a_file_is_refused(repo, capsys):
    assert run_cli(capsys, "check", str(repo), "--baseline", os.devnull) == (
        2, "", f"rehome: error: {os.devnull}: cannot read the baseline: a device or socket, not a file\n")


def test_write_baseline_records_the_third_party_references(repo, capsys, tmp_path):
    baseline = tmp_path / "baseline.json"
    assert run_cli(capsys, "check", str(repo), "--write-baseline", str(baseline)) == (
        0, "", "recorded 3 third-party references in " + str(baseline) + "\n")
    assert baseline.read_text() == json.dumps({
        "version": 1,
        "references": [
            {"path": "Dockerfile", "image": PYTHON},
            {"path": "Dockerfile", "image": UV},
            {"path": "deploy/app.yaml", "image": EXPORTER},
        ],
    }, indent=2) + "\n"
    # stable: writing again gives the same bytes
    before = baseline.read_bytes()
    run_cli(capsys, "check", str(repo), "--write-baseline", str(baseline))
    assert baseline.read_bytes() == before


def test_baseline_fails_only_on_references_it_does_not_hold(repo, capsys, tmp_path):
    baseline = tmp_path / "baseline.json"
    run_cli(capsys, "check", str(repo), "--write-baseline", str(baseline))
    assert run_cli(capsys, "check", str(repo), "--baseline", str(baseline)) == (
        0, f"{SIDECAR}\nno third-party references; 3 already known; 1 unresolved; 2 covered\n", "")
    # Moved lines and a second use of a known image in the same file are not new; a new image,
    # or a known image in another file, is.
    (repo / "Dockerfile").write_text(
        "# the build stage\n"
        "FROM python:3.12-slim AS build\n"
        "COPY --from=ghcr.io/astral-sh/uv:0.4.18 /uv /bin/uv\n"
        "COPY --from=ghcr.io/astral-sh/uv:0.4.18 /uvx /bin/uvx\n"
        "FROM node:22-alpine AS assets\n"
        "FROM us-docker.pkg.dev/acme/mirror/docker.io/library/nginx:1.27.4\n"
    )
    write_tree(repo, {"tools/Dockerfile": "FROM python:3.12-slim\n"})
    git(repo, "add", ".")
    assert run_cli(capsys, "check", str(repo), "--baseline", str(baseline)) == (1, (
        f"Dockerfile:5:6: error: third-party image docker.io/library/node:22-alpine: {HOW_TO_FIX}\n"
        f"{SIDECAR}\n"
        f"tools/Dockerfile:1:6: error: third-party image {PYTHON}: {HOW_TO_FIX}\n"
        "2 third-party references in 2 files; 4 already known; 1 unresolved; 2 covered\n"
    ), "")


@pytest.mark.parametrize(("content", "message"), [
    (None, "{path}: baseline not found\nhint: write one with `rehome check --write-baseline FILE`"),
    ("{", "{path}: cannot read the baseline: Expecting property name enclosed in double quotes: "
          "line 1 column 2 (char 1)"),
    pytest.param('{"version": 1, "references": ' + "[" * 200_000 + "]" * 200_000 + "}",
                 "{path}: cannot read the baseline: nested deeper than JSON can be read (about a thousand levels of "
                 "arrays or objects)", id="nested-too-deep"),
    ('{"version": 2, "references": []}',
     '{path}: not a rehome baseline (expected a JSON object with "version": 1)'),
    ('{"version": 1, "references": [{"path": "Dockerfile"}]}',
     '{path}: "references" must be a list of {{"path", "image"}} objects'),
])
def test_a_bad_baseline_is_a_usage_error(repo, capsys, tmp_path, content, message):
    baseline = tmp_path / "baseline.json"
    if content is not None:
        baseline.write_text(content)
    assert run_cli(capsys, "check", str(repo), "--baseline", str(baseline)) == (
        2, "", f"rehome: error: {message.format(path=baseline)}\n")


def test_write_baseline_goes_alone(repo, capsys, tmp_path):
    assert run_cli(capsys, "check", str(repo), "--write-baseline", "b.json", "--new-since", "HEAD") == (
        2, "", "rehome: error: --write-baseline records every current finding: give it without --baseline and "
               "--new-since\n")


def test_write_baseline_never_replaces_a_device_or_a_named_pipe(repo, capsys, tmp_path):
    pipe, device = tmp_path / "pipe", tmp_path / "null"
    os.mkfifo(pipe)
    device.symlink_to(os.devnull)
    for target, what in ((pipe, "a named pipe"), (device, "a device or socket")):
        assert run_cli(capsys, "check", str(repo), "--write-baseline", str(target)) == (
            2, "", f"rehome: error: {target}: is {what}, not a file; nothing was written\n")
    assert stat.S_ISFIFO(pipe.lstat().st_mode) and device.is_symlink() and stat.S_ISCHR(device.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "pipe", "repo"]


# --- --new-since REF ----------------------------------------------------------------------------

def test_new_since_fails_only_on_references_added_since_the_ref(repo, capsys):
    # a link leading out of the tree at the ref is left out of the export, not followed
    (repo / "etc").symlink_to("/etc")
    git(repo, "add", "etc")
    git(repo, "commit", "-q", "-m", "link")
    git(repo, "checkout", "-q", "-b", "feature")
    # The Dockerfile's lines move down; the exporter moves to another container; one image is new.
    dockerfile = (repo / "Dockerfile").read_text()
    (repo / "Dockerfile").write_text("# syntax is plain\n\n" + dockerfile)
    app = (repo / "deploy" / "app.yaml").read_text()
    (repo / "deploy" / "app.yaml").write_text(app + "        - name: cache\n          image: redis:7.4\n")
    git(repo, "commit", "-q", "-am", "more")
    assert run_cli(capsys, "check", str(repo), "--new-since", "main") == (1, (
        f"{SIDECAR}\n"
        f"deploy/app.yaml:16:18: error: third-party image docker.io/library/redis:7.4: {HOW_TO_FIX}\n"
        "1 third-party reference in 1 file; 3 already known; 1 unresolved; 2 covered\n"
    ), "")
    # uncommitted work counts too: it is the tree that is checked
    (repo / "deploy" / "app.yaml").write_text(app)
    assert run_cli(capsys, "check", str(repo), "--new-since", "main")[0] == 0


def test_new_since_in_a_folder_of_the_repository(repo, capsys):
    write_tree(repo, {"services/web/Dockerfile": "FROM nginx:1.27\n"})
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "web")
    (repo / "services" / "web" / "Dockerfile").write_text("FROM nginx:1.27\nFROM alpine:3.20\n")
    assert run_cli(capsys, "check", str(repo / "services"), "--new-since", "HEAD") == (1, (
        f"web/Dockerfile:2:6: error: third-party image docker.io/library/alpine:3.20: {HOW_TO_FIX}\n"
        "1 third-party reference in 1 file; 1 already known\n"
    ), "")
    # a folder that did not exist at the ref: everything in it is new
    assert run_cli(capsys, "check", str(repo / "services"), "--new-since", "HEAD~1") == (1, (
        f"web/Dockerfile:1:6: error: third-party image docker.io/library/nginx:1.27: {HOW_TO_FIX}\n"
        f"web/Dockerfile:2:6: error: third-party image docker.io/library/alpine:3.20: {HOW_TO_FIX}\n"
        "2 third-party references in 1 file\n"
    ), "")


def test_new_since_needs_a_commit_in_a_git_checkout(repo, tmp_path, capsys):
    assert run_cli(capsys, "check", str(repo), "--new-since", "nope") == (
        2, "", f"rehome: error: --new-since nope: no such commit in {repo}\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert run_cli(capsys, "check", str(plain), "--new-since", "HEAD") == (
        2, "", f"rehome: error: {plain}: --new-since needs a git checkout\n")


# --- the pre-commit hook ------------------------------------------------------------------------

CHECKOUT = Path(__file__).resolve().parent.parent.parent


def _pre_commit(repo: Path, home: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--color", "never", *args],
        cwd=repo, env=env, capture_output=True, text=True, check=False,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_pre_commit_hook_checks_only_the_staged_files(tmp_path):
    # pre-commit clones the hook repository at a commit: this checkout's HEAD.
    head = git(CHECKOUT, "rev-parse", "HEAD").strip()
    repo = tmp_path / "project"
    write_tree(repo, {
        ".pre-commit-config.yaml": (
            f"repos:\n  - repo: {CHECKOUT}\n    rev: {head}\n    hooks:\n      - id: rehome-check\n"
        ),
        "Dockerfile": "FROM python:3.12-slim\n",
    })
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "start")
    # A staged manifest with a third-party image; the committed Dockerfile is not staged; a vendored
    # file is never passed (the hook's default exclude), so it is not even listed as not read.
    write_tree(repo, {
        "deploy/app.yaml": "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - name: a\n      image: redis:7.4\n",
        "notes.md": "image: redis:7.4\n",
        "web/vendor/lib/Dockerfile": "FROM redis:7.4\n",
    })
    git(repo, "add", "deploy/app.yaml", "notes.md", "web/vendor/lib/Dockerfile")
    code, output = _pre_commit(repo, tmp_path / "cache")
    assert code == 1, output
    assert output.endswith(
        "- hook id: rehome-check\n- exit code: 1\n\n"
        f"deploy/app.yaml:6:14: error: third-party image docker.io/library/redis:7.4: {HOW_TO_FIX}\n"
        "1 third-party reference in 1 file\n\n"
    ), output
    # Moved to the mirror, the staged file passes, though the Dockerfile still uses Docker Hub.
    (repo / "deploy" / "app.yaml").write_text(
        "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - name: a\n"
        f"      image: {DEST}/docker.io/library/redis:7.4\n"
    )
    git(repo, "add", "deploy/app.yaml")
    code, output = _pre_commit(repo, tmp_path / "cache")
    assert code == 0, output
    assert "rehome check" in output and "Passed" in output, output
    code, output = _pre_commit(repo, tmp_path / "cache", "--all-files")
    assert code == 1, output
    assert f"Dockerfile:1:6: error: third-party image {PYTHON}: {HOW_TO_FIX}\n" in output, output
