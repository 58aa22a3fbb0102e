"""How a repository's run result becomes its journal status."""
from __future__ import annotations

from bot.mirror import MirrorImage
from bot.pipeline import RunResult
from bot.rewrite import FileRewrite
from bot.sweep.runner import outcome_of

FAILED = MirrorImage("docker.io/library/gone:1", "m/gone:1", None, (), "failed", 0, None, "no such image")
CHANGED = FileRewrite("a.yaml", "image: x\n", "image: y\n", 1)
UNTOUCHED = FileRewrite("b.yaml", "image: x\n", None, 0, "the rewritten file no longer reads as kubernetes")


def test_outcomes() -> None:
    assert outcome_of(RunResult("r", "opened", "", rewrites=[CHANGED])) == ("done", None)
    assert outcome_of(RunResult("r", "unchanged", "", rewrites=[CHANGED])) == ("done", None)
    assert outcome_of(RunResult("r", "nothing-to-do", "")) == ("nothing-to-do", None)
    assert outcome_of(RunResult("r", "updated", "", images=[FAILED], rewrites=[CHANGED])) == (
        "partial", "docker.io/library/gone:1 not moved (failed: no such image)")
    assert outcome_of(RunResult("r", "nothing-to-do", "", images=[FAILED])) == (
        "failed", "docker.io/library/gone:1 not moved (failed: no such image)")
    assert outcome_of(RunResult("r", "opened", "", rewrites=[CHANGED, UNTOUCHED])) == (
        "partial", "b.yaml left as it is (the rewritten file no longer reads as kubernetes)")
    assert outcome_of(RunResult("r", "nothing-to-do", "", rewrites=[UNTOUCHED]))[0] == "failed"
    assert outcome_of(RunResult("r", "stopped", "r: stopped: the branch holds commits by someone else")) == (
        "failed", "r: stopped: the branch holds commits by someone else")
    assert outcome_of(RunResult("r", "dry-run", "", changed=True)) == ("done", None)
    assert outcome_of(RunResult("r", "dry-run", "", changed=False)) == ("nothing-to-do", None)
