"""Session-wide loopback registries for the registry, mirror and command tests."""
from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.registry import CredentialStore, Registries, RetryPolicy
from bot.registry.credentials import Credential
from bot.registry.secret import Secret
from tests.oci import images
from tests.oci.proxy import Fault, Proxy
from tests.oci.servers import RegistryServer, TokenServer, htpasswd_line

# Never a real secret: tests check this string never appears in any output.
CANARY_PASSWORD = "canary-7f3a9c-do-not-print"
BASIC_USER = "mirror-bot"
TOKEN_USER = "token-bot"
READER_USER = "reader-bot"  # the token server grants it `pull` only
IDENTITY_TOKEN = "identity-canary-51be-do-not-print"
FAST_RETRY = RetryPolicy(tries=4, base_delay=0.01, max_delay=2.0)

_names = itertools.count()


def unique_repo(prefix: str = "repo") -> str:
    """A repository name no other test uses (the registries live for the whole session)."""
    return f"{prefix}/r{next(_names)}"


@dataclasses.dataclass
class Loopback:
    upstream: RegistryServer
    target: RegistryServer
    basic: RegistryServer
    token: RegistryServer
    token_server: TokenServer
    upstream_proxy: Proxy
    target_proxy: Proxy


@pytest.fixture(scope="session")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loopback]:
    root = tmp_path_factory.mktemp("registries")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(htpasswd_line(BASIC_USER, CANARY_PASSWORD) + "\n")
    token_server = TokenServer(root / "token", {TOKEN_USER: CANARY_PASSWORD, READER_USER: CANARY_PASSWORD},
                               {TOKEN_USER: IDENTITY_TOKEN}, readers=frozenset({READER_USER}))
    servers = [
        RegistryServer(root / "upstream"),
        RegistryServer(root / "target"),
        RegistryServer(root / "basic", {"htpasswd": {"realm": "rehome-test", "path": str(htpasswd)}}),
        RegistryServer(root / "token-auth", token_server.registry_auth()),
    ]
    started: list[RegistryServer] = []
    proxies: list[Proxy] = []
    try:
        for server in servers:
            started.append(server.start())
        proxies = [Proxy(servers[0].host), Proxy(servers[1].host)]
        yield Loopback(*servers, token_server, *proxies)
    finally:
        for proxy in proxies:
            proxy.stop()
        for server in started:
            server.stop()
        token_server.stop()


@pytest.fixture
def proxies(loopback: Loopback) -> Iterator[Loopback]:
    """The loopback registries with both proxies' faults, stand-ins and request logs cleared before and after."""
    loopback.upstream_proxy.reset()
    loopback.target_proxy.reset()
    yield loopback
    loopback.upstream_proxy.reset()
    loopback.target_proxy.reset()


def make_registries(environ: dict[str, str], credentials: dict[str, Credential] | None = None,
                    retry: RetryPolicy = FAST_RETRY, destination: str | None = None,
                    sleep: Callable[[float], object] | None = None) -> Registries:
    """`environ` should name a DOCKER_CONFIG folder, so the tests never read the user's own."""
    return Registries(credentials=CredentialStore(credentials, environ), retry=retry, destination=destination,
                      sleep=sleep)


@pytest.fixture
def paced(tmp_path: Path) -> Iterator[tuple[Registries, list[float]]]:
    """Fast retries that wait as long as a registry asks (up to 30 s), the pauses recorded rather than slept:
    (the pool, the seconds of each pause before a retry)."""
    pauses: list[float] = []
    with make_registries({"DOCKER_CONFIG": str(tmp_path / "no-docker-config")},
                         retry=dataclasses.replace(FAST_RETRY, max_delay=30.0), sleep=pauses.append) as pool:
        yield pool, pauses


def basic_credential(password: str = CANARY_PASSWORD) -> Credential:
    return Credential(BASIC_USER, Secret(password), source="--username/--password-stdin")


def token_credential(password: str = CANARY_PASSWORD) -> Credential:
    return Credential(TOKEN_USER, Secret(password), source="--username/--password-stdin")


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[Registries]:
    """A client pool with no credentials (an empty Docker config) and fast retries."""
    with make_registries({"DOCKER_CONFIG": str(tmp_path / "no-docker-config")}) as pool:
        yield pool


def stuck_download(proxies: Loopback, action: str = "hang") -> tuple[str, str, str]:
    """An image whose layer download stops half way and goes silent ("silent": gets no answer at all):
    (source, target, target repository)."""
    image = images.image((400_000,))
    src, dst = unique_repo("upstream"), unique_repo("mirror")
    images.push(proxies.upstream.host, src, image, "v1")
    proxies.upstream_proxy.faults.append(Fault("GET", f"/blobs/{image.blobs[-1].digest}", action))
    return f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1", dst


def when_downloading(proxies: Loopback, action: Callable[[], None], blobs: str = "/blobs/") -> threading.Thread:
    """`action`, in a thread, once the upstream proxy sees a download matching `blobs` (any blob by default)."""
    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not proxies.upstream_proxy.count("GET", blobs):
            time.sleep(0.01)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread
