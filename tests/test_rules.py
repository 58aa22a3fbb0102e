from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.resources import data_dir
from bot import rules as rules_module
from bot.rules import Rule, RuleSelector, load_rules
from tests.helpers import run_cli, scan_json, write_tree
from tests.test_globs import TRICKY

FIXTURES = Path(__file__).parent / "scan" / "fixtures"


def test_every_rule_has_fixtures_that_it_reads(capsys):
    """A rule without fixture files is untested: each kind needs a fixtures folder named after it."""
    missing, silent = [], []
    for rule in load_rules():
        folders = [p for p in FIXTURES.rglob(rule.kind) if p.is_dir() and any(p.rglob("*"))]
        if not folders:
            missing.append(rule.kind)
            continue
        kinds = {r["kind"] for folder in folders for r in scan_json(capsys, folder)["references"]}
        if rule.kind not in kinds and not rule.builds:
            silent.append(rule.kind)
    assert missing == []
    assert silent == []


def test_builtin_rules_load_in_priority_order():
    rules = load_rules(validate_builtin=True)
    assert [r.kind for r in rules] == [r.kind for r in sorted(rules, key=lambda r: (r.priority, r.kind))]
    # The generic kubernetes rule reads what no specific one took; only values files outside a chart come after it.
    assert [r.kind for r in rules][-2:] == ["kubernetes", "helm-release-values"]
    assert all(r.source.parent == data_dir("rules") for r in rules)


def test_the_selector_gives_for_each_path_the_rules_that_select_it(shared_dir):
    rules = tuple(load_rules())
    selector = RuleSelector(rules)
    corpus = shared_dir / "corpus"
    paths = TRICKY + sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*") if p.is_file())
    assert [path for path in paths if selector.select(path) != tuple(r for r in rules if r.selects(path))] == []


def test_rules_with_the_same_file_patterns_test_a_path_once(monkeypatch):
    """Five rules read `**/*.yaml`: one of them tests a path for all; rules that cannot select
    the base name (`Dockerfile`, `values.yaml`) are not asked."""
    rules, tested = tuple(load_rules()), []
    selects = Rule.selects
    monkeypatch.setattr(Rule, "selects", lambda rule, path: tested.append(rule.kind) or selects(rule, path))
    assert [rule.kind for rule in RuleSelector(rules).select("k8s/app.yaml")] == [
        "argo-workflows", "crossplane", "knative", "tekton", "kubernetes"]
    assert tested == ["helm-template", "github-actions", "gitlab-ci", "argo-workflows"]


def test_builtin_rules_files_are_read_once_and_users_files_every_time(tmp_path, monkeypatch):
    """A sweep loads the rules for each repository: the built-in files do not change, a repository's rules may."""
    load_rules()  # the built-in files read once in this process, whenever that was
    write_tree(tmp_path, {"mine.yaml": "extractor: yaml\nfiles: ['*.y']\nimages: ['image']\n"})
    read = []
    monkeypatch.setattr(rules_module, "_read_rule_file", lambda path: read.append(path.name) or {
        "extractor": "yaml", "files": ["*.y"], "images": ["image"]})
    first, second = load_rules([tmp_path]), load_rules([tmp_path])
    assert read == ["mine.yaml", "mine.yaml"]
    assert first == second and [r.kind for r in first].count("mine") == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("extractor: yaml\n", "field '(top level)': 'files' is a required property"),
        ("extractor: toml\nfiles: ['*.toml']\n", "field 'extractor': 'toml' is not one of ['dockerfile', 'yaml', 'helm-values', 'helm-template', 'kustomize']"),
        ("extractor: yaml\nfiles: ['*.y']\ncontains: ['(']\n", "field 'contains': invalid regular expression '(': missing ), unterminated subpattern at position 0"),
        ("extractor: yaml\nfiles: ['*.y']\nimages: ['a..b']\n", "field 'images.0': 'a..b' is not a key path\nhint: "),
        ("extractor: yaml\nfiles: ['*.y']\nimagse: []\n", "unknown field 'imagse'"),
        ("extractor: yaml\nfiles: ['*.y']\nextends: nothing\n", "field 'extends': no rule named 'nothing'"),
        ("extractor: yaml\nfiles: ['*.y']\nfolder_merges: ['services.*']\n",
         "field '(top level)': 'skip_if_sibling' is a dependency of 'folder_merges'"),
        ("- a\n", "a rules file must be a mapping of fields"),
        pytest.param("files: " + "[" * 5000 + "]" * 5000 + "\n", "rules file is nested too deeply",
                     id="nested-too-deep"),
    ],
)
def test_a_broken_rules_file_is_a_clear_error(tmp_path, content, message):
    (tmp_path / "mine.yaml").write_text(content)
    with pytest.raises(ConfigError) as excinfo:
        load_rules([tmp_path])
    assert str(excinfo.value).startswith(f"{tmp_path / 'mine.yaml'}: {message}")


