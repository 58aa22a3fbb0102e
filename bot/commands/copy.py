"""`rehome copy SRC DST`: one image, every platform, digests unchanged, verified."""
from __future__ import annotations

import argparse

from bot import mirror, options
from bot.config import find_config
from bot.errors import UsageError

HELP = "copy one image (all platforms, signatures included) and verify the copy by digest"
CONFIG_HELP = options.CURRENT_FOLDER_CONFIG_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SRC", help="image to copy, e.g. nginx:1.27 or quay.io/org/app@sha256:…")
    parser.add_argument("destination", metavar="DST",
                        help="where the copy goes; without a tag or digest it takes the source's")
    mirror.add_copy_arguments(parser)
    mirror.add_registry_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def destination_host(destination: str) -> str:
    """DST's registry host; a DST ending in `/` is refused saying why: it names where the copy goes, and is not a
    mirror prefix as `--to` is (that takes a trailing `/`)."""
    try:
        return mirror.registry_host(destination, "DST")
    except UsageError as exc:
        meant = _destinations_meant(destination) if destination.endswith("/") else []
        if not meant:
            raise
        raise UsageError(exc.message, f"DST is where the copy goes ({', or '.join(meant)}), not a mirror prefix as "
                                      "--to DEST is") from None


def _destinations_meant(destination: str) -> list[str]:
    """What a DST ending in `/` may mean: the DST as typed without its trailing `/`, or with a repository NAME after
    it; only those that would be accepted."""
    typed = destination.rstrip("/")
    candidates = [(typed, typed), (f"{typed}/NAME", f"{typed}/name")]  # (as shown, as checked)
    return [shown for shown, checked in candidates if _accepted(checked)]


def _accepted(destination: str) -> bool:
    try:
        mirror.registry_host(destination, "DST")
    except UsageError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    config = find_config(args.config, None)
    host = destination_host(args.destination)
    mirror.registry_host(args.source, "SRC")
    options = mirror.options_from_args(args, config.insecure_registries, host)
    images = mirror.ensure_and_print([(args.source, args.destination)], options, args.format)
    return mirror.exit_code(images)
