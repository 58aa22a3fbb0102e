"""Declarative rules: which files hold image references, and which extractor reads them.

Each `rules/*.yaml` file is one rule; its file name is the `kind` of the references it
finds. Rules are tried in `priority` order (lowest first, then by name); the first rule
that selects a file reads it. A user rules directory adds rules, and a user rule with a
built-in's name replaces it.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.config import not_valid_yaml
from bot.errors import ConfigError
from bot.globs import matches_any, name_filter
from bot.resources import data_dir

EXTRACTORS = ("dockerfile", "yaml", "helm-values", "helm-template", "kustomize")

_PATH_SEGMENT = r"(?:\*\*|\*|(?:[A-Za-z0-9_$-]|\\\.)+\*?)(?:\[\])?"
KEY_PATH_RE = re.compile(rf"^{_PATH_SEGMENT}(?:\.{_PATH_SEGMENT})*$")
_KEY_PATH_HINT = ("write keys separated by dots, each a key name (\\. for a dot inside it), *, name*, or **, "
                  "with [] after it for the items of a list, e.g. spec.containers[].image; see docs/rules.md")

RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["extractor", "files"],
    # Only `skip_if_sibling` says what builds: without it there is nothing to merge.
    "dependentRequired": {"folder_merges": ["skip_if_sibling"]},
    "properties": {
        "description": {"type": "string"},
        "priority": {"type": "integer"},
        "extractor": {"enum": list(EXTRACTORS)},
        "files": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "exclude_files": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "inside_dir_with": {"type": "string", "minLength": 1},
        "contains": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "documents": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "contains": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "keys": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "match": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "extends": {"type": "string", "minLength": 1},
        "images": {"type": "array", "items": {"type": "string", "pattern": KEY_PATH_RE.pattern}},
        "prefixed_images": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string", "pattern": KEY_PATH_RE.pattern}},
        },
        "builds": {"type": "array", "items": {"type": "string", "pattern": KEY_PATH_RE.pattern}},
        "not_images": {"type": "array", "items": {"type": "string", "pattern": KEY_PATH_RE.pattern}},
        "skip_if_sibling": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "entry_extends": {"type": "string", "minLength": 1},
        "folder_merges": {"type": "array", "items": {"type": "string", "pattern": KEY_PATH_RE.pattern}},
        "services": {"type": "array", "items": {"type": "string", "pattern": KEY_PATH_RE.pattern}},
        "anchor_holders": {"type": "array", "items": {"type": "string", "pattern": KEY_PATH_RE.pattern}},
        "literal_dollar": {"type": "boolean"},
        "names_files": {"type": "array", "items": {"type": "string", "pattern": KEY_PATH_RE.pattern}},
    },
}


@dataclasses.dataclass(frozen=True)
class Rule:
    kind: str
    source: Path
    extractor: str
    files: tuple[str, ...]
    priority: int = 500
    description: str = ""
    exclude_files: tuple[str, ...] = ()
    inside_dir_with: str | None = None
    contains: tuple[re.Pattern[str], ...] = ()
    document_contains: tuple[re.Pattern[str], ...] = ()
    document_keys: tuple[str, ...] = ()
    document_match: tuple[tuple[str, re.Pattern[str]], ...] = ()
    images: tuple[str, ...] = ()
    prefixed_images: tuple[tuple[str, str], ...] = ()  # (prefix, key path)
    builds: tuple[str, ...] = ()
    # key paths where a value is not an image, even where `images` reach (an alias of it elsewhere still may be)
    not_images: tuple[str, ...] = ()
    skip_if_sibling: tuple[str, ...] = ()
    # a key by which the mapping holding an image takes on another entry of the mapping holding it (compose
    # `extends: base` or `extends: {service: base}`), or of the mapping at the same place of another file
    # (`extends: {file: common.yml, service: base}`): a `skip_if_sibling` key that entry has counts as its own
    entry_extends: str | None = None
    # key paths of entries that the rule's files in one folder merge by name (Compose reads `compose.yaml` with
    # `compose.override.yaml`, or the files `-f` names): where one of them builds an entry (`skip_if_sibling`,
    # `entry_extends`), the images the others give an entry of that name are that build's output
    folder_merges: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    # key paths the tool never reads, there to hold YAML anchors (Compose `x-` extension fields,
    # GitLab hidden keys), or holding copies of images (GitLab variables): nothing under them
    # counts as a use of an anchor
    anchor_holders: tuple[str, ...] = ()
    # `$$` is a `$` written out, not a variable (Compose, GitLab CI, Cloud Build)
    literal_dollar: bool = False
    # key paths whose values name other files of the same kind, whatever their names, relative to the
    # file's folder (compose `include:`, `extends: {file: ...}`): the scan reads them with this rule
    names_files: tuple[str, ...] = ()

    def selects(self, path: str) -> bool:
        return matches_any(path, self.files) and not (self.exclude_files and matches_any(path, self.exclude_files))

    def may_select_name(self, name: str) -> bool:
        """Whether the rule may select a path with this base name (see `name_filter`)."""
        names = name_filter(self.files)
        return names is None or names.match(name) is not None

    def text_may_hold_references(self, text: str) -> bool:
        return all(p.search(text) for p in self.contains)


class RuleSelector:
    """The rules that select each path of a tree, in their order, as `Rule.selects` says: rules with
    the same file patterns test a path once, and only those that may select its base name (known
    for each base name once)."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        patterns = list(dict.fromkeys((rule.files, rule.exclude_files) for rule in rules))
        self._tester_of = [patterns.index((rule.files, rule.exclude_files)) for rule in rules]
        # The first rule with each set of file patterns tests paths for all the rules with it.
        self._testers = [rules[self._tester_of.index(index)] for index in range(len(patterns))]
        self._by_name: dict[str, tuple[int, ...]] = {}
        self._by_testers: dict[tuple[int, ...], tuple[Rule, ...]] = {}

    def select(self, path: str) -> tuple[Rule, ...]:
        name = path.rpartition("/")[2]
        testers = self._by_name.get(name)
        if testers is None:
            testers = self._by_name[name] = tuple(
                index for index, tester in enumerate(self._testers) if tester.may_select_name(name))
        selecting = tuple(index for index in testers if self._testers[index].selects(path))
        rules = self._by_testers.get(selecting)
        if rules is None:
            rules = self._by_testers[selecting] = tuple(
                rule for rule, tester in zip(self.rules, self._tester_of) if tester in selecting)
        return rules


