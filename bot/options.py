"""Command-line options several commands share, and how they combine with rehome.yaml."""
from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from bot import imageref
from bot.config import INIT_PLACEHOLDER, Config, config_folder, find_config, parse_size
from bot.errors import ConfigError, UsageError
from bot.policy import DEFAULT_INTERNAL, MappingError, Policy, check_template
from bot.rules import load_rules
from bot.scan.core import ScanOptions

def flag_name(args: argparse.Namespace, flag: str) -> str:
    """How the user gave `flag`: the flag itself, or where the arguments come from elsewhere (the
    Action's inputs) the name `args.flag_names` gives it, so that a message points where to fix it."""
    return getattr(args, "flag_names", {}).get(flag, flag)


def add_format(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json")) -> None:
    parser.add_argument("--format", choices=choices, default=choices[0], help=f"output format (default: {choices[0]})")


def add_scan_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what to scan")
    group.add_argument("--rules", metavar="DIR", action="append", default=[],
                       help="a directory of extra rules files (a rule named like a built-in replaces it)")
    group.add_argument("--internal", metavar="PATTERN", action="append", default=None,
                       help="registry pattern treated as internal (repeatable; replaces the default gcr.io, *.gcr.io, *.pkg.dev)")
    group.add_argument("--include", metavar="GLOB", action="append", default=None, help="scan only matching paths")
    group.add_argument("--exclude", metavar="GLOB", action="append", default=None, help="leave matching paths out")
    group.add_argument("--untracked", action="store_true", help="in a git checkout, also scan untracked files")
    group.add_argument("--max-file-size", metavar="SIZE", help="skip larger files (default 5MiB)")


# --config for a command that takes no PATH: `find_config(args.config, None)` reads the current folder's.
CURRENT_FOLDER_CONFIG_HELP = "rehome.yaml to use instead of the one in the current folder"


def load_config(args: argparse.Namespace, root: Path | None) -> Config:
    return find_config(getattr(args, "config", None), root)


def destination(args: argparse.Namespace, config: Config) -> str | None:
    given = getattr(args, "to", None)
    if given is not None and not given.strip():  # `--to "$DEST"` with DEST unset
        raise UsageError("--to is empty: give the mirror prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY")
    return given or config.destination


def policy(args: argparse.Namespace, config: Config) -> Policy:
    internal = args.internal if getattr(args, "internal", None) else config.internal
    return Policy(
        internal=tuple(internal) if internal is not None else DEFAULT_INTERNAL,
        exclude_images=config.exclude_images,
        destination=destination(args, config),
    )


def _rule_dirs(args: argparse.Namespace, config: Config) -> list[Path]:
    """`--rules` folders if given, else the one rehome.yaml names."""
    if args.rules:
        return [Path(d) for d in args.rules]
    folder = config_folder(config, "rules")
    return [folder] if folder is not None else []


def scan_options(args: argparse.Namespace, config: Config) -> ScanOptions:
    rule_dirs = _rule_dirs(args, config)
    max_size = parse_size(args.max_file_size, "--max-file-size") if args.max_file_size else config.max_file_size
    return ScanOptions(
        rules=tuple(load_rules(rule_dirs)),
        policy=policy(args, config),
        include=tuple(args.include) if args.include else config.include,
        exclude=tuple(args.exclude) if args.exclude else config.exclude,
        max_file_size=max_size,
        untracked=args.untracked,
    )


def patterns_source(args: argparse.Namespace, config: Config, key: str) -> str:
    """Where the `include` or `exclude` patterns in force were given, as a message names it."""
    return flag_name(args, f"--{key}") if getattr(args, key) else f"{config.path}, key {key!r}"


def add_destination(parser: argparse.ArgumentParser, config: str = "rehome.yaml") -> None:
    """--to, which `destination` in `config` may stand in for, and --mapping."""
    parser.add_argument("--to", metavar="DEST",
                        help=f"the mirror prefix, e.g. us-docker.pkg.dev/acme/mirror (or `destination` in {config})")
    parser.add_argument("--mapping", metavar="TEMPLATE",
                        help="mirror name template: {destination}, {domain}, {path} (default {destination}/{domain}/{path})")


NO_DESTINATION = "no destination: give --to DEST or set `destination` in rehome.yaml"
PLACEHOLDER_HINT = "replace the placeholder `rehome init` wrote with your mirror, e.g. us-docker.pkg.dev/acme/mirror"


def require_destination(args: argparse.Namespace, config: Config, missing: str = NO_DESTINATION) -> str:
    """The checked destination; an unusable one is refused naming where it was given (--to, or rehome.yaml's key)."""
    dest = destination(args, config)
    if not dest:
        raise UsageError(missing)
    try:
        return check_destination(dest)
    except UsageError as exc:
        if getattr(args, "to", None) or config.path is None:
            raise UsageError(f"{flag_name(args, '--to')}: {exc.message}", exc.hint) from None
        hint = PLACEHOLDER_HINT if dest == INIT_PLACEHOLDER else exc.hint
        raise ConfigError(f"{config.path}: key 'destination': {exc.message}", hint) from None


def check_destination(dest: str) -> str:
    """The mirror prefix without a trailing `/`, or a usage error saying what is wrong with it."""
    try:
        imageref.check_not_host_alone(dest.rstrip("/"))
        ref = imageref.parse_raw(dest.rstrip("/"))
    except imageref.InvalidReference as exc:
        raise UsageError(f"destination {dest!r} is not a registry path: {exc}") from None
    if ref.tag is not None or ref.digest is not None:
        raise UsageError(f"destination {dest!r} must be a registry path without tag or digest")
    if not ref.domain or "." not in ref.domain and ":" not in ref.domain and ref.domain != "localhost":
        raise UsageError(f"destination {dest!r} must start with a registry host, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY")
    return dest.rstrip("/")


def mapping(args: argparse.Namespace, config: Config) -> str:
    """The checked mapping template; an unusable one from rehome.yaml is refused naming the file and key."""
    template = getattr(args, "mapping", None) or config.mapping
    try:
        check_template(template)
    except MappingError as exc:
        if getattr(args, "mapping", None) or config.path is None:
            raise UsageError(str(exc)) from None
        raise ConfigError(f"{config.path}: key 'mapping': {exc}") from None
    return template


def github_url(text: str) -> str:
    """`--github-url`: an http(s) URL naming a host."""
    try:
        parts = urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # `http://[::1` and the like
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL, e.g. https://github.example.com")
    return text


def add_github_options(group: argparse._ArgumentGroup | argparse.ArgumentParser, *, app: bool = False) -> None:
    """Where GitHub is and how to log in: run, sweep and report share these."""
    group.add_argument("--github-url", metavar="URL", type=github_url,
                       help="GitHub Enterprise: https://HOST (or its API URL)")
    group.add_argument("--token-env", metavar="NAME", default="GITHUB_TOKEN",
                       help="environment variable holding the GitHub token (default: GITHUB_TOKEN)")
    if app:
        group.add_argument("--app-id", metavar="ID", help="authenticate as this GitHub App (installation tokens)")
        group.add_argument("--app-key-file", metavar="FILE", help="the App's private key (PEM)")
        group.add_argument("--app-key-env", metavar="NAME", default="GITHUB_APP_PRIVATE_KEY",
                           help="environment variable holding the App's private key (default: GITHUB_APP_PRIVATE_KEY)")


def unset_variable(name: str, environ: Mapping[str, str]) -> str:
    """`the environment variable NAME is not set` (or `is empty`: a secret that is not defined reads as empty)."""
    return f"the environment variable {name} {'is empty' if name in environ else 'is not set'}"


def missing_token(token_env: str, environ: Mapping[str, str], other_ways: str = "") -> UsageError:
    """The refusal to go on without a GitHub token, naming the variable --token-env read and whether it
    is not set or empty."""
    return UsageError(f"no GitHub token: {unset_variable(token_env, environ)}",
                      hint=f"export {token_env}=… or name another variable with --token-env{other_ways}")


def add_pull_request_options(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """How the bot's pull requests look: run and sweep share these (rehome.yaml sets them too)."""
    group.add_argument("--branch", metavar="NAME", help="the bot's branch (default: rehome/mirror-images)")
    group.add_argument("--title", help="pull request title ({count} and {destination} are replaced)")
    group.add_argument("--labels", metavar="A,B", help="labels, comma-separated (default: rehome; '' for none)")
    group.add_argument("--reviewers", metavar="X,Y", help="reviewers to request, comma-separated")
    group.add_argument("--assignees", metavar="X,Y", help="assignees, comma-separated")
    group.add_argument("--draft", action="store_true", default=None, help="open pull requests as drafts")
    group.add_argument("--recreate-closed", action="store_true",
                       help="open a new pull request even when the bot's last one, closed without merging, held "
                            "the same change (by default that change is not proposed again)")
    group.add_argument("--templates", metavar="DIR", help="a folder of templates overriding the built-in ones")
