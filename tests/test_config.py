"""`rehome.yaml`: a value it cannot use is refused naming the file and the key, in words."""
from __future__ import annotations

import pytest

from bot.config import config_folder, load_config
from bot.errors import ConfigError
from tests.helpers import run_cli, write_tree

KNOWN_KEYS = ("(known keys: assignees, author, branch, destination, draft, exclude, exclude_images, include, "
              "insecure_registries, internal, labels, mapping, max_file_size, pin_digest, reviewers, rules, "
              "sync_upstreams, templates, title)")
NAMELESS = "a key without a name (a line starting with ':', or the key null or ~)"
SIZE_EXAMPLES = "is not a size (examples: 5242880, 5MiB, 500kB)"


@pytest.mark.parametrize("text, problem", [
    (": : :\n", f"{NAMELESS} {KNOWN_KEYS}"),
    ("null: x\n", f"{NAMELESS} {KNOWN_KEYS}"),
    ("destinaton: x\n: y\n", f"unknown key 'destinaton'; {NAMELESS} {KNOWN_KEYS}"),
    ("1: x\nfoo: y\n", f"unknown key 'foo', 1 {KNOWN_KEYS}"),
    ("max_file_size: [1]\n", f"key 'max_file_size': [1] {SIZE_EXAMPLES}"),
    ("max_file_size: 0\n", f"key 'max_file_size': 0 {SIZE_EXAMPLES}"),
    ("max_file_size: 5 parsecs\n", f"key 'max_file_size': '5 parsecs' {SIZE_EXAMPLES}"),
    ("- destination: x\n", "must hold keys and their values (destination: ..., rules: ...), not [{'destination': 'x'}]"),
], ids=["empty-keys", "null-key", "unknown-and-empty-key", "number-key", "size-list", "size-zero", "size-unit",
        "a-list"])
def test_a_rehome_yaml_that_does_not_validate_says_what_is_wrong(tmp_path, capsys, text, problem):
    write_tree(tmp_path, {"rehome.yaml": text})
    code, out, err = run_cli(capsys, "scan", str(tmp_path))
    assert (code, out, err) == (2, "", f"rehome: error: {tmp_path / 'rehome.yaml'}: {problem}\n")


@pytest.mark.parametrize("key", ["rules", "templates"])
def test_a_folder_rehome_yaml_names_must_exist(tmp_path, key):
    write_tree(tmp_path, {"rehome.yaml": f"{key}: ops/{key}\n", "ops/readme.md": "no folder here\n"})
    config = load_config(tmp_path / "rehome.yaml")
    with pytest.raises(ConfigError) as excinfo:
        config_folder(config, key)
    assert str(excinfo.value) == f"{tmp_path / 'rehome.yaml'}: key {key!r}: ops/{key} does not exist or is not a folder"
    (tmp_path / "ops" / key).mkdir()
    assert config_folder(config, key) == tmp_path / "ops" / key


def test_a_missing_rules_folder_of_rehome_yaml_is_named_by_its_key(tmp_path, capsys):
    write_tree(tmp_path, {"rehome.yaml": "rules: nope\n", "Dockerfile": "FROM alpine:3.19\n"})
    code, out, err = run_cli(capsys, "scan", str(tmp_path))
    assert (code, out, err) == (
        2, "", f"rehome: error: {tmp_path / 'rehome.yaml'}: key 'rules': nope does not exist or is not a folder\n")
    (tmp_path / "mine").mkdir()
    assert run_cli(capsys, "scan", str(tmp_path), "--rules", str(tmp_path / "mine"))[0] == 0  # the flag wins


def test_a_key_given_twice_is_named_with_its_line(tmp_path, capsys):
    write_tree(tmp_path, {"rehome.yaml": "destination: a.example/m\npin_digest: true\ndestination: b.example/m\n"})
    assert run_cli(capsys, "scan", str(tmp_path)) == (
        2, "", f"rehome: error: {tmp_path / 'rehome.yaml'}: not valid YAML: duplicate key 'destination' at line 3\n")


def test_yaml_nested_too_deeply_is_named(tmp_path, capsys):
    write_tree(tmp_path, {"rehome.yaml": "destination: " + "[" * 5000 + "]" * 5000 + "\n"})
    assert run_cli(capsys, "scan", str(tmp_path)) == (
        2, "", f"rehome: error: {tmp_path / 'rehome.yaml'}: not valid YAML: nested too deeply\n")


def test_other_yaml_errors_are_said_in_one_line(tmp_path, capsys):
    write_tree(tmp_path, {"rehome.yaml": "destination: [::1]:5000/mirror\n"})
    assert run_cli(capsys, "scan", str(tmp_path)) == (
        2, "", f"rehome: error: {tmp_path / 'rehome.yaml'}: not valid YAML: expected <block end>, but found "
               "'<scalar>' (line 1, column 19)\n")
