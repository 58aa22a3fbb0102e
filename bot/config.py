"""`rehome.yaml`: load, validate against the shipped JSON Schema, expose as plain data."""
from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot import textfile
from bot.errors import ConfigError

CONFIG_NAME = "rehome.yaml"
INIT_PLACEHOLDER = "us-docker.pkg.dev/PROJECT/mirror"  # `rehome init`'s destination for the user to fill in
DEFAULT_MAPPING = "{destination}/{domain}/{path}"
DEFAULT_MAX_FILE_SIZE = 5 * 1024 * 1024
SCHEMA_PATH = Path(__file__).parent / "schema" / "rehome.schema.json"

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKMG]i?B?|B)?\s*$")
_SIZE_UNITS = {
    None: 1, "B": 1,
    "k": 1000, "kB": 1000, "K": 1000, "KB": 1000, "ki": 1024, "kiB": 1024, "Ki": 1024, "KiB": 1024,
    "M": 1000**2, "MB": 1000**2, "Mi": 1024**2, "MiB": 1024**2,
    "G": 1000**3, "GB": 1000**3, "Gi": 1024**3, "GiB": 1024**3,
}


@dataclasses.dataclass(frozen=True)
class Config:
    path: Path | None = None
    destination: str | None = None
    mapping: str = DEFAULT_MAPPING
    internal: tuple[str, ...] | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_images: tuple[str, ...] = ()
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    pin_digest: bool = False
    rules: Path | None = None
    insecure_registries: tuple[str, ...] = ()
    templates: Path | None = None
    author: str | None = None
    branch: str | None = None
    title: str | None = None
    labels: tuple[str, ...] | None = None
    reviewers: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    draft: bool = False
    sync_upstreams: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> Config:
        """A copy with the flags that were given (None means 'not given')."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given)


def not_a_size(value: Any) -> str:
    return f"{value!r} is not a size (examples: 5242880, 5MiB, 500kB)"


def parse_size(value: int | str, where: str) -> int:
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(value)
    if not match or match.group(2) not in _SIZE_UNITS:
        raise ConfigError(f"{where}: {not_a_size(value)}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def _read_text(path: Path) -> str:
    try:
        return textfile.read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None


def _unknown_keys(keys: Iterable[Any]) -> str:
    """YAML keys need not be names: `: value` and `null: value` give a key of None, `1:` a number."""
    keys = list(keys)
    named = sorted(repr(key) for key in keys if key is not None)
    parts = [f"unknown key {', '.join(named)}"] if named else []
    if None in keys:
        parts.append("a key without a name (a line starting with ':', or the key null or ~)")
    return "; ".join(parts)


def _validation_message(path: Path, error: Any) -> str:
    key = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        known = error.schema["properties"]
        return f"{path}: {_unknown_keys(k for k in error.instance if k not in known)} (known keys: {', '.join(sorted(known))})"
    if not key:
        return f"{path}: must hold keys and their values (destination: ..., rules: ...), not {error.instance!r}"
    if error.validator == "oneOf":  # max_file_size: a number of bytes or a size with its unit
        return f"{path}: key {key!r}: {not_a_size(error.instance)}"
    return f"{path}: key {key!r}: {error.message}"


def not_valid_yaml(path: Path, exc: YAMLError) -> ConfigError:
    """A rehome.yaml or rules file that does not parse, in one line: the file, then the problem and its
    line (a key given twice: the key), without the YAML library's quoted context and advice."""
    from bot.scan.yamldocs import yaml_problem  # the scan's YAML module: not needed by every command

    return ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}")


def load_config(path: Path) -> Config:
    return parse_config(_read_text(path), path)


def parse_config(text: str, path: Path) -> Config:
    """The configuration `text` holds, as if read from `path` (which names it in errors)."""
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise not_valid_yaml(path, exc) from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        data = {}
    import jsonschema  # slow to import; only needed when there is a rehome.yaml to check

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError(_validation_message(path, errors[0]))
    return _config_from_mapping(path, data)


def _config_from_mapping(path: Path, data: dict[str, Any]) -> Config:
    values: dict[str, Any] = {"path": path}
    base = path.parent
    for field in dataclasses.fields(Config):
        if field.name not in data:
            continue
        value = data[field.name]
        if isinstance(value, list):
            value = tuple(value)
        if field.name in ("rules", "templates"):
            value = (base / value).resolve()
        if field.name == "max_file_size":
            value = parse_size(value, f"{path}: key 'max_file_size'")
        values[field.name] = value
    return Config(**values)


def written_as(config_path: Path, folder: Path) -> str:
    """A folder rehome.yaml names, spelt relative to the file as its key would be written."""
    return os.path.relpath(folder, config_path.resolve().parent)


def config_folder(config: Config, key: str) -> Path | None:
    """The `rules` or `templates` folder rehome.yaml names, refused naming the file and key when
    there is no such folder (rather than by the resolved path, which the user never wrote)."""
    folder: Path | None = getattr(config, key)
    if folder is not None and config.path is not None and not folder.is_dir():
        raise ConfigError(f"{config.path}: key {key!r}: {written_as(config.path, folder)} does not exist "
                          "or is not a folder")
    return folder


def find_config(explicit: str | None, root: Path | None) -> Config:
    """`--config FILE` if given, else `rehome.yaml` in the scanned root (or the current folder)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.exists():
            raise ConfigError(f"{explicit}: configuration file not found")
        return load_config(path)
    candidate = (root if root is not None and root.is_dir() else Path.cwd()) / CONFIG_NAME
    if candidate.is_file():
        return load_config(candidate)
    return Config()
