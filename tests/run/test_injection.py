"""A repository cannot inject Markdown, HTML or mentions into the pull request, and the token
never shows: not in output, logs, the PR body, or the clone's `.git/config`."""
from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from bot import git as bot_git
from tests.github.server import GitHubServer
from tests.helpers import run_cli
from tests.oci.fixtures import Loopback
from tests.run.conftest import TOKEN_CANARY, TOKEN_ENV, make_project
from tests.test_render import OWN_HTML, SAFE_TAGS, rendered_html, without_code_spans

HOSTILE_PATH = "deploy/<script>alert(1)</script>.yaml"
HOSTILE_IMAGE = "[click](https://evil.example) @octocat <img src=x onerror=alert(1)>"


def test_hostile_paths_and_strings_render_harmlessly_and_the_token_never_shows(
        tmp_path: Path, loopback: Loopback, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv(TOKEN_ENV, TOKEN_CANARY)
    def hostile_files(up: str, prefix: str) -> dict[str, str]:
        return {HOSTILE_PATH: (
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n"
            f"    - name: a\n      image: {up}/{prefix}/app:1\n"
            f"    - name: b\n      image: \"{HOSTILE_IMAGE}\"\n"
        )}

    project = make_project(tmp_path, loopback, hostile_files)
    image = f"{loopback.upstream.host}/{project.prefix}/app:1"
    configs: list[str] = []
    real_clone = bot_git.clone

    @contextlib.contextmanager
    def clone_and_look(*args, **kwargs):
        with real_clone(*args, **kwargs) as checkout:
            configs.append((checkout.root / ".git" / "config").read_text())
            yield checkout

    monkeypatch.setattr(bot_git, "clone", clone_and_look)
    server = GitHubServer()
    try:
        server.add_repo("acme/shop", f"file://{project.remote}")
        code, out, err = run_cli(capsys, "run", "acme/shop", "--to", project.destination, "--github-url",
                                 server.base_url, "--token-env", TOKEN_ENV, "--format", "json", "-v")
        body = server.writes()[0].body["body"]
    finally:
        server.stop()
    assert code == 0, err
    assert json.loads(out)["moved"] == 1
    assert image in body
    # Repository text stands only inside code spans: as Markdown renders it, no tag, link or mention.
    outside = OWN_HTML.sub("", without_code_spans(body))
    assert "<" not in outside and "](" not in outside
    page = rendered_html(body)
    assert {tag for tag, _ in page.tags} <= SAFE_TAGS
    assert re.search(r"(^|[\s(])@octocat", "".join(page.text_outside_code)) is None
    assert len(configs) == 1 and TOKEN_CANARY not in configs[0] and "extraHeader" not in configs[0]
    for text in (out, err, body, (project.remote / "config").read_text()):
        assert TOKEN_CANARY not in text


def test_git_errors_never_carry_the_token(tmp_path: Path) -> None:
    secret = bot_git.Secret(TOKEN_CANARY)
    url = f"file://{tmp_path}/no-such-{TOKEN_CANARY}.git"
    try:
        with bot_git.clone(url, "main", secret):
            raise AssertionError("the clone should fail")
    except bot_git.GitError as exc:
        assert TOKEN_CANARY not in str(exc) and "***" in str(exc)
