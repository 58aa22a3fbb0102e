"""The `rehome` command line: one module per subcommand, listed in COMMANDS."""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tempfile
import threading
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from bot import __version__
from bot.errors import RehomeError

# Each module has HELP, add_arguments(parser) and run(args) -> int. They are imported only when
# their command runs: the registry, GitHub and pull-count clients take longer to import than a scan.
# A module may have CONFIG_HELP, what --config does for it (None: it reads no rehome.yaml, so it takes
# no --config). `args.ends_process` says whether the process exits once run returns (`program`, not a caller of main).
COMMANDS: dict[str, str] = {
    "scan": "bot.commands.scan",
    "plan": "bot.commands.plan",
    "rewrite": "bot.commands.rewrite",
    "mirror": "bot.commands.mirror",
    "copy": "bot.commands.copy",
    "doctor": "bot.commands.doctor",
    "pulls": "bot.commands.pulls",
    "sink": "bot.commands.sink",
    "check": "bot.commands.check",
    "sync": "bot.commands.sync",
    "updates": "bot.commands.updates",
    "renovate-config": "bot.commands.renovate_config",
    "init": "bot.commands.init",
    "run": "bot.commands.run",
    "sweep": "bot.commands.sweep",
    "report": "bot.commands.report",
}


def command_module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def _chosen(argv: Sequence[str] | None) -> str | None:
    """The command argv names (its first word that is not an option), if it names one."""
    words = [a for a in argv or () if not a.startswith("-")]
    return words[0] if words and words[0] in COMMANDS else None


log = logging.getLogger("rehome")


# What --config does for a command that reads its PATH's rehome.yaml; a module that reads another one
# says what it does instead in its own CONFIG_HELP.
CONFIG_HELP = "rehome.yaml to use instead of the one in PATH"


def _common_options(config_help: str | None = CONFIG_HELP) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="say more (debug log)")
    common.add_argument("-q", "--quiet", action="store_true", help="say only warnings and errors")
    if config_help is not None:
        common.add_argument("--config", metavar="FILE", help=config_help)
    return common


def build_parser(argv: Sequence[str] | None = None,
                 parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser for `argv`: only the command it names is imported and fully described
    (every command is, for `rehome --help` or a word that names none). Its subcommands' parsers
    are of `parser_class` too (one that reports errors its own way, say)."""
    parser = parser_class(
        prog="rehome",
        description="Move container images off third-party registries into your own, by pull request.",
    )
    parser.add_argument("--version", action="version", version=f"rehome {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_options()
    chosen = _chosen(argv)
    for name in COMMANDS:
        if chosen is not None and name != chosen:
            subparsers.add_parser(name, parents=[common])
            continue
        module = command_module(name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP,
                                    parents=[_common_options(getattr(module, "CONFIG_HELP", CONFIG_HELP))])
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record is emitted, not when the handler was made."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


# PyGithub logs through a stderr handler of its own from INFO up ("Request POST … failed with 403:
# Forbidden"): failures rehome reports itself, in its own words.
PYGITHUB_LOG = "github"


def log_to(handler: logging.Handler, level: int) -> None:
    """rehome's records from `level` up to `handler` only; so are PyGithub's, from WARNING up (from
    INFO with -v: its DEBUG records are every request and answer)."""
    library_level = logging.INFO if level <= logging.DEBUG else logging.WARNING
    for name, at in (("rehome", level), (PYGITHUB_LOG, library_level)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(at)
        logger.propagate = False


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log_to(handler, level)


def _report_bug(exc: BaseException) -> int:
    with tempfile.NamedTemporaryFile("w", prefix="rehome-crash-", suffix=".log", delete=False) as f:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=f)
    print(f"rehome: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"rehome: the full traceback is in {f.name}; please report it", file=sys.stderr)
    return 3


def _leave_stuck_threads(code: int) -> int:
    """After Ctrl-C, a thread still blocked in a network read (a registry that stopped answering) would
    keep the process alive until its timeout: leave at once instead. Only after an interrupt."""
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if code == 130 and stuck:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: Sequence[str] | None = None, *, ends_process: bool = False) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version, or a usage error (exit 2)
        return exc.code if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:  # while the command's modules are imported: nothing has been done yet
        print("rehome: interrupted", file=sys.stderr)
        return 130
    args.ends_process = ends_process
    _setup_logging(args)
    try:
        return args.run(args)
    except RehomeError as exc:
        print(f"rehome: error: {exc}", file=sys.stderr)
        return _leave_stuck_threads(exc.exit_code)
    except BrokenPipeError:
        # The reader went away (`rehome scan | head`): stop quietly, without a traceback at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("rehome: interrupted", file=sys.stderr)
        return _leave_stuck_threads(130)
    except Exception as exc:  # noqa: BLE001 - anything else is a bug, reported with its traceback
        return _report_bug(exc)


def program() -> NoReturn:
    """The `rehome` program (its script, `python -m bot`): main, then the process's exit with its code."""
    raise SystemExit(main(ends_process=True))
