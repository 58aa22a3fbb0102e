"""`rehome init [PATH]`: write a commented starter rehome.yaml."""
from __future__ import annotations

import argparse
import io
import logging
import os
from pathlib import Path

from ruamel.yaml import YAML

from bot import options
from bot.config import CONFIG_NAME, INIT_PLACEHOLDER, Config, parse_config
from bot.errors import UsageError
from bot.output import cannot_write, write_atomically

HELP = "write a commented starter rehome.yaml"
CONFIG_HELP = None  # reads no rehome.yaml

log = logging.getLogger("rehome")

STARTER = """\
# rehome configuration (see "Configuration" in the rehome README).
# Every key is optional; command-line flags override what is set here.

# Where mirrored images go (an Artifact Registry Docker repository, or any registry path).
{destination}

# How a source image is named in the mirror. {{domain}} keeps the source registry in the
# path, so docker.io/x and quay.io/x never collide (a port becomes "__": registry__5000).
mapping: "{{destination}}/{{domain}}/{{path}}"

# Registries (or registry/path globs) already under your control: never moved.
# The default is Google's registries: gcr.io, *.gcr.io, *.pkg.dev. The destination always counts.
# internal:
#   - "*-docker.pkg.dev/my-project/*"

# Paths to scan, and paths to leave out (globs on paths relative to the repository root).
# include: ["deploy/**", "**/Dockerfile*"]
# exclude: ["docs/**", "**/testdata/**"]

# Images never to move, wherever they appear.
# exclude_images: ["docker.io/library/hello-world"]

# Files larger than this are skipped (and listed as skipped).
# max_file_size: 5MiB

# Pin moved references to the digest the mirror step verifies (image:tag@sha256:...).
pin_digest: false

# A directory of extra rules files (a rule named like a built-in replaces it).
# rules: .rehome/rules
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", metavar="PATH", help="where to write rehome.yaml (default: .)")
    parser.add_argument("--to", metavar="DEST", default=INIT_PLACEHOLDER,
                        help="the destination to write into the file")
    parser.add_argument("--force", action="store_true", help="overwrite an existing rehome.yaml")


def yaml_line(key: str, value: str) -> str:
    """`key: value` as YAML reads it back (quoted where the value needs it: `[::1]:5000/mirror`)."""
    stream = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # one line, however long
    yaml.dump({key: value}, stream)
    return stream.getvalue().rstrip("\n")


def run(args: argparse.Namespace) -> int:
    target = Path(args.path) / CONFIG_NAME
    if not Path(args.path).exists():
        raise UsageError(f"{args.path}: the folder does not exist")
    if not Path(args.path).is_dir():
        raise UsageError(f"{args.path}: not a directory")
    if target.is_symlink():  # replaced, the link would be gone; written through, a file elsewhere would change
        raise UsageError(f"{target} is a symlink to {os.readlink(target)}: init does not replace a symlink",
                         hint="remove the link first (or edit the file it points to)")
    if target.is_dir():
        raise UsageError(f"{target} is a folder")
    if target.exists() and not args.force:
        raise UsageError(f"{target} already exists (use --force to overwrite it)")
    if args.to != INIT_PLACEHOLDER:
        options.require_destination(args, Config())  # a destination the file could not use is refused now
    text = STARTER.format(destination=yaml_line("destination", args.to))
    starter = parse_config(text, target)  # the starter must always validate, before anything is written
    assert starter.destination == args.to
    try:
        write_atomically(target, text)
    except OSError as exc:
        raise UsageError(cannot_write(target, exc)) from None
    log.info("wrote %s", target)
    if args.to == INIT_PLACEHOLDER:
        log.info("next: replace the placeholder destination %s in %s with your mirror (or run init again with "
                 "--to DEST --force)", INIT_PLACEHOLDER, target)
    return 0