def _regex(source: Path, field: str, text: str) -> re.Pattern[str]:
    try:
        return re.compile(text, re.MULTILINE)
    except re.error as exc:
        raise ConfigError(f"{source}: field {field!r}: invalid regular expression {text!r}: {exc}") from None


def _value_regex(source: Path, field: str, glob: str) -> re.Pattern[str]:
    """`match` values are `|`-separated globs on the whole value, e.g. `tekton.dev/*`."""
    options = "|".join(re.escape(g).replace(r"\*", ".*") for g in glob.split("|"))
    return _regex(source, field, rf"(?:{options})\Z")


def _read_rule_file(path: Path) -> dict[str, Any]:
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read rules file: {exc}") from None
    except YAMLError as exc:
        raise not_valid_yaml(path, exc) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a rules file must be a mapping of fields")
    return data


@lru_cache(maxsize=None)
def _read_builtin_rule_file(path: Path) -> dict[str, Any]:
    """A built-in rules file, read once per process: a sweep loads the rules for every repository."""
    return _read_rule_file(path)


def validate_rule(path: Path, data: dict[str, Any]) -> None:
    import jsonschema  # only needed for rules the user wrote: it takes longer to import than a scan of a repository

    try:
        errors = sorted(
            jsonschema.Draft202012Validator(RULE_SCHEMA).iter_errors(data),
            key=lambda e: list(map(str, e.absolute_path)),
        )
    except RecursionError:  # an error describes the value it refuses: one nested thousands deep cannot be
        raise ConfigError(f"{path}: rules file is nested too deeply") from None
    if errors:
        error = errors[0]
        field = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema["properties"]))
            raise ConfigError(f"{path}: unknown field {', '.join(map(repr, extra))}")
        if error.validator == "pattern" and error.validator_value == KEY_PATH_RE.pattern:
            raise ConfigError(f"{path}: field {field!r}: {error.instance!r} is not a key path", hint=_KEY_PATH_HINT)
        raise ConfigError(f"{path}: field {field!r}: {error.message}")


