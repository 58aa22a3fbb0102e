"""GitLab CI: services keep the host names gitlab-runner gives them."""
from __future__ import annotations

from bot.rewrite import gitlab_aliases


def test_host_names_are_the_image_name_without_tag_digest_or_registry_port():
    digest = "sha256:" + "a" * 64
    assert {raw: gitlab_aliases(raw) for raw in (
        "redis:7", "bitnami/mysql:8.0", "registry.example.com:5000/group/postgres:11",
        f"localhost:5000/app@{digest}", "registry.example.com/tools/db:1",
    )} == {
        "redis:7": ["redis"],
        "bitnami/mysql:8.0": ["bitnami__mysql", "bitnami-mysql"],
        "registry.example.com:5000/group/postgres:11": ["registry.example.com__group__postgres",
                                                        "registry.example.com-group-postgres"],
        f"localhost:5000/app@{digest}": ["localhost__app", "localhost-app"],
        "registry.example.com/tools/db:1": ["registry.example.com__tools__db", "registry.example.com-tools-db"],
    }
