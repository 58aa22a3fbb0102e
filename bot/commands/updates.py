"""`rehome updates PATH --to DEST`: newer upstream versions of the mirrored images the tree uses."""
from __future__ import annotations

import argparse

from bot import follow, mirror
from bot.commands.sync import add_follow_arguments, follow_context
from bot.output import print_json, render_table

HELP = "list newer upstream tags (and moved tags) of the mirrored images the tree uses"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_follow_arguments(parser)


def run(args: argparse.Namespace) -> int:
    context = follow_context(args)
    mirror_options = mirror.MirrorOptions(
        insecure_registries=tuple(context.config.insecure_registries) + tuple(args.insecure_registry),
        credentials=mirror.credentials_from_args(args, context.host),
        destination=context.host,
    )
    found = follow.updates(context.uses, mirror_options)
    if args.format == "json":
        print_json({"version": 1, "images": [u.to_json() for u in found],
                    "refused": [r.to_json() for r in context.refused]})
    else:
        if found:
            print(render(found))
        for item in context.refused:
            print(f"skipped: {item.image}: {item.reason}")
    return 1 if any(update.error for update in found) else 0


def render(found: list[follow.Update]) -> str:
    rows = []
    for update in found:
        if update.error:
            state = f"error: {update.error}"
        elif update.moved:
            state = "upstream tag moved"
        else:
            state = ""
        rows.append((update.image, ", ".join(update.newer) or "-", state))
    return render_table(("IMAGE", "NEWER UPSTREAM TAGS", "NOTE"), rows)
