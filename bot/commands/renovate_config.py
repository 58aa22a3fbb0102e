"""`rehome renovate-config [PATH] --to DEST`: the Renovate settings that look mirror images up upstream."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from bot import imageref, options
from bot.config import Config
from bot.errors import UsageError
from bot.imageref import ImageRef
from bot.output import print_json
from bot.policy import MappingError, check_invertible, map_from_mirror, map_to_mirror
from bot.scan.core import scan

HELP = "print the Renovate registryAliases that make Renovate look mirror images up in their upstream registries"

RENOVATE_SCHEMA = "https://docs.renovatebot.com/renovate-schema.json"

# The registries a mirror usually copies from: the aliases printed when no PATH is given.
KNOWN_REGISTRIES = (
    "docker.io", "gcr.io", "ghcr.io", "k8s.gcr.io", "mcr.microsoft.com", "nvcr.io", "public.ecr.aws",
    "quay.io", "registry.gitlab.com", "registry.k8s.io",
)
_PROBE = "rehome-probe"

log = logging.getLogger("rehome")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", metavar="PATH",
        help="alias only the registries this tree's mirror references come from (default: well-known registries)",
    )
    options.add_destination(parser)
    options.add_scan_options(parser)


def mirror_prefix(domain: str, destination: str, template: str) -> str:
    """The part of every mirror name for `domain` before the image's path: a registryAliases key.

    Renovate replaces an alias only when a `/` follows it, so the prefix must end a component."""
    probe = map_to_mirror(ImageRef(domain, _PROBE), destination, template).name
    if not probe.endswith("/" + _PROBE):
        raise MappingError(
            f"mapping template {template!r} puts text before {{path}} in the same path component "
            f"({probe[:-len(_PROBE)]}...): Renovate's registryAliases can only replace whole leading components"
        )
    return probe[: -len("/" + _PROBE)]


def upstream_registries(
    root: Path, args: argparse.Namespace, config: Config, destination: str, template: str,
) -> set[str]:
    """The registries the tree's mirror references were copied from."""
    scanned = scan(root, options.scan_options(args, config))
    domains = set()
    for ref in scanned.references:
        if ref.image is None or not ref.image.startswith(destination + "/"):
            continue
        try:
            domains.add(map_from_mirror(imageref.parse(ref.image), destination, template).domain)
        except MappingError as exc:
            log.warning("%s:%d:%d: %s", ref.path, ref.line, ref.column, exc)
    return domains


def renovate_config(aliases: dict[str, str]) -> dict[str, Any]:
    return {"$schema": RENOVATE_SCHEMA, "registryAliases": dict(sorted(aliases.items()))}


def run(args: argparse.Namespace) -> int:
    root = Path(args.path) if args.path is not None else None
    config = options.load_config(args, root)
    destination = options.require_destination(args, config)
    template = options.mapping(args, config)
    try:
        check_invertible(template)
        if root is None:
            domains = set(KNOWN_REGISTRIES)
        else:
            domains = upstream_registries(root, args, config, destination, template)
        aliases = {mirror_prefix(domain, destination, template): domain for domain in sorted(domains)}
    except MappingError as exc:
        raise UsageError(f"cannot tell Renovate where mirror images come from: {exc}") from None
    if root is not None and not aliases:
        log.warning("no reference in %s points into %s", root, destination)
    print_json(renovate_config(aliases))
    return 0