def _rule_from_data(kind: str, path: Path, data: dict[str, Any]) -> Rule:
    documents = data.get("documents", {})
    prefixed = tuple(
        (prefix, key_path) for prefix, paths in data.get("prefixed_images", {}).items() for key_path in paths
    )
    return Rule(
        kind=kind,
        source=path,
        extractor=data["extractor"],
        files=tuple(data["files"]),
        priority=data.get("priority", 500),
        description=data.get("description", ""),
        exclude_files=tuple(data.get("exclude_files", ())),
        inside_dir_with=data.get("inside_dir_with"),
        contains=tuple(_regex(path, "contains", c) for c in data.get("contains", ())),
        document_contains=tuple(_regex(path, "documents.contains", c) for c in documents.get("contains", ())),
        document_keys=tuple(documents.get("keys", ())),
        document_match=tuple(
            (key, _value_regex(path, f"documents.match.{key}", glob)) for key, glob in documents.get("match", {}).items()
        ),
        images=tuple(data.get("images", ())),
        prefixed_images=prefixed,
        builds=tuple(data.get("builds", ())),
        not_images=tuple(data.get("not_images", ())),
        skip_if_sibling=tuple(data.get("skip_if_sibling", ())),
        entry_extends=data.get("entry_extends"),
        folder_merges=tuple(data.get("folder_merges", ())),
        services=tuple(data.get("services", ())),
        anchor_holders=tuple(data.get("anchor_holders", ())),
        literal_dollar=data.get("literal_dollar", False),
        names_files=tuple(data.get("names_files", ())),
    )


def _apply_extends(rules: dict[str, Rule], raw: dict[str, dict[str, Any]]) -> dict[str, Rule]:
    """`extends: NAME` adds NAME's image paths (and `not_images`) to this rule's (one level; no chains)."""
    out = dict(rules)
    for kind, data in raw.items():
        base_name = data.get("extends")
        if base_name is None:
            continue
        rule = rules[kind]
        base = rules.get(base_name)
        if base is None:
            raise ConfigError(f"{rule.source}: field 'extends': no rule named {base_name!r}")
        if raw[base_name].get("extends"):
            raise ConfigError(f"{rule.source}: field 'extends': {base_name!r} extends another rule itself")
        out[kind] = dataclasses.replace(
            rule,
            images=rule.images + tuple(p for p in base.images if p not in rule.images),
            prefixed_images=rule.prefixed_images + tuple(p for p in base.prefixed_images if p not in rule.prefixed_images),
            not_images=rule.not_images + tuple(p for p in base.not_images if p not in rule.not_images),
        )
    return out


def rule_files(directory: Path) -> Iterable[Path]:
    """The rule files a rules folder holds: its own `*.yaml` and `*.yml` files, not its folders'."""
    if not directory.is_dir():
        what = "a file, not a folder of rule files" if directory.exists() else "rules directory not found"
        raise ConfigError(f"{directory}: {what}")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_rules(extra_dirs: Iterable[Path] = (), *, validate_builtin: bool = False) -> list[Rule]:
    """The built-in rules, then each extra directory's (a same-named rule replaces the earlier one).
    Users' rules are validated against RULE_SCHEMA; the built-in ones are validated by the test suite."""
    raw: dict[str, dict[str, Any]] = {}
    sources: dict[str, Path] = {}
    for directory in [data_dir("rules"), *extra_dirs]:
        builtin = not sources and directory == data_dir("rules")
        for path in rule_files(directory):
            raw[path.stem] = _read_builtin_rule_file(path) if builtin else _read_rule_file(path)
            if validate_builtin or not builtin:
                validate_rule(path, raw[path.stem])
            sources[path.stem] = path
    rules = {kind: _rule_from_data(kind, sources[kind], data) for kind, data in raw.items()}
    rules = _apply_extends(rules, raw)
    return sorted(rules.values(), key=lambda r: (r.priority, r.kind))