@pytest.mark.parametrize("field", ["images", "builds", "names_files", "folder_merges", "prefixed_images: {'docker://'"])
def test_a_key_path_that_is_not_one_says_how_key_paths_are_written(tmp_path, capsys, field):
    value = f"{field}: ['spec..image']}}" if "{" in field else f"{field}: ['spec..image']"
    rules = write_tree(tmp_path / "rules", {"jobs.yaml": f"extractor: yaml\nfiles: ['*.job']\nskip_if_sibling: [build]\n"
                                                         f"{value}\n"})
    write_tree(tmp_path / "repo", {"Dockerfile": "FROM alpine:3.20\n"})
    where = "prefixed_images.docker://.0" if "{" in field else f"{field}.0"
    assert run_cli(capsys, "scan", str(tmp_path / "repo"), "--rules", str(rules)) == (
        2, "", f"rehome: error: {rules / 'jobs.yaml'}: field '{where}': 'spec..image' is not a key path\n"
               "hint: write keys separated by dots, each a key name (\\. for a dot inside it), *, name*, or **, "
               "with [] after it for the items of a list, e.g. spec.containers[].image; see docs/rules.md\n")


@pytest.mark.parametrize(("content", "problem"), [
    ("extractor: yaml\nfiles: ['*.job']\nimages: [task.runner]\nfiles: ['*.task']\n", "duplicate key 'files' at line 4"),
    ("extractor: yaml\nfiles: ['*.job'\n", "did not find expected ',' or ']' (line 3, column 1)"),
], ids=["duplicate-key", "unclosed-list"])
def test_a_rules_file_that_is_not_valid_yaml_is_named_in_one_line_as_rehome_yaml_is(tmp_path, capsys, content, problem):
    rules = write_tree(tmp_path / "rules", {"jobs.yaml": content})
    write_tree(tmp_path / "repo", {"Dockerfile": "FROM alpine:3.20\n"})
    assert run_cli(capsys, "scan", str(tmp_path / "repo"), "--rules", str(rules)) == (
        2, "", f"rehome: error: {rules / 'jobs.yaml'}: not valid YAML: {problem}\n")


def test_a_user_rule_replaces_the_builtin_of_the_same_name(tmp_path, capsys):
    rules = tmp_path / "rules"
    write_tree(rules, {"compose.yaml": "extractor: yaml\nfiles: ['**/stack.yml']\nimages: ['services.*.image']\n"})
    write_tree(tmp_path / "repo", {
        "stack.yml": "services:\n  db:\n    image: postgres:16\n",
        "docker-compose.yml": "services:\n  db:\n    image: mysql:8\n",
    })
    refs = scan_json(capsys, tmp_path / "repo", "--rules", str(rules))["references"]
    assert [(r["path"], r["kind"], r["raw"]) for r in refs] == [("stack.yml", "compose", "postgres:16")]
    code, _, err = run_cli(capsys, "scan", str(tmp_path / "repo"), "--rules", str(tmp_path / "nope"))
    assert (code, err) == (2, f"rehome: error: {tmp_path / 'nope'}: rules directory not found\n")
    code, _, err = run_cli(capsys, "scan", str(tmp_path / "repo"), "--rules", str(tmp_path / "repo" / "stack.yml"))
    assert (code, err) == (2, f"rehome: error: {tmp_path / 'repo' / 'stack.yml'}: a file, not a folder of rule files\n")
