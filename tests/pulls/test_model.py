from __future__ import annotations

import pytest

from bot.pulls.model import Limit, join_key, repository_of
from bot.pulls.times import HOUR


@pytest.mark.parametrize(("header", "limit"), [
    ("100;w=21600", Limit(100, 6 * HOUR)),
    ("200; w=3600", Limit(200, HOUR)),
    ("100", None), ("0;w=21600", None), ("100;w=0", None), ("many;w=60", None),
])
def test_limit_from_docker_hubs_header(header: str, limit: Limit | None) -> None:
    assert Limit.from_header(header) == limit


@pytest.mark.parametrize(("image", "key", "repository"), [
    ("nginx", "docker.io/library/nginx:latest", "docker.io/library/nginx"),
    ("index.docker.io/library/nginx:1.14.2", "docker.io/library/nginx:1.14.2", "docker.io/library/nginx"),
    ("ghcr.io/acme/api@sha256:" + "b" * 64, "ghcr.io/acme/api@sha256:" + "b" * 64, "ghcr.io/acme/api"),
    ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app"),
    ("NOT valid", "NOT valid", "NOT valid"),
])
def test_join_keys(image: str, key: str, repository: str) -> None:
    assert (join_key(image), repository_of(image)) == (key, repository)
