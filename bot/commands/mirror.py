"""`rehome mirror PATH --to DEST`: make sure the mirror holds a verified copy of every planned move."""
from __future__ import annotations

import argparse

from bot import mirror
from bot.commands import plan as plan_command

HELP = "copy every third-party image the tree uses into the mirror (all platforms, same digests), verified"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    plan_command.add_arguments(parser, pin_digest=False, path_help="the tree whose images to mirror")
    mirror.add_copy_arguments(parser)
    mirror.add_registry_arguments(parser)


def run(args: argparse.Namespace) -> int:
    planned = plan_command.build(args)
    host = mirror.registry_host(planned.plan.destination, "destination")
    options = mirror.options_from_args(args, planned.config.insecure_registries, host)
    moves = planned.plan.moves
    pulls = {m.source: m.pulls for m in moves}
    images = mirror.ensure_and_print([(m.source, m.target) for m in moves], options, args.format, pulls=pulls)
    return mirror.exit_code(images)
