"""`rehome copy SRC DST`: one image, every platform, digests unchanged, verified."""
from __future__ import annotations

import argparse

from bot import mirror
from bot.config import find_config

HELP = "copy one image (all platforms, signatures included) and verify the copy by digest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SRC", help="image to copy, e.g. nginx:1.27 or quay.io/org/app@sha256:…")
    parser.add_argument("destination", metavar="DST",
                        help="where the copy goes; without a tag or digest it takes the source's")
    mirror.add_copy_arguments(parser)
    mirror.add_registry_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    config = find_config(args.config, None)
    host = mirror.registry_host(args.destination, "DST")
    mirror.registry_host(args.source, "SRC")
    options = mirror.options_from_args(args, config.insecure_registries, host)
    images = mirror.ensure_and_print([(args.source, args.destination)], options, args.format)
    return mirror.exit_code(images)
