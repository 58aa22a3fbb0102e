"""Options several commands share: where the destination comes from, and how a bad one is refused;
the GitHub token's variable."""
from __future__ import annotations

import pytest

from bot.options import missing_token
from tests.helpers import run_cli


@pytest.mark.parametrize("argv", [
    ["plan", "TREE"], ["rewrite", "TREE"], ["mirror", "TREE"], ["sync", "TREE"], ["updates", "TREE"],
    ["renovate-config", "TREE"], ["doctor", "--config", "TREE/rehome.yaml"],
])
def test_the_placeholder_init_writes_is_refused_naming_the_file_and_key(tmp_path, capsys, argv):
    assert run_cli(capsys, "init", "-q", str(tmp_path)) == (0, "", "")
    (tmp_path / "Dockerfile").write_text("FROM nginx:1\n")
    assert run_cli(capsys, *(arg.replace("TREE", str(tmp_path)) for arg in argv)) == (2, "", (
        f"rehome: error: {tmp_path / 'rehome.yaml'}: key 'destination': destination "
        "'us-docker.pkg.dev/PROJECT/mirror' is not a registry path: invalid reference "
        "'us-docker.pkg.dev/PROJECT/mirror': repository name must be lowercase\n"
        "hint: replace the placeholder `rehome init` wrote with your mirror, e.g. us-docker.pkg.dev/acme/mirror\n"
    ))


@pytest.mark.parametrize(("environ", "state"), [({}, "is not set"), ({"NOPE_ENV": ""}, "is empty")])
def test_a_missing_token_names_the_variable_read_and_whether_it_is_set(environ: dict[str, str], state: str) -> None:
    refusal = missing_token("NOPE_ENV", environ, ", or use --app-id")
    assert (refusal.message, refusal.hint) == (
        f"no GitHub token: the environment variable NOPE_ENV {state}",
        "export NOPE_ENV=… or name another variable with --token-env, or use --app-id")


def test_a_bad_destination_from_the_command_line_is_said_to_come_from_to(tmp_path, capsys):
    (tmp_path / "rehome.yaml").write_text("destination: r.example/fine\n")
    assert run_cli(capsys, "sync", str(tmp_path), "--to", "Mirror/UPPER") == (2, "", (
        "rehome: error: --to: destination 'Mirror/UPPER' is not a registry path: "
        "invalid reference 'Mirror/UPPER': repository name must be lowercase\n"
    ))
