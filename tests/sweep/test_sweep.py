"""`rehome sweep` end to end: the org on the GitHub stand-in, bare remotes, loopback registries."""
from __future__ import annotations

import json
from pathlib import Path

from bot import mirror
from tests.helpers import run_cli
from tests.sweep.conftest import ORG, TOKEN, TOKEN_ENV, Org

BRANCH = "rehome/mirror-images"


def sweep(capsys, org: Org, *extra: str) -> tuple[int, dict, str]:
    code, out, err = run_cli(capsys, "sweep", "--org", ORG, "--to", org.destination, "--github-url",
                             org.github.base_url, "--token-env", TOKEN_ENV, "--format", "json", *extra)
    return code, json.loads(out) if out.strip() else {}, err


def state_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_sweep_opens_one_pull_request_per_repository_with_changes(org: Org, capsys, tmp_path, monkeypatch) -> None:
    ensured: list[tuple[str, str]] = []
    real = mirror.ensure_images

    def counting(moves, options, **kwargs):
        ensured.extend(moves)
        return real(moves, options, **kwargs)

    monkeypatch.setattr(mirror, "ensure_images", counting)
    state, reports = tmp_path / "state.jsonl", tmp_path / "reports"
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-", "--state", str(state),
                              "--report", str(reports), "--jobs", "3")
    print(err)
    assert code == 1
    statuses = {r["repo"]: (r["status"], r["pr_url"] is not None) for r in result["repositories"]}
    assert statuses == {
        "acme/svc-api": ("done", True), "acme/svc-broken": ("failed", False), "acme/svc-docs": ("nothing-to-do", False),
        "acme/svc-jobs": ("done", True), "acme/svc-prfail": ("failed", False), "acme/svc-pushfail": ("failed", False),
        "acme/svc-web": ("done", True)}
    print(json.dumps(result, indent=1))
    print((reports / "report.md").read_text())
    print((reports / "report.csv").read_text())
    print(state.read_text())
    assert 0
