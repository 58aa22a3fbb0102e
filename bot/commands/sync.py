"""`rehome sync PATH --to DEST`: copy into the mirror the new tags the tree already points at."""
from __future__ import annotations

import argparse
import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
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
    if not uses and not refused:
        follow.say_none_point_into(root, destination)
    return FollowContext(config, mirror.registry_host(destination, "destination"), uses, refused)


FORK_MESSAGE = "rehome sync does not run for pull requests from forks: the mirror is left as it is"

# The summary's words for each status, in its order; a count of 0 is left out, except copied and present.
SUMMARY_WORDS = {
    "copied": "copied",
    "present": "already in the mirror",
    "missing": "to copy",
    "unknown": "not checked",
    "differs": "moved upstream (the mirror keeps its copy; --refresh copies the new image)",
    "failed": "failed",
}
ALWAYS_COUNTED = ("copied", "present")


def sync(args: argparse.Namespace,
         show: follow.ShowSync = follow.show_nothing) -> tuple[list[MirrorImage], list[follow.Refused]]:
    """What `rehome sync` copies (and refuses) for these flags, shown by `show` (also when interrupted)."""
    context = follow_context(args)
    mirror_options = mirror.options_from_args(args, context.config.insecure_registries, context.host)
    images, refused = follow.sync(context.uses, mirror_options, context.config.sync_upstreams,
                                  lambda done, refused: show(done, context.refused + refused))
    return images, context.refused + refused


def summary(images: Sequence[MirrorImage], refused: Sequence[follow.Refused]) -> str:
    """`1 copied, 2 already in the mirror, 0 refused`: every status that occurred, and the refusals."""
    counts = Counter(image.status for image in images)
    parts = [f"{counts[status]} {words}" for status, words in SUMMARY_WORDS.items()
             if counts[status] or status in ALWAYS_COUNTED]
    return ", ".join([*parts, f"{len(refused)} refused"])


def exit_code(images: Sequence[MirrorImage], refused: Sequence[follow.Refused]) -> int:
    """1 when a reference was refused or an image failed. A tag that moved upstream is not a failure:
    the mirror holds every reference the tree makes, which is what sync ensures."""
    return 1 if refused or mirror.exit_code([i for i in images if i.status != "differs"]) else 0


def print_result(images: Sequence[MirrorImage], refused: Sequence[follow.Refused], output_format: str) -> None:
    if output_format == "json":
        print_json({**mirror.to_json(images), "refused": [r.to_json() for r in refused]})
        return
    if images:
        print(mirror.render(images))
    print(summary(images, refused))
    for item in refused:
        print(f"refused: {item.image}: {item.reason}")


def run(args: argparse.Namespace) -> int:
    if follow.from_fork():
        print(FORK_MESSAGE)
        return 0
    images, refused = sync(args, lambda done, refused: print_result(done, refused, args.format))
    return exit_code(images, refused)
