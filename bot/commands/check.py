"""`rehome check [PATH | FILE...]`: fail when the tree (or the files given) uses third-party images."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path

from bot import options
from bot.check import (
    PathPatterns, Report, build_report, git_prefix, git_toplevel, read_baseline, scan_at_ref, skipped_message,
    third_party_keys, with_files_led_to, with_named_files_not_read, write_baseline,
)
from bot.config import Config
from bot.errors import ConfigError, UsageError
from bot.output import plural, print_json, visible_controls
from bot.sarif import to_sarif
from bot.scan.core import scan

HELP = "fail when a tree, or the files given, still use third-party images (for CI and pre-commit)"

log = logging.getLogger("rehome")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", metavar="PATH | FILE",
        help="the tree to check (default: .), or files: then the root is the git top level of their "
             "repository (outside git, the current folder) and only findings in those files count",
    )
    options.add_destination(parser)
    parser.add_argument("--baseline", metavar="FILE", help="fail only on third-party references this baseline lacks")
    parser.add_argument("--write-baseline", metavar="FILE", help="record the current third-party references in FILE")
    parser.add_argument("--new-since", metavar="REF", help="fail only on third-party references added since git REF")
    parser.add_argument("--fail-on-skipped", action="store_true",
                        help="fail also when a file could not be read (not UTF-8, not valid YAML, too large): "
                             "by default it is a warning")
    options.add_format(parser, ("text", "json", "sarif"))
    options.add_scan_options(parser)


def _inside(path: str, root: Path) -> str:
    """`path` relative to `root`, POSIX style; symlinks in the file's folder resolved, not in its name."""
    given = Path(path)
    full = Path(os.path.realpath(given.parent)) / given.name
    try:
        return full.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(f"{path}: outside {root}, the root of this check") from None


def _repository(top: Path | None) -> str:
    return "no git repository" if top is None else f"the repository at {top}"


def files_root(paths: list[str]) -> Path:
    """The git top level of the files' repository (all must be in one); outside git, the current folder."""
    tops: dict[Path, Path | None] = {}
    first: dict[Path | None, str] = {}
    for path in paths:
        folder = Path(path).parent
        if folder not in tops:
            tops[folder] = git_toplevel(folder)
        first.setdefault(tops[folder], path)
    if len(first) > 1:
        (one, one_path), (other, other_path) = list(first.items())[:2]
        raise UsageError(f"{one_path} is in {_repository(one)}, {other_path} in {_repository(other)}: "
                         "give the files of one repository at a time")
    return next(iter(first)) or Path.cwd()


def target(paths: list[str]) -> tuple[Path, list[str] | None]:
    """(root, None) for a tree; (root, files relative to it) for files, as pre-commit passes them."""
    if not paths:
        return Path("."), None
    if len(paths) == 1 and Path(paths[0]).is_dir():
        return Path(paths[0]), None
    for path in paths:
        if Path(path).is_dir():
            raise UsageError(f"{path}: a folder: give one folder to check, or files, not both")
        if not Path(path).exists():
            raise UsageError(f"{path}: no such file or directory")
    root = files_root(paths)
    return root, [_inside(path, root) for path in paths]


def run(args: argparse.Namespace) -> int:
    if args.write_baseline and (args.baseline or args.new_since):
        raise UsageError("--write-baseline records every current finding: give it without --baseline and --new-since")
    root, report = check(args)
    if args.write_baseline:
        keys = {(f.reference.path, f.reference.image) for f in report.errors}
        write_baseline(Path(args.write_baseline), keys)
        log.info("recorded %s in %s", plural(len(keys), "third-party reference"), args.write_baseline)
        return 0
    if args.format == "json":
        print_json(report.to_json())
    elif args.format == "sarif":
        print_json(to_sarif(report, git_prefix(root)))
    else:
        print(render(report))
    return 1 if report.failed else 0


def check(args: argparse.Namespace) -> tuple[Path, Report]:
    """The findings `rehome check` reports for these flags, and the root they are relative to."""
    root, files = target(args.paths)
    config = options.load_config(args, root)
    destination = _usable_destination(args, config)
    if destination is None:
        config = dataclasses.replace(config, destination=None)
    template = options.mapping(args, config)
    scan_options = options.scan_options(args, config)
    if files is not None:
        # A file given by name counts even before `git add`.
        scan_options = dataclasses.replace(scan_options, untracked=True)
    scanned = scan(root, scan_options)
    if files is not None:
        files = with_files_led_to(files, scanned.leads_to)
        patterns = PathPatterns(scan_options.include, options.patterns_source(args, config, "include"),
                                scan_options.exclude, options.patterns_source(args, config, "exclude"))
        scanned = with_named_files_not_read(scanned, root, files, patterns)
    known: set[tuple[str, str]] = set()
    if args.baseline:
        known |= read_baseline(Path(args.baseline))
    if args.new_since:
        known |= third_party_keys(scan_at_ref(root, args.new_since, scan_options))
    return root, build_report(scanned, destination, template, files=files, known=known,
                              fail_on_skipped=args.fail_on_skipped)


def _usable_destination(args: argparse.Namespace, config: Config) -> str | None:
    """check needs no destination: with one, each finding names the mirror image to use. One from
    rehome.yaml that no command could use (the placeholder `rehome init` writes) is left out with a
    warning; a wrong --to is an error, as everywhere."""
    if not options.destination(args, config):
        return None
    try:
        return options.require_destination(args, config)
    except ConfigError as exc:
        log.warning("%s", ConfigError(f"{exc.message}; checked without it (findings name no mirror image)", exc.hint))
        return None


def render(report: Report) -> str:
    # One line per finding, whatever the file name or the reference holds (a YAML "\n" escape).
    lines = [
        visible_controls(f"{f.reference.path}:{f.reference.line}:{f.reference.column}: {f.level}: {f.message}")
        for f in report.findings
    ]
    lines += [visible_controls(f"{s.path}: {report.skipped_level}: {skipped_message(s)}") for s in report.skipped]
    errors = report.errors
    if errors:
        files = len({f.reference.path for f in errors})
        summary = f"{plural(len(errors), 'third-party reference')} in {plural(files, 'file')}"
    else:
        summary = "no third-party references"
    if report.known:
        summary += f"; {report.known} already known"
    if report.warnings:
        summary += f"; {len(report.warnings)} unresolved"
    if report.covered:
        summary += f"; {len(report.covered)} covered"
    if report.skipped:
        summary += f"; {plural(len(report.skipped), 'file')} not read"
    lines.append(summary)
    return "\n".join(lines)
