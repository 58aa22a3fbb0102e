"""An organisation on the GitHub stand-in: seven repositories that really run (bare remotes; images
on the loopback upstream registry, shared between them), and fifty-odd more that are listed,
filtered, and (all clones of one small remote) inventoried."""
from __future__ import annotations

import dataclasses
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import mirror
from bot.mirror import MirrorImage
from tests.github.server import GitHubServer
from tests.helpers import git, write_tree
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo

TOKEN = "ghp_sweepCANARY-do-not-print"
TOKEN_ENV = "REHOME_SWEEP_TOKEN"
ORG = "acme"
LIBS = 52
PER_PAGE = 25


# What three repositories ask the mirror step for: `a` and `b` twice each.
OVERLAPPING_MOVES = {"one": [("a", "m/a"), ("b", "m/b")], "two": [("b", "m/b"), ("c", "m/c")], "three": [("a", "m/a")]}


class GatedMirrorStep:
    """A stand-in for the mirror step: records the moves of each call, and holds every call until
    `gate` is set (at most `timeout` seconds), so that its callers are all asking at once."""

    def __init__(self, timeout: float) -> None:
        self.calls: list[list[tuple[str, str]]] = []
        self.gate = threading.Event()
        self.timeout = timeout

    def __call__(self, moves, options, *, pulls=None) -> list[MirrorImage]:
        self.calls.append(list(moves))
        self.gate.wait(self.timeout)
        return [MirrorImage(s, t, "sha256:" + "a" * 64, ("linux/amd64",), "copied", 10, None, None) for s, t in moves]


@dataclasses.dataclass
class Org:
    root: Path
    github: GitHubServer
    upstream: str
    destination: str
    prefix: str
    remotes: dict[str, Path]  # the repositories that really run: name → bare remote

    def image(self, name: str) -> str:
        tag = {"nginx": "1.27", "app": "1", "redis": "7.4"}[name]
        return f"{self.upstream}/{self.prefix}/{name}:{tag}"

    def target(self, name: str) -> str:
        source = self.image(name)
        return f"{self.destination}/{source.replace(':', '__', 1)}"

    def remote_git(self, repo: str, *args: str) -> str:
        return git(self.remotes[repo], *args).strip()

    def pulls(self, repo: str) -> list[dict]:
        return self.github.repos[repo].pulls

    def add_repository(self, name: str, files: dict[str, str]) -> None:
        """One more repository that really runs."""
        remote = _bare(self.root, name, files)
        self.remotes[f"{ORG}/{name}"] = remote
        self.github.add_repo(f"{ORG}/{name}", f"file://{remote}", git_dir=str(remote), topics=("service",))


def _files(up: str, prefix: str) -> dict[str, dict[str, str]]:
    nginx, app, redis = f"{up}/{prefix}/nginx:1.27", f"{up}/{prefix}/app:1", f"{up}/{prefix}/redis:7.4"
    deploy = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n"
              "      containers:\n        - name: main\n          image: {image}\n")
    return {
        "svc-web": {"Dockerfile": f"FROM {nginx}\nCOPY site /usr/share/nginx/html\n",
                    "deploy/web.yaml": deploy.format(name="web", image=app)},
        "svc-api": {"Dockerfile": f"FROM {nginx}\n", "compose.yaml": f"services:\n  cache:\n    image: {redis}\n",
                    "deploy/api.yaml": deploy.format(name="api", image="${API_IMAGE}")},
        "svc-jobs": {"deploy/jobs.yaml": deploy.format(name="jobs", image=app),
                     "docker-compose.yml": f"services:\n  queue:\n    image: {redis}\n"},
        "svc-docs": {"Dockerfile": "FROM gcr.io/acme-tools/hugo:0.1\n", "README.md": "docs\n"},
        "svc-broken": {"Dockerfile": f"FROM {nginx}\n"},  # its clone URL leads nowhere
        "svc-pushfail": {"Dockerfile": f"FROM {redis}\n"},  # its remote refuses every push
        "svc-prfail": {"deploy/pr.yaml": deploy.format(name="pr", image=nginx)},  # the pull request API fails
    }


REAL = tuple(_files("h", "p"))


def _bare(root: Path, name: str, files: dict[str, str]) -> Path:
    work = write_tree(root / "work" / name, files)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"{name}: first commit")
    remote = root / "remotes" / f"{name}.git"
    git(root, "clone", "-q", "--bare", str(work), str(remote))
    return remote


def build_org(root: Path, loopback: Loopback, github: GitHubServer) -> Org:
    up = loopback.upstream.host
    prefix = unique_repo("sweep")
    for name, img, tag in (("nginx", images.multi_platform(512), "1.27"), ("app", images.image((256,)), "1"),
                           ("redis", images.image((128,)), "7.4")):
        images.push(up, f"{prefix}/{name}", img, tag)
    remotes = {}
    for name, files in _files(up, prefix).items():
        remote = _bare(root, name, files)
        remotes[f"{ORG}/{name}"] = remote
        url = f"file://{remote}" if name != "svc-broken" else f"file://{root}/remotes/gone.git"
        github.add_repo(f"{ORG}/{name}", url, git_dir=str(remote), topics=("service",))
    hook = remotes[f"{ORG}/svc-pushfail"] / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes are not allowed' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    github.faults.append(("POST", f"^/repos/{ORG}/svc-prfail/pulls$", 422, {}, {"message": "Validation Failed"}))
    # Fifty-odd libraries: all clones of one small remote that uses redis; some with a topic.
    lib = _bare(root, "lib", {"Dockerfile": f"FROM {up}/{prefix}/redis:7.4\n"})
    for number in range(LIBS):
        github.add_repo(f"{ORG}/lib-{number:02d}", f"file://{lib}", git_dir=str(lib),
                        topics=("team-x",) if number % 10 == 0 else ())
    github.add_repo(f"{ORG}/svc-old", f"file://{lib}", git_dir=str(lib), archived=True)
    github.add_repo(f"{ORG}/svc-fork", f"file://{lib}", git_dir=str(lib), fork=True)
    new = root / "remotes" / "svc-new.git"  # no commits: GitHub lists its size as 0
    git(root, "init", "-q", "--bare", "-b", "main", str(new))
    github.add_repo(f"{ORG}/svc-new", f"file://{new}", git_dir=str(new), size=0)
    github.add_repo(f"{ORG}/svc-off", f"file://{lib}", git_dir=str(lib), disabled=True)
    github.add_repo("other/elsewhere", f"file://{lib}", git_dir=str(lib))  # another organisation
    return Org(root, github, up, f"{loopback.target.host}/mirror", prefix, remotes)


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    server = GitHubServer(max_per_page=PER_PAGE)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def org(tmp_path: Path, loopback: Loopback, github: GitHubServer, monkeypatch) -> Org:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return build_org(tmp_path, loopback, github)


@pytest.fixture
def ensured(monkeypatch) -> list[tuple[str, str]]:
    """Each (source, target) the real mirror step is asked to copy. It runs in this process whatever
    the workers (the sweep's shared step), so this sees every copy; a worker process that copied on
    its own would leave one unseen."""
    moves: list[tuple[str, str]] = []
    real = mirror.ensure_images

    def counting(wanted, options, **kwargs):
        moves.extend(wanted)
        return real(wanted, options, **kwargs)

    monkeypatch.setattr(mirror, "ensure_images", counting)
    return moves
