"""`rehome run`'s GitHub token: the one check the Action's step makes too, each in its own terms."""
from __future__ import annotations

import argparse

import pytest

from bot.commands.run import github_token
from bot.errors import UsageError
from bot.registry import Secret

HINT = "export GITHUB_TOKEN=… or name another variable with --token-env"


def _args(dry_run: bool) -> argparse.Namespace:
    return argparse.Namespace(token_env="MY_TOKEN", dry_run=dry_run)


@pytest.mark.parametrize("environ", [{}, {"MY_TOKEN": ""}])
def test_a_run_that_pushes_needs_a_token_and_says_why_there_is_none_in_the_callers_terms(environ) -> None:
    with pytest.raises(UsageError) as caught:
        github_token(_args(dry_run=False), environ, "MY_TOKEN is not set", hint=HINT)
    assert (caught.value.message, caught.value.hint) == ("no GitHub token: MY_TOKEN is not set", HINT)


def test_a_dry_run_goes_without_and_a_token_given_is_kept_secret() -> None:
    assert github_token(_args(dry_run=True), {}, "MY_TOKEN is not set", hint=HINT) is None
    assert github_token(_args(dry_run=True), {"MY_TOKEN": "t0ken"}, "unused", hint=HINT) == Secret("t0ken")
    assert github_token(_args(dry_run=False), {"MY_TOKEN": "t0ken"}, "unused", hint=HINT) == Secret("t0ken")
