"""Forges: where the bot's branch is published and its pull request opened.

A forge is a class with the `Forge` protocol's methods; `FORGES` lists them by the name
`rehome run --forge` takes.
"""
from __future__ import annotations

from bot.forge.base import Forge, PullRequest, PullRequestRequest
from bot.forge.github import GitHubForge
from bot.forge.local import LocalForge

FORGES: dict[str, type[Forge]] = {
    "local": LocalForge,
    "github": GitHubForge,
}

__all__ = ["FORGES", "Forge", "GitHubForge", "LocalForge", "PullRequest", "PullRequestRequest"]
