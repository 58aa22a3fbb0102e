"""`rehome doctor --to DEST`: can rehome read the sources and push to the destination?"""
from __future__ import annotations

import argparse

from bot import doctor, mirror, options
from bot.config import find_config
from bot.imageref import parse
from bot.output import print_json

HELP = "check credentials, the destination repository, push rights, the source registries and pull quotas"
CONFIG_HELP = options.CURRENT_FOLDER_CONFIG_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", metavar="DEST",
                        help="mirror prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY (default: rehome.yaml's destination)")
    parser.add_argument("--runtime-sa", metavar="EMAIL",
                        help="service account the clusters pull with; checks its read grant on the repository")
    parser.add_argument("--source", action="append", default=[], metavar="IMAGE",
                        help=f"source image to probe (repeatable; default {doctor.DOCKER_HUB_PROBE})")
    mirror.add_registry_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    config = find_config(args.config, None)
    text = options.require_destination(args, config)
    destination = parse(text)
    sources = [mirror.image_argument(s, "--source") for s in args.source or [doctor.DOCKER_HUB_PROBE]]
    mirror_options = mirror.MirrorOptions(
        insecure_registries=tuple(config.insecure_registries) + tuple(args.insecure_registry),
        credentials=mirror.credentials_from_args(args, destination.domain),
        destination=destination.domain,
        retry=doctor.CHECK_RETRY,
        timeout=doctor.CHECK_TIMEOUT,
        warns_low_quota=False,  # the source's check line says how many pulls are left
    )
    with mirror.open_registries(mirror_options) as registries:
        checks = doctor.run_checks(registries, destination, sources, args.runtime_sa)
    if args.format == "json":
        print_json({"version": 1, "destination": text, "checks": [c.to_json() for c in checks]})
    else:
        print("\n".join(c.line() for c in checks))
    return 0 if all(c.ok for c in checks) else 1
