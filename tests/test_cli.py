from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot import __version__
from bot.cli import COMMANDS, build_parser, main
from tests.helpers import ROOT, run_cli


def test_version(capsys):
    assert run_cli(capsys, "--version") == (0, f"rehome {__version__}\n", "")


def test_every_command_is_documented_in_the_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    documented = set(re.findall(r"^rehome (\w[\w-]*)", readme, re.MULTILINE))
    assert sorted(set(COMMANDS) - documented) == []


COMMON_FLAGS = {"--help", "--verbose", "--quiet", "--config"}


def _readme_synopses(readme: str) -> dict[str, set[str]]:
    """The flags each command's synopsis in the README names (the first `sh` block of its section), with
    the option groups the README defines (*scan options* …) spelt out."""
    groups = {name: set(re.findall(r"--[a-z][a-z-]*", flags))
              for name, flags in re.findall(r"\*(\w+ options)\*\s+(?:are\s+)?`([^`]+)`", readme)}
    synopses: dict[str, set[str]] = {}
    for section in re.findall(r"^## rehome \S+\n.*?```sh\n(.*?)```", readme, re.MULTILINE | re.DOTALL):
        for line in section.splitlines():
            if line.startswith("rehome "):
                words = line.split()
                flags = synopses.setdefault(" ".join(words[1:3] if words[1] == "report" else words[1:2]), set())
            flags |= set(re.findall(r"--[a-z][a-z-]*", line))
            flags |= {flag for name, group in groups.items() if name in line for flag in group}
    return synopses


def _command_parser(*command: str) -> argparse.ArgumentParser:
    parser = build_parser(list(command))
    for word in command:
        parser = parser._subparsers._group_actions[0].choices[word]  # type: ignore[union-attr]
    return parser


