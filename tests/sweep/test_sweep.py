"""`rehome sweep` end to end: the org on the GitHub stand-in, bare remotes, loopback registries."""
from __future__ import annotations

import json
from pathlib import Path

import collections

import httpx

from bot import mirror
from tests.helpers import run_cli
from tests.oci import images
from tests.sweep.conftest import ORG, TOKEN, TOKEN_ENV, Org

BRANCH = "rehome/mirror-images"
ACCEPT = ", ".join([images.DOCKER_MANIFEST, images.OCI_MANIFEST, images.OCI_INDEX])


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
    assert code == 1
    statuses = {r["repo"]: (r["status"], r["pr_url"] is not None) for r in result["repositories"]}
    assert statuses == {
        "acme/svc-api": ("done", True), "acme/svc-broken": ("failed", False), "acme/svc-docs": ("nothing-to-do", False),
        "acme/svc-jobs": ("done", True), "acme/svc-prfail": ("failed", False), "acme/svc-pushfail": ("failed", False),
        "acme/svc-web": ("done", True)}
    # One pull request per repository with changes, none for the others.
    assert {name: len(org.pulls(name)) for name in org.remotes} == {
        "acme/svc-web": 1, "acme/svc-api": 1, "acme/svc-jobs": 1, "acme/svc-docs": 0, "acme/svc-broken": 0,
        "acme/svc-pushfail": 0, "acme/svc-prfail": 0}
    assert BRANCH not in org.remote_git("acme/svc-docs", "branch", "--list", BRANCH)
    web = org.remote_git("acme/svc-web", "show", f"{BRANCH}:Dockerfile")
    assert web == f"FROM {org.target('nginx')}\nCOPY site /usr/share/nginx/html"
    # Each failure is recorded with its reason; the others went on.
    errors = {r["repo"]: r["error"] for r in result["repositories"] if r["error"]}
    assert "does not appear to be a git repository" in errors["acme/svc-broken"]
    assert "pre-receive hook declined" in errors["acme/svc-pushfail"]
    assert errors["acme/svc-prfail"] == "GitHub: create pull request: 422 Validation Failed"
    md = (reports / "report.md").read_text()
    assert "422 Validation Failed" in md and "pre\\-receive hook declined" in md
    assert f"<{org.github.origin}/acme/svc-web/pull/1>" in md
    assert json.loads((reports / "report.json").read_text()) == {k: v for k, v in result.items() if k != "left_out"}
    csv_rows = (reports / "report.csv").read_text().splitlines()
    assert csv_rows[0] == "repo,status,pr_url,head,third_party,internal,unresolved,error"
    assert f"acme/svc-web,done,{org.github.origin}/acme/svc-web/pull/1," in (reports / "report.csv").read_text()
    # Images shared by several repositories are ensured once in the whole sweep, and are there.
    shared = {(org.image(n), org.target(n)) for n in ("nginx", "app", "redis")}
    assert collections.Counter(ensured) == {move: 1 for move in shared}
    assert {(i["image"], i["status"], len(i["repositories"])) for i in result["images"]} == {
        (org.image("nginx"), "copied", 2), (org.image("app"), "copied", 2), (org.image("redis"), "copied", 2)}
    for _, target in shared:
        host, rest = target.split("/", 1)
        name, tag = rest.rsplit(":", 1)
        assert httpx.head(f"http://{host}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT}).status_code == 200
    # The journal: one line per repository, written as each finished; one log line each (not a terminal).
    lines = state_lines(state)
    assert sorted((line["repo"], line["status"]) for line in lines) == sorted(
        (name, status) for name, (status, _) in statuses.items())
    web_head = org.remote_git("acme/svc-web", "rev-parse", "main")
    assert [line["head"] for line in lines if line["repo"] == "acme/svc-web"] == [web_head]
    assert all(line["finished_at"].endswith("Z") for line in lines)
    assert sorted(line.split("] ")[1].split(":")[0] for line in err.splitlines() if line.startswith("[")) == sorted(
        org.remotes)
    assert TOKEN not in err + json.dumps(result) + md

    # A rerun with the same state skips what is done at the same head and retries the rest.
    writes_before = len(org.github.writes())
    code, again, err = sweep(capsys, org, "--repo-include", "^acme/svc-", "--state", str(state), "--jobs", "3")
    assert code == 1
    assert {r["repo"]: r["status"] for r in again["repositories"]} == {
        "acme/svc-api": "done", "acme/svc-broken": "failed", "acme/svc-docs": "nothing-to-do", "acme/svc-jobs": "done",
        "acme/svc-prfail": "done", "acme/svc-pushfail": "failed", "acme/svc-web": "done"}
    new_writes = [(w.method, w.path) for w in org.github.writes()[writes_before:]]
    assert new_writes == [("POST", "/repos/acme/svc-prfail/pulls"), ("POST", "/repos/acme/svc-prfail/labels"),
                          ("POST", "/repos/acme/svc-prfail/issues/1/labels")]
    rerun = state_lines(state)[len(lines):]
    assert sorted((line["repo"], line["status"]) for line in rerun) == [
        ("acme/svc-broken", "failed"), ("acme/svc-prfail", "done"), ("acme/svc-pushfail", "failed")]
    assert "acme/svc-web: done (already done at this commit; skipped)" in err
    assert {name: len(org.pulls(name)) for name in ("acme/svc-web", "acme/svc-api", "acme/svc-jobs")} == {
        "acme/svc-web": 1, "acme/svc-api": 1, "acme/svc-jobs": 1}
