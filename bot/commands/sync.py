"""`rehome sync PATH --to DEST`: copy into the mirror the new tags the tree already points at."""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from bot import follow, mirror, options
from bot.config import Config
from bot.errors import UsageError
from bot.mirror import MirrorImage
from bot.output import print_json
from bot.policy import MappingError
from bot.scan.core import scan

HELP = "copy into the mirror the images the tree references there but the mirror lacks (new tags of mirrored images)"

log = logging.getLogger("rehome")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_follow_arguments(parser)
    mirror.add_copy_arguments(parser)


def add_follow_arguments(parser: argparse.ArgumentParser) -> None:
    """What sync and updates share: the tree, the mirror, the registries."""
    parser.add_argument("path", nargs="?", default=".", metavar="PATH", help="the tree to read (default: .)")
    options.add_destination(parser)
    options.add_format(parser)
    options.add_scan_options(parser)
    mirror.add_registry_arguments(parser)


@dataclasses.dataclass
class FollowContext:
    """What sync and updates share: the configuration, the mirror host, and the tree's uses of the mirror."""

    config: Config
    host: str
    uses: list[follow.MirrorUse]
    refused: list[follow.Refused]


def follow_context(args: argparse.Namespace) -> FollowContext:
    root = Path(args.path)
    config = options.load_config(args, root)
    destination = options.require_destination(args, config)
    template = options.mapping(args, config)
    scanned = scan(root, options.scan_options(args, config))
    try:
        uses, refused = follow.mirror_uses(scanned.references, destination, template)
    except MappingError as exc:
        raise UsageError(str(exc)) from None
    return FollowContext(config, mirror.registry_host(destination, "destination"), uses, refused)


FORK_MESSAGE = "rehome sync does not run for pull requests from forks: the mirror is left as it is"


def sync(args: argparse.Namespace) -> tuple[list[MirrorImage], list[follow.Refused]]:
    """What `rehome sync` copies (and refuses) for these flags."""
    context = follow_context(args)
    mirror_options = mirror.options_from_args(args, context.config.insecure_registries, context.host)
    images, refused = follow.sync(context.uses, mirror_options, context.config.sync_upstreams)
    return images, context.refused + refused


def run(args: argparse.Namespace) -> int:
    if follow.from_fork():
        print(FORK_MESSAGE)
        return 0
    images, refused = sync(args)
    if args.format == "json":
        print_json({**mirror.to_json(images), "refused": [r.to_json() for r in refused]})
    else:
        if images:
            print(mirror.render(images))
        print(f"{sum(i.status == 'copied' for i in images)} copied, {sum(i.status == 'present' for i in images)} "
              f"already in the mirror, {len(refused)} refused")
        for item in refused:
            print(f"refused: {item.image}: {item.reason}")
    return 1 if mirror.exit_code(images) or refused else 0
