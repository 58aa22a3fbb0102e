"""A fixture repository whose images live on the loopback upstream registry, its bare remote,
and the GitHub stand-in that knows it as acme/shop."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.github.server import GitHubServer
from tests.helpers import git, write_tree
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo

# Never a real token: tests check it never appears in any output, body or git config.
TOKEN_CANARY = "ghp_canaryTOKEN0c1d2e3f-do-not-print"
TOKEN_ENV = "REHOME_TEST_TOKEN"


@dataclasses.dataclass
class Project:
    work: Path  # a developer's clone, to change the base branch with
    remote: Path  # the bare repository behind the stand-in's clone_url
    upstream: str
    mirror: str
    destination: str
    prefix: str  # the repository path on the upstream registry holding this test's images
    digests: dict[str, str]  # source image → digest pushed upstream

    def remote_git(self, *args: str) -> str:
        return git(self.remote, *args).strip()


def project_files(up: str, prefix: str) -> dict[str, str]:
    return {
        "Dockerfile": f"FROM {up}/{prefix}/nginx:1.27\nRUN echo hello\n",
        "deploy/app.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
            "      containers:\n"
            f"        - name: app\n          image: {up}/{prefix}/app:1  # the app\n"
            f"        - name: sidecar\n          image: \"{up}/{prefix}/gone:1\"\n"
            "        - name: job\n          image: ${JOB_IMAGE}\n"
        ),
        "docker-compose.yml": f"services:\n  cache:\n    image: {up}/{prefix}/redis:7.4\n",
        "chart/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\nappVersion: \"1.0\"\n",
        "chart/values.yaml": f"cache:\n  image:\n    registry: {up}\n    repository: {prefix}/redis\n    tag: \"7.4\"\n",
    }


def make_project(tmp_path: Path, loopback: Loopback,
                 files: Callable[[str, str], dict[str, str]] = project_files) -> Project:
    up, down = loopback.upstream.host, loopback.target.host
    prefix = unique_repo("shop")
    digests = {}
    for name, image in (("nginx", images.multi_platform(1024)), ("app", images.image((512,))),
                        ("redis", images.image((256,)))):
        tag = "1.27" if name == "nginx" else "1" if name == "app" else "7.4"
        images.push(up, f"{prefix}/{name}", image, tag)
        digests[f"{up}/{prefix}/{name}:{tag}"] = image.digest
    work = write_tree(tmp_path / "work", files(up, prefix))
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "the shop")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(remote))
    git(work, "remote", "add", "origin", f"file://{remote}")
    git(work, "fetch", "-q", "origin")
    return Project(work, remote, up, down, f"{down}/mirror", prefix, digests)


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    server = GitHubServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def project(tmp_path: Path, loopback: Loopback, github: GitHubServer, monkeypatch) -> Project:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv(TOKEN_ENV, TOKEN_CANARY)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    made = make_project(tmp_path, loopback)
    github.add_repo("acme/shop", f"file://{made.remote}", git_dir=str(made.remote))
    return made
