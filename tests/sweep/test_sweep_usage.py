"""What a sweep refuses before it does any work, and how it says that GitHub is out of reach."""
from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from bot.commands import plan as plan_command
from bot.sweep import access
from tests.github.server import GitHubServer
from tests.helpers import logged, run_cli
from tests.sweep.conftest import ORG, TOKEN, TOKEN_ENV

DEST = "127.0.0.1:5999/mirror"


@pytest.fixture(autouse=True)
def token(monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def sweep_args(github_url: str, *extra: str) -> list[str]:
    return ["sweep", "--org", ORG, "--to", DEST, "--github-url", github_url, "--token-env", TOKEN_ENV,
            "--no-progress", *extra]


@pytest.mark.parametrize(("flag", "make", "message"), [
    ("--state", lambda tmp: tmp / "no-such-folder" / "state.jsonl",
     "--state {path}: the folder {path.parent} does not exist"),
    ("--state", lambda tmp: (tmp / "state").mkdir() or tmp / "state", "--state {path}: is a folder, not a file"),
    ("--report", lambda tmp: (tmp / "report").write_text("") or tmp / "report", "--report {path}: is a file, not a folder"),
    ("--config", lambda tmp: tmp / "missing.yaml", "{path}: configuration file not found"),
    # Read whole, a device such as /dev/zero would never end, and a named pipe would wait for a writer.
    ("--state", lambda tmp: Path(os.devnull), "--state {path}: is a device or socket, not a file"),
    ("--state", lambda tmp: os.mkfifo(tmp / "pipe") or tmp / "pipe", "--state {path}: is a named pipe, not a file"),
    ("--config", lambda tmp: Path(os.devnull), "{path}: cannot read configuration: a device or socket, not a file"),
])
def test_an_output_or_config_that_cannot_serve_is_refused_before_github_is_asked_anything(
        flag: str, make, message: str, tmp_path: Path, github: GitHubServer, capsys) -> None:
    path = make(tmp_path)
    code, out, err = run_cli(capsys, *sweep_args(github.base_url, flag, str(path)))
    assert (code, out, err) == (2, "", f"rehome: error: {message.format(path=path)}\n")
    assert github.requests == []


def test_a_sweep_without_to_or_a_config_file_that_sets_the_destination_says_where_it_may_come_from(
        tmp_path: Path, github: GitHubServer, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rehome.yaml").write_text(f"destination: {DEST}\n")  # not --config: not the sweep's
    code, out, err = run_cli(capsys, "sweep", "--org", ORG, "--github-url", github.base_url, "--token-env", TOKEN_ENV)
    assert (code, out, err) == (2, "", "rehome: error: no destination: give --to DEST, or a --config FILE that sets "
                                       "`destination` (the repositories' own rehome.yaml cannot: a sweep copies to one "
                                       "destination)\n")
    assert github.requests == []


def test_a_file_the_state_must_fingerprint_that_cannot_be_read_is_refused_before_github_is_asked_anything(
        tmp_path: Path, github: GitHubServer, capsys) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "pr_title.j2").symlink_to(tmp_path / "gone.j2")
    code, out, err = run_cli(capsys, *sweep_args(github.base_url, "--state", str(tmp_path / "state.jsonl"),
                                                 "--templates", str(templates)))
    assert (code, out, err) == (2, "", f"rehome: error: --templates: {templates / 'pr_title.j2'}: cannot read it to "
                                       "record its contents in --state: No such file or directory\n")
    assert github.requests == [] and not (tmp_path / "state.jsonl").exists()


def test_sigterm_while_the_sweep_prepares_is_an_interrupt_not_the_end_of_the_process(
        tmp_path: Path, github: GitHubServer, capsys, monkeypatch) -> None:
    """Here, where a pull-count source would be read: SIGTERM raises KeyboardInterrupt there, as Ctrl-C
    does (exit 130); left to its default it would end the process, with no message."""
    received: list[int] = []  # the signals the sweep left to this process's handler (not the default, here)
    monkeypatch.setattr(plan_command, "load_pull_counts", lambda args: signal.raise_signal(signal.SIGTERM))
    previous = signal.signal(signal.SIGTERM, lambda number, frame: received.append(number))
    try:
        code, out, err = run_cli(capsys, *sweep_args(github.base_url, "--report", str(tmp_path / "reports")))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (code, out, err, received) == (130, "", "rehome: interrupted\n", [])
    assert github.requests == [] and list((tmp_path / "reports").glob("*")) == []


@pytest.mark.parametrize(("flags", "message"), [
    (("--jobs", "0"), "--jobs must be at least 1, not 0"),
    (("--copy-jobs", "-2"), "--copy-jobs must be at least 1, not -2"),
    (("--limit", "0"), "--limit must be at least 1, not 0"),
])
def test_a_count_below_one_is_refused_naming_the_flag_and_value(flags: tuple[str, ...], message: str,
                                                                 github: GitHubServer, capsys) -> None:
    assert run_cli(capsys, *sweep_args(github.base_url, *flags)) == (2, "", f"rehome: error: {message}\n")
    assert github.requests == []


def test_a_github_app_key_that_is_not_a_key_is_a_usage_error(tmp_path: Path, github: GitHubServer, capsys) -> None:
    key = tmp_path / "app.pem"
    key.write_text("x\n")
    code, out, err = run_cli(capsys, *sweep_args(github.base_url, "--app-id", "1", "--app-key-file", str(key)))
    assert (code, out) == (2, "")
    assert err == (f"rehome: error: --app-key-file {key}: not a PEM private key\n"
                   "hint: give the .pem file GitHub made for the App (Settings → Developer settings → GitHub Apps)\n")
    assert github.requests == []


@pytest.mark.parametrize(("flags", "message"), [
    (("--repos-file", os.devnull), "--repos-file {path}: cannot read it: a device or socket, not a file"),
    (("--org", ORG, "--app-id", "1", "--app-key-file", os.devnull), "--app-key-file {path}: a device or socket, not a file"),
])
def test_a_repos_file_or_app_key_that_is_not_a_file_is_refused(flags: tuple[str, ...], message: str,
                                                                  github: GitHubServer, capsys) -> None:
    code, out, err = run_cli(capsys, "sweep", *flags, "--to", DEST, "--github-url", github.base_url,
                             "--token-env", TOKEN_ENV)
    assert (code, out, err) == (2, "", f"rehome: error: {message.format(path=os.devnull)}\n")
    assert github.requests == []


@pytest.mark.parametrize(("environ", "state"), [({}, "is not set"), ({"NOPE_ENV": ""}, "is empty")])
def test_a_missing_token_names_the_variable_read(environ: dict[str, str], state: str, github: GitHubServer, capsys,
                                                 monkeypatch) -> None:
    monkeypatch.delenv("NOPE_ENV", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, "sweep", "--org", ORG, "--to", DEST, "--github-url", github.base_url,
                             "--token-env", "NOPE_ENV")
    assert (code, out, err) == (2, "", f"rehome: error: no GitHub token: the environment variable NOPE_ENV {state}\n"
                                       "hint: export NOPE_ENV=… or name another variable with --token-env, or use "
                                       "--app-id\n")
    assert github.requests == []


@pytest.mark.parametrize(("environ", "state"), [({}, "is not set"), ({"GITHUB_APP_PRIVATE_KEY": ""}, "is empty")])
def test_a_missing_app_key_names_the_variable_read(environ: dict[str, str], state: str, github: GitHubServer, capsys,
                                                   monkeypatch) -> None:
    monkeypatch.delenv("GITHUB_APP_PRIVATE_KEY", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, *sweep_args(github.base_url, "--app-id", "42"))
    assert (code, out, err) == (2, "", "rehome: error: no GitHub App key: the environment variable "
                                       f"GITHUB_APP_PRIVATE_KEY {state}\n"
                                       "hint: export GITHUB_APP_PRIVATE_KEY=… (the App's private key, PEM), name "
                                       "another variable with --app-key-env, or give --app-key-file FILE\n")
    assert github.requests == []


@pytest.mark.parametrize("make", [lambda tmp: Path(os.devnull), lambda tmp: os.mkfifo(tmp / "pipe") or tmp / "pipe"])
def test_report_status_refuses_a_state_that_is_not_a_file(make, tmp_path: Path, capsys) -> None:
    path = make(tmp_path)
    what = "a named pipe" if path.name == "pipe" else "a device or socket"
    code, out, err = run_cli(capsys, "report", "status", "--state", str(path), "--github-url", "http://127.0.0.1:9/api/v3")
    assert (code, out, err) == (2, "", f"rehome: error: --state {path}: is {what}, not a file\n")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def test_a_github_out_of_reach_is_an_error_naming_the_step_not_a_crash(tmp_path: Path, capsys) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api/v3"
    code, out, err = run_cli(capsys, *sweep_args(url, "--inventory"))
    assert (code, out) == (1, "")
    assert err.startswith(f"rehome: error: GitHub: list the repositories of {ORG}: ConnectionError: ")
    assert "internal error" not in err and err.count("\n") == 1


def test_report_status_with_github_out_of_reach_is_an_error_not_a_crash(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    state = tmp_path / "state.jsonl"
    state.write_text('{"repo": "acme/a", "status": "done", "pr_url": "https://github.com/acme/a/pull/1", '
                     '"head": "a", "error": null, "finished_at": "2026-11-27T00:00:00Z"}\n')
    url = f"http://127.0.0.1:{_closed_port()}/api/v3"
    code, out, err = run_cli(capsys, "report", "status", "--state", str(state), "--github-url", url,
                             "--token-env", TOKEN_ENV)
    assert (code, out) == (1, "")
    assert err.startswith("rehome: error: GitHub: read https://github.com/acme/a/pull/1: ConnectionError: ")


def test_a_repository_named_twice_in_the_repos_file_runs_once(tmp_path: Path) -> None:
    names = tmp_path / "repos.txt"
    names.write_text("acme/api\nacme/web  # the shop\n\nACME/API\nacme/api\n")
    with logged() as warnings:
        assert access.read_repos_file(str(names)) == ["acme/api", "acme/web"]
    assert warnings == [f"--repos-file {names}:4: ACME/API is already on line 1; it runs once",
                        f"--repos-file {names}:5: acme/api is already on line 1; it runs once"]
