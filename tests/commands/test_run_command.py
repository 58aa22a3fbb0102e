"""`rehome run`'s GitHub token: the one check the Action's step makes too, each in its own terms."""
from __future__ import annotations

import argparse

import pytest

from bot.commands.run import github_token
from bot.errors import UsageError
from bot.registry import Secret

MISSING = UsageError("no GitHub token: the caller's reason", hint="the caller's fix")


def _args(dry_run: bool) -> argparse.Namespace:
    return argparse.Namespace(token_env="MY_TOKEN", dry_run=dry_run)


@pytest.mark.parametrize("environ", [{}, {"MY_TOKEN": ""}])
def test_a_run_that_pushes_needs_a_token_and_says_why_there_is_none_in_the_callers_terms(environ) -> None:
    with pytest.raises(UsageError) as caught:
        github_token(_args(dry_run=False), environ, MISSING)
    assert caught.value is MISSING


def test_a_dry_run_goes_without_and_a_token_given_is_kept_secret() -> None:
    assert github_token(_args(dry_run=True), {}, MISSING) is None
    assert github_token(_args(dry_run=True), {"MY_TOKEN": "t0ken"}, MISSING) == Secret("t0ken")
    assert github_token(_args(dry_run=False), {"MY_TOKEN": "t0ken"}, MISSING) == Secret("t0ken")