def _cli_flags(*command: str) -> set[str]:
    parser = _command_parser(*command)
    return {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")} - COMMON_FLAGS


def _help(command: str, name: str) -> str | None:
    """The help of the command's option `name` (or of its argument, by its dest)."""
    return next(a.help for a in _command_parser(command)._actions if name in a.option_strings or a.dest == name)


def test_the_help_of_config_to_and_path_says_what_each_command_does_with_them():
    current_folder = "rehome.yaml to use instead of the one in the current folder"
    assert {command: _help(command, "--config") for command in ("scan", "doctor", "copy", "pulls", "run", "sweep")} == {
        "scan": "rehome.yaml to use instead of the one in PATH", "doctor": current_folder, "copy": current_folder,
        "pulls": current_folder, "run": "rehome.yaml to use instead of the one in TARGET",
        "sweep": "rehome.yaml to use for every repository instead of its own (its destination is the sweep's "
                 "without --to)"}
    assert {command: _help(command, "--to") for command in ("run", "sweep")} == {
        "run": "the mirror prefix, e.g. us-docker.pkg.dev/acme/mirror (or `destination` in rehome.yaml)",
        "sweep": "the mirror prefix, e.g. us-docker.pkg.dev/acme/mirror (or `destination` in the --config file)"}
    assert {command: _help(command, "path") for command in ("plan", "rewrite", "mirror")} == {
        "plan": "the tree to plan for (default: .)", "rewrite": "the tree to rewrite (default: .)",
        "mirror": "the tree whose images to mirror (default: .)"}


UNRECOGNIZED_CONFIG = "usage: rehome [-h] [--version] COMMAND ...\nrehome: error: unrecognized arguments: --config c.yaml\n"


@pytest.mark.parametrize(("argv", "refusal"), [
    (["sink", "--projects", "p", "--dataset", "p.d", "--config", "c.yaml"], UNRECOGNIZED_CONFIG),
    (["init", "TREE", "--config", "c.yaml"], UNRECOGNIZED_CONFIG),
    (["report", "--config", "c.yaml", "merge", "TREE/merged", "s.json"],
     "usage: rehome report [-h] [-v] [-q] ACTION ...\n"
     "rehome report: error: argument ACTION: invalid choice: 'c.yaml' (choose from 'status', 'merge')\n"),
], ids=["sink", "init", "report"])
def test_a_command_that_reads_no_rehome_yaml_refuses_config(tmp_path, capsys, argv, refusal):
    assert run_cli(capsys, *(arg.replace("TREE", str(tmp_path)) for arg in argv)) == (2, "", refusal)
    assert list(tmp_path.iterdir()) == []


def test_the_help_of_a_command_that_reads_no_rehome_yaml_offers_no_config(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert {command: sorted(flag for action in _command_parser(command)._actions for flag in action.option_strings
                            if flag in COMMON_FLAGS) for command in ("sink", "report", "init")} == {
        command: ["--help", "--quiet", "--verbose"] for command in ("sink", "report", "init")}
    assert run_cli(capsys, "init", "--help") == (0, (
        "usage: rehome init [-h] [-v] [-q] [--to DEST] [--force] [PATH]\n"
        "\n"
        "write a commented starter rehome.yaml\n"
        "\n"
        "positional arguments:\n"
        "  PATH           where to write rehome.yaml (default: .)\n"
        "\n"
        "options:\n"
        "  -h, --help     show this help message and exit\n"
        "  -v, --verbose  say more (debug log)\n"
        "  -q, --quiet    say only warnings and errors\n"
        "  --to DEST      the destination to write into the file\n"
        "  --force        overwrite an existing rehome.yaml\n"), "")


def test_each_readme_synopsis_names_exactly_the_flags_the_command_takes():
    synopses = _readme_synopses((Path(__file__).parent.parent / "README.md").read_text())
    assert sorted(synopses) == sorted([name for name in COMMANDS if name != "report"] + ["report merge", "report status"])
    assert {command: sorted(flags) for command, flags in synopses.items()} == {
        command: sorted(_cli_flags(*command.split())) for command in synopses}


def _shown_outputs(readme: str) -> list[tuple[str, str]]:
    """Each `$ rehome …` command of the README's console blocks that runs on the shipped example, with the
    output shown under it (those shown without output left out)."""
    shown = []
    for block in re.findall(r"^```console\n(.*?)^```", readme, re.MULTILINE | re.DOTALL):
        parts = re.split(r"^\$ (.*)\n", block, flags=re.MULTILINE)
        shown += [(command, output) for command, output in zip(parts[1::2], parts[2::2])
                  if "examples/shop" in command and output]
    return shown


def test_the_readme_shows_what_the_commands_print_for_the_shipped_example(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rewritten = shutil.copytree(ROOT / "examples" / "shop", tmp_path / "shop")
    assert run_cli(capsys, "rewrite", str(rewritten), "--to", "us-docker.pkg.dev/acme/mirror")[0] == 0
    shown = _shown_outputs((ROOT / "README.md").read_text())
    assert [command.split()[1] for command, _ in shown] == ["scan", "scan", "plan", "check", "renovate-config"]
    for command, output in shown:
        words, _, comment = command.partition("#")
        if comment.strip() == "after the rewrite":
            words = words.replace("examples/shop", str(rewritten))
        argv, _, pipe = words.partition("|")
        printed = run_cli(capsys, *shlex.split(argv)[1:])[1]
        if pipe:
            assert pipe.strip() == "jq '.references[0]'"
            printed = json.dumps(json.loads(printed)["references"][0], indent=2) + "\n"
        assert (command, printed) == (command, output)


def test_a_bug_exits_3_with_the_traceback_in_a_file(monkeypatch, tmp_path, capsys):
    def explode(args):
        raise KeyError("boom")

    monkeypatch.setattr("bot.commands.scan.run", explode)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    code = main(["scan", str(tmp_path)])
    out, err = capsys.readouterr()
    logs = list(tmp_path.glob("rehome-crash-*.log"))
    assert (code, out, len(logs)) == (3, "", 1)
    assert err == (
        "rehome: internal error: KeyError: 'boom'\n"
        f"rehome: the full traceback is in {logs[0]}; please report it\n"
    )
    assert "Traceback" in logs[0].read_text() and "explode" in logs[0].read_text()


def test_ctrl_c_while_the_command_is_loaded_is_an_interrupt_not_a_traceback(monkeypatch, capsys):
    def interrupted(name):
        raise KeyboardInterrupt  # Ctrl-C while the command's module and its libraries are imported

    monkeypatch.setattr("bot.cli.command_module", interrupted)
    assert run_cli(capsys, "rewrite", "examples/shop", "--to", "r.example/m") == (130, "", "rehome: interrupted\n")


def test_a_closed_pipe_is_not_an_error(tmp_path):
    for i in range(300):
        (tmp_path / f"d{i}.yaml").write_text(f"apiVersion: v1\nkind: Pod\nspec:\n  containers: [{{image: 'app{i}:1'}}]\n")
    proc = subprocess.run(
        f"{sys.executable} -m bot scan {tmp_path} --format json | head -c 10",
        shell=True, capture_output=True, text=True, timeout=60,
    )
    assert (proc.stdout, proc.stderr) == ('{\n  "versi', "")


def test_a_command_imports_only_what_it_needs():
    code = ("import sys; from bot.cli import main; main(['scan', 'examples/shop', '-q', '--format', 'json']); "
            "print(sorted(m for m in ('github', 'httpx', 'msgspec', 'jinja2') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent.parent)
    assert proc.stdout.splitlines()[-1] == "[]", proc.stderr


def test_help_lists_every_command(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    assert all(name in out for name in COMMANDS)
