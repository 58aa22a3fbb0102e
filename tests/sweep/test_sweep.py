"""`rehome sweep` end to end: the org on the GitHub stand-in, bare remotes, loopback registries."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import collections

import httpx
import pytest

from bot.sweep.select import shard_of
from tests.helpers import git, run_cli
from tests.oci import images
from tests.sweep.conftest import ORG, TOKEN, TOKEN_ENV, Org

ROOT = Path(__file__).resolve().parent.parent.parent
BRANCH = "rehome/mirror-images"
ACCEPT = ", ".join([images.DOCKER_MANIFEST, images.OCI_MANIFEST, images.OCI_INDEX])


def sweep(capsys, org: Org, *extra: str, by_org: bool = True, to: bool = True) -> tuple[int, dict, str]:
    which = ("--org", ORG) if by_org else ()
    destination = ("--to", org.destination) if to else ()
    code, out, err = run_cli(capsys, "sweep", *which, *destination, "--github-url",
                             org.github.base_url, "--token-env", TOKEN_ENV, "--format", "json", *extra)
    return code, json.loads(out) if out.strip() else {}, err


def state_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("workers", ["process", "thread"])
def test_a_sweep_opens_one_pull_request_per_repository_with_changes(org: Org, capsys, tmp_path, ensured,
                                                                   workers: str) -> None:
    state, reports = tmp_path / "state.jsonl", tmp_path / "reports"
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-", "--state", str(state),
                              "--report", str(reports), "--jobs", "3", "--workers", workers)
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
    assert errors["acme/svc-prfail"] == "GitHub: create pull request in acme/svc-prfail: 422 Validation Failed"
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
    # A repository that failed after its scan (push refused, pull request API error) still lists its images.
    assert {i["image"]: (i["status"], sorted(r["repo"] for r in i["repositories"])) for i in result["images"]} == {
        org.image("nginx"): ("copied", ["acme/svc-api", "acme/svc-prfail", "acme/svc-web"]),
        org.image("app"): ("copied", ["acme/svc-jobs", "acme/svc-web"]),
        org.image("redis"): ("copied", ["acme/svc-api", "acme/svc-jobs", "acme/svc-pushfail"])}
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
    code, again, err = sweep(capsys, org, "--repo-include", "^acme/svc-", "--state", str(state), "--jobs", "3",
                             "--workers", workers)
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


def test_a_repository_that_fails_after_its_scan_keeps_the_counts_its_scan_found(org: Org, capsys, tmp_path) -> None:
    state, reports = tmp_path / "state.jsonl", tmp_path / "reports"
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-(pushfail|prfail)$", "--state", str(state),
                              "--report", str(reports))
    assert code == 1, err
    head = {name: org.remote_git(name, "rev-parse", "main") for name in ("acme/svc-prfail", "acme/svc-pushfail")}
    # The push's error names the bot's commit, which is made in the run: taken as it is.
    pushed = next(r["error"] for r in result["repositories"] if r["repo"] == "acme/svc-pushfail")
    assert pushed.startswith("acme/svc-pushfail: git push failed: remote: protected: pushes are not allowed")
    assert "-> rehome/mirror-images (pre-receive hook declined)" in pushed
    report = {
        "version": 1, "mode": "sweep", "destination": org.destination, "interrupted": False, "not_reached": 0,
        "totals": {"repositories": 2, "done": 0, "partial": 0, "nothing-to-do": 0, "declined": 0,
                   "scanned": 0, "failed": 2, "third_party": 2, "internal": 0, "unresolved": 0, "images": 2},
        "repositories": [
            {"repo": "acme/svc-prfail", "status": "failed", "pr_url": None, "head": head["acme/svc-prfail"],
             "error": "GitHub: create pull request in acme/svc-prfail: 422 Validation Failed", "third_party": 1,
             "internal": 0, "unresolved": 0},
            {"repo": "acme/svc-pushfail", "status": "failed", "pr_url": None, "head": head["acme/svc-pushfail"],
             "error": pushed, "third_party": 1, "internal": 0, "unresolved": 0},
        ],
        # Each image the scan found, with the files using it and the copy made before the failure.
        "images": [
            {"image": org.image("nginx"), "target": org.target("nginx"), "pulls": None, "status": "copied",
             "repositories": [{"repo": "acme/svc-prfail", "files": ["deploy/pr.yaml"]}]},
            {"image": org.image("redis"), "target": org.target("redis"), "pulls": None, "status": "copied",
             "repositories": [{"repo": "acme/svc-pushfail", "files": ["Dockerfile"]}]},
        ],
    }
    assert {k: v for k, v in result.items() if k != "left_out"} == report
    assert json.loads((reports / "report.json").read_text()) == report
    assert (reports / "report.csv").read_text() == (
        "repo,status,pr_url,head,third_party,internal,unresolved,error\n"
        f"acme/svc-prfail,failed,,{head['acme/svc-prfail']},1,0,0,"
        "GitHub: create pull request in acme/svc-prfail: 422 Validation Failed\n"
        f'acme/svc-pushfail,failed,,{head["acme/svc-pushfail"]},1,0,0,"{pushed}"\n')
    md = (reports / "report.md").read_text()
    assert "| 2 | 2 | 2 | 2 | 0 | 0 |\n" in md  # repositories, failed, images, third-party, internal, unresolved
    assert ("| `acme/svc-prfail` | failed |  | 1 | GitHub\\: create pull request in acme/svc\\-prfail\\: 422 Validation "
            "Failed |\n") in md


def test_inventory_reports_repositories_and_images_and_writes_nothing(org: Org, capsys, tmp_path) -> None:
    pulls = tmp_path / "pulls.csv"
    pulls.write_text(f"imageName,numberOfPulls\n{org.image('redis')},1200\n{org.image('nginx')},45\n")
    reports = tmp_path / "inventory"
    code, result, err = sweep(capsys, org, "--inventory", "--repo-include", "^acme/(svc-|lib-0[01])",
                              "--pulls", str(pulls), "--report", str(reports))
    assert code == 1  # svc-broken cannot be cloned
    lib_head = git(org.root / "remotes" / "lib.git", "rev-parse", "main").strip()
    head = {name: org.remote_git(name, "rev-parse", "main") for name in org.remotes}

    def repo(name, status, third, internal, unresolved, error=None, commit=None):
        return {"repo": name, "status": status, "pr_url": None, "head": commit or head.get(name), "error": error,
                "third_party": third, "internal": internal, "unresolved": unresolved}

    gone = org.root / "remotes" / "gone.git"
    broken = (f"git clone failed: fatal: '{gone}' does not appear to be a git repository\n"
              "fatal: Could not read from remote repository.\n\n"
              "Please make sure you have the correct access rights\nand the repository exists.")
    report = {
        "version": 1, "mode": "inventory", "destination": org.destination, "interrupted": False, "not_reached": 0,
        "totals": {"repositories": 9, "done": 0, "partial": 0, "nothing-to-do": 0, "declined": 0,
                   "scanned": 8, "failed": 1, "third_party": 10, "internal": 1, "unresolved": 1, "images": 3},
        "repositories": [
            repo("acme/lib-00", "scanned", 1, 0, 0, commit=lib_head),
            repo("acme/lib-01", "scanned", 1, 0, 0, commit=lib_head),
            repo("acme/svc-api", "scanned", 2, 0, 1),
            {**repo("acme/svc-broken", "failed", None, None, None, broken), "head": None},
            repo("acme/svc-docs", "scanned", 0, 1, 0),
            repo("acme/svc-jobs", "scanned", 2, 0, 0),
            repo("acme/svc-prfail", "scanned", 1, 0, 0),
            repo("acme/svc-pushfail", "scanned", 1, 0, 0),
            repo("acme/svc-web", "scanned", 2, 0, 0),
        ],
        "images": [
            {"image": org.image("app"), "target": org.target("app"), "pulls": None, "status": None,
             "repositories": [{"repo": "acme/svc-jobs", "files": ["deploy/jobs.yaml"]},
                              {"repo": "acme/svc-web", "files": ["deploy/web.yaml"]}]},
            {"image": org.image("nginx"), "target": org.target("nginx"), "pulls": 45, "status": None,
             "repositories": [{"repo": "acme/svc-api", "files": ["Dockerfile"]},
                              {"repo": "acme/svc-prfail", "files": ["deploy/pr.yaml"]},
                              {"repo": "acme/svc-web", "files": ["Dockerfile"]}]},
            {"image": org.image("redis"), "target": org.target("redis"), "pulls": 1200, "status": None,
             "repositories": [{"repo": "acme/lib-00", "files": ["Dockerfile"]},
                              {"repo": "acme/lib-01", "files": ["Dockerfile"]},
                              {"repo": "acme/svc-api", "files": ["compose.yaml"]},
                              {"repo": "acme/svc-jobs", "files": ["docker-compose.yml"]},
                              {"repo": "acme/svc-pushfail", "files": ["Dockerfile"]}]},
        ],
    }
    assert json.loads((reports / "report.json").read_text()) == report
    assert {k: v for k, v in result.items() if k != "left_out"} == report
    left = {entry["repo"]: entry["reason"] for entry in result["left_out"]}
    assert (left["acme/svc-old"], left["acme/svc-fork"], left["acme/svc-new"], left["acme/svc-off"],
            left["acme/lib-02"]) == ("archived", "a fork", "empty", "disabled", "not matched by --repo-include")
    assert len(left) == 63 - 9 and "other/elsewhere" not in left
    assert (reports / "images.csv").read_text() == (
        "image,pulls,repositories,status,target\n"
        f"{org.image('redis')},1200,5,,{org.target('redis')}\n"
        f"{org.image('nginx')},45,3,,{org.target('nginx')}\n"
        f"{org.image('app')},,2,,{org.target('app')}\n")
    md = (reports / "report.md").read_text()
    assert "# rehome inventory" in md and "| `" + org.image("redis") + "` | 1,200 | 5 |" in md
    # No writes anywhere: no GitHub write, no branch, nothing in the mirror.
    assert org.github.writes() == []
    assert all(org.remote_git(name, "branch", "--list", BRANCH) == "" for name in org.remotes)
    host, rest = org.target("redis").split("/", 1)
    name, tag = rest.rsplit(":", 1)
    assert httpx.head(f"http://{host}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT}).status_code == 404


def test_a_repos_file_dry_run_writes_nothing_and_reports_unreadable_names(org: Org, capsys, tmp_path) -> None:
    names = tmp_path / "repos.txt"
    names.write_text("# the services\nacme/svc-web\nacme/svc-docs  # no third-party images\n\nacme/missing\n")
    state = tmp_path / "state.jsonl"
    code, result, err = sweep(capsys, org, "--repos-file", str(names), "--dry-run", "--state", str(state),
                              "--jobs", "1", by_org=False)
    assert code == 1, err
    # The repository that could not be read is counted, and has its line, as one that failed.
    assert [line for line in err.splitlines() if ": cloning " not in line] == [
        "3 repositories to sweep, 0 left out",
        "[1/3] acme/missing: failed: GitHub: read repository acme/missing: 404 Not Found",
        "[2/3] acme/svc-docs: nothing-to-do", "[3/3] acme/svc-web: done", "1 repository needs a look: acme/missing"]
    assert [(r["repo"], r["status"], r["error"]) for r in result["repositories"]] == [
        ("acme/missing", "failed", "GitHub: read repository acme/missing: 404 Not Found"),
        ("acme/svc-docs", "nothing-to-do", None), ("acme/svc-web", "done", None)]
    assert result["mode"] == "dry-run"
    assert org.github.writes() == [] and not state.exists()
    assert org.remote_git("acme/svc-web", "branch", "--list", BRANCH) == ""


def test_a_name_github_cannot_read_belongs_to_one_shard_as_any_name(org: Org, capsys, tmp_path) -> None:
    names = tmp_path / "repos.txt"
    names.write_text("acme/svc-docs\nacme/missing\nacme/gone\n")
    owners = {}
    for k in range(3):
        code, result, _ = sweep(capsys, org, "--repos-file", str(names), "--dry-run", "--shard", f"{k}/3", by_org=False)
        for entry in result["repositories"]:
            owners.setdefault(entry["repo"], []).append((k, entry["status"]))
    assert owners == {"acme/svc-docs": [(shard_of("acme/svc-docs", 3), "nothing-to-do")],
                      "acme/missing": [(shard_of("acme/missing", 3), "failed")],
                      "acme/gone": [(shard_of("acme/gone", 3), "failed")]}
    code, result, _ = sweep(capsys, org, "--repos-file", str(names), "--dry-run", "--repo-exclude", "missing",
                            by_org=False)
    assert ([r["repo"] for r in result["repositories"]], result["left_out"]) == (
        ["acme/gone", "acme/svc-docs"], [{"repo": "acme/missing", "reason": "matched by --repo-exclude"}])


def test_limit_takes_the_first_names_whether_github_can_read_them_or_not(org: Org, capsys, tmp_path) -> None:
    names = tmp_path / "repos.txt"
    names.write_text("acme/svc-web\nacme/svc-gone\nacme/svc-docs\n")
    swept = {}
    for limit in ("1", "2"):
        code, result, err = sweep(capsys, org, "--repos-file", str(names), "--dry-run", "--limit", limit,
                                  by_org=False)
        swept[limit] = (code, [(r["repo"], r["status"]) for r in result["repositories"]], result["left_out"],
                        err.splitlines()[0])
    assert swept == {
        "1": (0, [("acme/svc-docs", "nothing-to-do")],
              [{"repo": "acme/svc-gone", "reason": "over --limit 1"}, {"repo": "acme/svc-web", "reason": "over --limit 1"}],
              "1 repository to sweep, 2 left out"),
        "2": (1, [("acme/svc-docs", "nothing-to-do"), ("acme/svc-gone", "failed")],
              [{"repo": "acme/svc-web", "reason": "over --limit 2"}],
              "2 repositories to sweep, 1 left out"),
    }


BATCH = tuple(f"acme/batch-{n}" for n in range(1, 6))


def _batches(org: Org, tmp_path: Path) -> tuple[Path, Path]:
    """Five more repositories that really run, each moving one image: a --repos-file naming them
    (out of order), and where the sweeps' --state goes."""
    for name in BATCH:
        org.add_repository(name.split("/")[1], {"Dockerfile": f"FROM {org.image('nginx')}\n"})
    names, state = tmp_path / "repos.txt", tmp_path / "sweep.jsonl"
    names.write_text("".join(f"{name}\n" for name in reversed(BATCH)))
    return names, state


def _batch_sweep(capsys, org: Org, names: Path, state: Path, *extra: str) -> tuple[int, dict, str]:
    return sweep(capsys, org, "--repos-file", str(names), "--state", str(state), "--limit", "2", "--jobs", "3",
                 *extra, by_org=False)


def _ran(org: Org, name: str) -> dict:
    """A repository's summary entry once its run opened (or updated) its pull request."""
    return {"repo": name, "status": "done", "pr_url": f"{org.github.origin}/{name}/pull/1",
            "head": org.remote_git(name, "rev-parse", "main"), "error": None, "third_party": 1, "internal": 0,
            "unresolved": 0}


def _from_state(org: Org, name: str) -> dict:
    return {**_ran(org, name), "third_party": None, "internal": None, "unresolved": None}


def _summary(org: Org, ran: list[str], skipped: list[str], over: list[str], nginx: str) -> dict:
    entries = sorted([_ran(org, name) for name in ran] + [_from_state(org, name) for name in skipped],
                     key=lambda entry: entry["repo"])
    images = [{"image": org.image("nginx"), "target": org.target("nginx"), "pulls": None, "status": nginx,
               "repositories": [{"repo": name, "files": ["Dockerfile"]} for name in sorted(ran)]}] if ran else []
    return {"version": 1, "mode": "sweep", "destination": org.destination, "interrupted": False, "not_reached": 0,
            "totals": {"repositories": len(entries), "done": len(entries), "partial": 0, "nothing-to-do": 0,
                       "declined": 0, "scanned": 0, "failed": 0, "third_party": len(ran), "internal": 0,
                       "unresolved": 0, "images": 1 if ran else 0},
            "repositories": entries, "images": images,
            "left_out": [{"repo": name, "reason": "over --limit 2"} for name in over]}


def test_limit_with_state_runs_the_next_repositories_the_state_has_not_finished_batch_by_batch(
        org: Org, capsys, tmp_path) -> None:
    names, state = _batches(org, tmp_path)
    first, second, third, fourth, fifth = BATCH
    batches = [([first, second], [], [third, fourth, fifth], "copied", "2 repositories ran, 0 skipped", 3),
               ([third, fourth], [first, second], [fifth], "present", "2 repositories ran, 2 skipped", 1),
               ([fifth], [first, second, third, fourth], [], "present", "1 repository ran, 4 skipped", 0)]
    for ran, skipped, over, nginx, counts, left in batches:
        code, result, err = _batch_sweep(capsys, org, names, state)
        assert (code, result) == (0, _summary(org, ran, skipped, over, nginx)), err
        assert f"\n--limit 2: {counts} as finished in {state}, {left} left out for a later sweep\n" in err
        # Never more than two at once, though --jobs 3: none of those over the limit has started.
        assert [name for name in BATCH if org.pulls(name)] == sorted([*ran, *skipped])
        assert all(org.remote_git(name, "branch", "--list", BRANCH) == "" for name in over)
    assert sorted((line["repo"], line["status"]) for line in state_lines(state)) == [(name, "done") for name in BATCH]
    # Every repository finished: the fourth sweep runs none, and says so.
    code, out, err = run_cli(capsys, "sweep", "--repos-file", str(names), "--to", org.destination, "--github-url",
                             org.github.base_url, "--token-env", TOKEN_ENV, "--state", str(state), "--limit", "2")
    width = len(f"{org.github.origin}/acme/batch-1/pull/1")
    rows = "\n".join(f"{name}  done    {org.github.origin}/{name}/pull/1" for name in BATCH)
    assert (code, out) == (0, f"""\
REPOSITORY    STATUS  {'PULL REQUEST':<{width}}  THIRD-PARTY  ERROR
------------  ------  {'-' * width}  -----------  -----
{rows}
5 repositories (5 done), 0 left out; 0 third-party images
"""), out
    assert err.endswith(f"--limit 2: 0 repositories ran, 5 skipped as finished in {state}, 0 left out for a later "
                        "sweep\n"), err
    # A repository whose base branch moved since its line runs again, and counts as one that runs.
    for name in (first, third):
        work = org.root / "work" / name.split("/")[1]
        (work / "README.md").write_text("moved on\n")
        git(work, "add", "README.md")
        git(work, "commit", "-q", "-m", "moved on")
        git(work, "push", "-q", str(org.remotes[name]), "main")
    code, result, err = _batch_sweep(capsys, org, names, state)
    assert (code, result) == (0, _summary(org, [first, third], [second], [fourth, fifth], "present")), err
    assert {name: len(org.pulls(name)) for name in BATCH} == dict.fromkeys(BATCH, 1)
    # With other flags every one runs again, but a batch says so of its own only, once they ran.
    code, result, err = _batch_sweep(capsys, org, names, state, "--pin-digest")
    assert code == 0, err
    assert f"\n{state}: 2 repositories finished with other flags ran again (--pin-digest)\n" in err, err
    assert "run again" not in err


def test_a_dry_run_with_limit_and_state_shows_the_next_batch_and_an_inventory_takes_the_first_names(
        org: Org, capsys, tmp_path) -> None:
    names, state = _batches(org, tmp_path)
    code, _, err = _batch_sweep(capsys, org, names, state, "--limit", "1")
    assert code == 0, err
    journal = state.read_text()
    code, result, err = _batch_sweep(capsys, org, names, state, "--dry-run")
    assert (code, [(r["repo"], r["status"], r["pr_url"]) for r in result["repositories"]], result["left_out"]) == (
        0, [("acme/batch-1", "done", f"{org.github.origin}/acme/batch-1/pull/1"), ("acme/batch-2", "done", None),
            ("acme/batch-3", "done", None)],
        [{"repo": "acme/batch-4", "reason": "over --limit 2"}, {"repo": "acme/batch-5", "reason": "over --limit 2"}])
    assert f"--limit 2: 2 repositories ran, 1 skipped as finished in {state}, 2 left out for a later sweep\n" in err
    assert (state.read_text(), [name for name in BATCH if org.pulls(name)]) == (journal, ["acme/batch-1"])
    # An inventory does not read the journal: the first names, as without --state.
    code, result, err = _batch_sweep(capsys, org, names, state, "--inventory")
    assert (code, [(r["repo"], r["status"]) for r in result["repositories"]], result["left_out"]) == (
        0, [("acme/batch-1", "scanned"), ("acme/batch-2", "scanned")],
        [{"repo": name, "reason": "over --limit 2"} for name in BATCH[2:]])
    assert "--limit 2:" not in err


def test_limit_with_state_runs_the_repositories_not_yet_run_before_those_that_failed(
        org: Org, capsys, tmp_path) -> None:
    """Two repositories whose pushes are always refused would take both places of every batch of two,
    were the batch taken by name alone: they run again after those that never ran."""
    names, state = _batches(org, tmp_path)
    first, second, third, fourth, fifth = BATCH
    for name in (first, second):
        hook = org.remotes[name] / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'protected: pushes are not allowed' >&2\nexit 1\n")
        hook.chmod(0o755)
    batches = [([(first, "failed"), (second, "failed")], [third, fourth, fifth], "2 repositories ran, 0 skipped"),
               ([(third, "done"), (fourth, "done")], [first, second, fifth], "2 repositories ran, 0 skipped"),
               ([(first, "failed"), (third, "done"), (fourth, "done"), (fifth, "done")], [second],
                "2 repositories ran, 2 skipped")]
    for ran, over, counts in batches:
        code, result, err = _batch_sweep(capsys, org, names, state)
        assert (code, [(r["repo"], r["status"]) for r in result["repositories"]], result["left_out"]) == (
            int("failed" in dict(ran).values()), ran,
            [{"repo": name, "reason": "over --limit 2"} for name in over]), err
        assert f"\n--limit 2: {counts} as finished in {state}, {len(over)} left out for a later sweep\n" in err
    assert [name for name in BATCH if org.pulls(name)] == [third, fourth, fifth]


@pytest.mark.parametrize("limit, not_reached, over", [("3", 4, ()), ("1", 0, BATCH[1:])])
def test_a_sweep_with_limit_and_state_interrupted_leaves_for_later_only_those_it_would_not_have_run(
        org: Org, capsys, tmp_path, monkeypatch, limit: str, not_reached: int, over: tuple[str, ...]) -> None:
    import bot.sweep.runner as runner

    real = runner.run_repository

    def then_sigterm(forge, args, **kwargs):
        result = real(forge, args, **kwargs)
        signal.raise_signal(signal.SIGTERM)  # the sweep's handler takes it: it starts no other repository
        return result

    monkeypatch.setattr(runner, "run_repository", then_sigterm)
    names, state = _batches(org, tmp_path)
    code, result, err = _batch_sweep(capsys, org, names, state, "--limit", limit, "--jobs", "1", "--workers", "thread")
    assert (code, [(r["repo"], r["status"]) for r in result["repositories"]], result["interrupted"],
            result["not_reached"], result["left_out"]) == (
        130, [("acme/batch-1", "done")], True, not_reached,
        [{"repo": name, "reason": f"over --limit {limit}"} for name in over])
    assert (f"--limit {limit}: 1 repository ran, 0 skipped as finished in {state}, {len(over)} left out for a later "
            "sweep\n") in err
    assert [name for name in BATCH if org.pulls(name)] == ["acme/batch-1"]


def test_a_dry_run_fails_an_image_missing_upstream_as_the_sweep_then_does(org: Org, capsys) -> None:
    gone = f"{org.upstream}/{org.prefix}/gone:1"
    org.add_repository("svc-gone", {"Dockerfile": f"FROM {org.image('nginx')}\n",
                                    "compose.yaml": f"services:\n  job:\n    image: {gone}\n"})
    only = ("--repo-include", "^acme/svc-gone$")
    dry_code, dry, _ = sweep(capsys, org, *only, "--dry-run")
    assert org.github.writes() == []
    code, real, _ = sweep(capsys, org, *only)
    assert (dry_code, code) == (1, 1)
    [entry] = real["repositories"]
    assert (entry["status"], entry["error"]) == (
        "partial", f"{gone} not moved (failed: resolve tag 1: no such image (manifest unknown))")
    # What the sweep then did, but for the pull request it opened and the copy it made.
    assert dry["repositories"] == [{**entry, "pr_url": None}]
    assert dry["images"] == [real["images"][0], {**real["images"][1], "status": "missing"}]
    assert (dry["totals"], real["images"][0]["status"]) == (real["totals"], "failed")


def test_sweep_usage_errors(org: Org, capsys, tmp_path) -> None:
    for extra, message in ((("--shard", "3/3"), "--shard '3/3'"), (("--repo-include", "("), "invalid regular"),
                           (("--repos-file", str(tmp_path / "x")), "--org ORG or --repos-file FILE"),
                           (("--inventory", "--dry-run"), "--inventory already writes nothing")):
        code, _, err = sweep(capsys, org, *extra)
        assert code == 2 and message in err, err


def test_a_bug_in_one_repository_is_its_outcome_and_the_sweep_goes_on(org: Org, capsys, monkeypatch) -> None:
    import bot.sweep.runner as runner

    real = runner.run_repository

    def flaky(forge, args, **kwargs):
        if forge.repository == "acme/svc-api":
            raise KeyError("boom")
        return real(forge, args, **kwargs)

    monkeypatch.setattr(runner, "run_repository", flaky)
    # Threads: the patch is in this process (a worker process would run the real one).
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-(api|web)$", "--workers", "thread")
    assert code == 1
    assert {(r["repo"], r["status"]) for r in result["repositories"]} == {("acme/svc-api", "failed"),
                                                                          ("acme/svc-web", "done")}
    (error,) = [r["error"] for r in result["repositories"] if r["error"]]
    assert error.startswith("internal error: KeyError: 'boom' (at test_sweep.py:")


def test_each_repository_costs_github_only_the_requests_its_pull_request_needs(org: Org, capsys) -> None:
    """The listing gave the clone URL and the default branch: the repository is not read again."""
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-api$")
    assert code == 0, err
    asked = [(r.method, r.path) for r in org.github.requests if r.path.startswith("/repos/acme/svc-api")]
    assert asked == [
        ("GET", "/repos/acme/svc-api/pulls"),  # a pull request of the bot's already open?
        ("POST", "/repos/acme/svc-api/pulls"),
        ("GET", "/repos/acme/svc-api/labels/rehome"),
        ("POST", "/repos/acme/svc-api/labels"),  # the label did not exist yet
        ("POST", "/repos/acme/svc-api/issues/1/labels"),
    ]


def test_a_repository_without_commits_has_nothing_to_do(org: Org, capsys, tmp_path) -> None:
    # svc-blank has no commits either, but its listed size is not 0 (GitHub's can lag): its clone finds out.
    org.github.add_repo("acme/svc-blank", f"file://{org.root}/remotes/svc-new.git")
    state = tmp_path / "state.jsonl"
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-(new|docs|blank)$", "--include-empty",
                              "--state", str(state))
    assert code == 0, err
    docs_head = org.remote_git("acme/svc-docs", "rev-parse", "main")
    empty = {"pr_url": None, "head": None, "error": None, "third_party": 0, "internal": 0, "unresolved": 0}
    assert result["repositories"] == [
        {"repo": "acme/svc-blank", "status": "nothing-to-do", **empty},
        {"repo": "acme/svc-docs", "status": "nothing-to-do", "pr_url": None, "head": docs_head, "error": None,
         "third_party": 0, "internal": 1, "unresolved": 0},
        {"repo": "acme/svc-new", "status": "nothing-to-do", **empty}]
    assert sorted((line["repo"], line["status"], line["head"], line["error"]) for line in state_lines(state)) == [
        ("acme/svc-blank", "nothing-to-do", None, None), ("acme/svc-docs", "nothing-to-do", docs_head, None),
        ("acme/svc-new", "nothing-to-do", None, None)]
    assert "acme/svc-new: no commits yet; nothing to scan" in err
    assert "acme/svc-blank: no commits yet; nothing to scan" in err
    assert org.github.writes() == []
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-(new|blank)$", "--include-empty",
                              "--inventory")
    assert code == 0, err
    assert result["repositories"] == [{"repo": "acme/svc-blank", "status": "scanned", **empty},
                                      {"repo": "acme/svc-new", "status": "scanned", **empty}]


def test_a_bad_rehome_yaml_is_named_by_the_repository_and_its_path_there(org: Org, capsys, tmp_path) -> None:
    work = org.root / "work" / "svc-web"
    (work / "rehome.yaml").write_text("labels: images\n")
    git(work, "add", "rehome.yaml")
    git(work, "commit", "-q", "-m", "configure")
    git(work, "push", "-q", str(org.remotes["acme/svc-web"]), "main")
    message = "acme/svc-web: rehome.yaml: key 'labels': 'images' is not of type 'array'"
    for mode in ((), ("--inventory",)):
        code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", *mode)
        assert code == 1
        assert [(r["repo"], r["status"], r["error"]) for r in result["repositories"]] == [
            ("acme/svc-web", "failed", message)]
        assert f"[1/1] acme/svc-web: failed: {message}\n" in err
        assert "1 repository needs a look: acme/svc-web\n" in err


def test_a_pull_request_whose_labels_fail_is_partial_and_the_rerun_labels_it(org: Org, capsys, tmp_path) -> None:
    org.github.faults.append(("POST", "^/repos/acme/svc-web/issues/1/labels$", 403, {},
                              {"message": "Resource not accessible by integration"}))
    state = tmp_path / "state.jsonl"
    url = f"{org.github.origin}/acme/svc-web/pull/1"
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--state", str(state))
    assert code == 1
    error = (f"{url}: its labels could not be set (GitHub: add labels: 403 Resource not accessible by integration); "
             "the next run tries again")
    assert [(r["repo"], r["status"], r["pr_url"], r["error"]) for r in result["repositories"]] == [
        ("acme/svc-web", "partial", url, error)]
    assert [(line["status"], line["pr_url"], line["error"]) for line in state_lines(state)] == [
        ("partial", url, error)]
    assert org.pulls("acme/svc-web")[0]["labels"] == []
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--state", str(state))
    assert code == 0, err
    assert [(r["repo"], r["status"], r["pr_url"], r["error"]) for r in result["repositories"]] == [
        ("acme/svc-web", "done", url, None)]
    assert org.pulls("acme/svc-web")[0]["labels"] == ["rehome"] and len(org.pulls("acme/svc-web")) == 1


def test_a_repository_whose_pull_request_was_closed_without_merging_is_declined(org: Org, capsys, tmp_path) -> None:
    sweep(capsys, org, "--repo-include", "^acme/svc-api$")
    org.github.close_pull("acme/svc-api", 1)
    state, reports = tmp_path / "state.jsonl", tmp_path / "reports"
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-api$", "--state", str(state),
                              "--report", str(reports))
    url, head = f"{org.github.origin}/acme/svc-api/pull/1", org.remote_git("acme/svc-api", "rev-parse", "main")
    assert code == 0, err
    assert (result["totals"], result["repositories"]) == (
        {"repositories": 1, "done": 0, "partial": 0, "nothing-to-do": 0, "declined": 1, "scanned": 0, "failed": 0,
         "third_party": 2, "internal": 0, "unresolved": 1, "images": 2},
        [{"repo": "acme/svc-api", "status": "declined", "pr_url": url, "head": head, "error": None, "third_party": 2,
          "internal": 0, "unresolved": 1}])
    assert [(line["repo"], line["status"], line["pr_url"], line["error"]) for line in state_lines(state)] == [
        ("acme/svc-api", "declined", url, None)]
    assert err.splitlines()[-1] == f"[1/1] acme/svc-api: declined: {url}"
    assert f"| `acme/svc-api` | declined | <{url}> | 2 |  |\n" in (reports / "report.md").read_text()
    assert [(p["number"], p["state"]) for p in org.pulls("acme/svc-api")] == [(1, "closed")]
    # A rerun with the same journal looks again: asked to, it opens a new pull request.
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-api$", "--state", str(state),
                              "--recreate-closed")
    url = f"{org.github.origin}/acme/svc-api/pull/2"
    assert (code, [(r["status"], r["pr_url"]) for r in result["repositories"]]) == (0, [("done", url)])
    assert [(p["number"], p["state"]) for p in org.pulls("acme/svc-api")] == [(1, "closed"), (2, "open")]


def test_pygithubs_own_log_lines_are_not_printed_by_the_workers(org: Org) -> None:
    org.github.faults.append(("POST", "^/repos/acme/svc-web/issues/1/labels$", 403, {},
                              {"message": "Resource not accessible by integration"}))
    url = f"{org.github.origin}/acme/svc-web/pull/1"
    argv = [sys.executable, "-m", "bot", "sweep", "--org", ORG, "--to", org.destination, "--github-url",
            org.github.base_url, "--token-env", TOKEN_ENV, "--repo-include", "^acme/svc-web$", "--workers", "process"]
    run = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    # Said once, in rehome's words; not also twice by PyGithub ("Request POST … failed with 403: Forbidden").
    assert (run.returncode, run.stderr.splitlines()) == (1, [
        "1 repository to sweep, 62 left out", f"acme/svc-web: cloning file://{org.remotes['acme/svc-web']} (branch main)",
        f"acme/svc-web: pushing {BRANCH}", f"acme/svc-web: opened {url}",
        f"acme/svc-web: {url}: its labels could not be set (GitHub: add labels: 403 Resource not accessible by "
        "integration); the next run tries again",
        f"[1/1] acme/svc-web: partial: {url}", "1 repository needs a look: acme/svc-web"])


def test_a_state_journal_that_cannot_be_written_stops_the_sweep_and_the_report_says_what_finished(
        org: Org, capsys, tmp_path, monkeypatch) -> None:
    from bot.sweep import state as state_module

    def full(path, line):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(state_module, "_append", full)
    state, reports = tmp_path / "state.jsonl", tmp_path / "reports"
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-(api|jobs|web)$", "--state", str(state),
                              "--report", str(reports), "--jobs", "1", "--workers", "thread")
    assert code == 1
    url = f"{org.github.origin}/acme/svc-api/pull/1"
    assert [(r["repo"], r["status"], r["pr_url"]) for r in result["repositories"]] == [("acme/svc-api", "done", url)]
    assert (result["interrupted"], result["not_reached"]) == (True, 2)
    assert json.loads((reports / "report.json").read_text()) == {k: v for k, v in result.items() if k != "left_out"}
    message = f"{state}: cannot write the sweep state (acme/svc-api's line): No space left on device"
    assert err.endswith(f"error: {message}\nhint: make room for it (or give another --state) and run the sweep "
                        "again: the repositories not journaled run again, their pull requests updated\n"), err
    assert f"{message}; starting no other repository" in err
    assert not state.exists() and org.pulls("acme/svc-jobs") == org.pulls("acme/svc-web") == []


def test_a_state_file_of_a_sweep_with_other_flags_skips_nothing(org: Org, capsys, tmp_path) -> None:
    state = tmp_path / "state.jsonl"
    code, _, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--state", str(state))
    assert code == 0, err
    head = org.remote_git("acme/svc-web", "rev-parse", "main")
    (line,) = state_lines(state)
    assert (line["head"], line["inputs"]) == (head, {
        "to": org.destination, "mapping": None, "pin_digest": None, "refresh": False, "config": None, "rules": [],
        "internal": None, "include": None, "exclude": None, "max_file_size": None, "pulls": None, "since": None,
        "until": None, "branch": None, "title": None, "labels": None, "reviewers": None, "assignees": None,
        "draft": None, "templates": None, "config_sha256": None, "rules_sha256": None, "pulls_sha256": None,
        "templates_sha256": None})
    code, _, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--state", str(state), "--branch", "rehome/b2")
    assert code == 0, err
    assert "skipped" not in err and org.remote_git("acme/svc-web", "rev-parse", "rehome/b2")
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--state", str(state),
                              "--branch", "rehome/b2")
    assert "acme/svc-web: done (already done at this commit; skipped)" in err
    # Pinning digests changes the pull request: the repository runs again, and its branch is pinned.
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--state", str(state), "--pin-digest")
    assert code == 0, err
    assert f"{state}: 1 repository finished with other flags runs again (--branch, --pin-digest)\n" in err
    assert "skipped" not in err
    host, rest = org.target("nginx").split("/", 1)
    name, tag = rest.rsplit(":", 1)
    digest = httpx.head(f"http://{host}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT}).headers[
        "Docker-Content-Digest"]
    assert org.remote_git("acme/svc-web", "show", f"{BRANCH}:Dockerfile") == (
        f"FROM {org.target('nginx')}@{digest}\nCOPY site /usr/share/nginx/html")
    assert state_lines(state)[-1]["inputs"]["pin_digest"] is True
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--state", str(state), "--pin-digest")
    assert "acme/svc-web: done (already done at this commit; skipped)" in err and "other flags" not in err
    # A line an older version wrote (fewer inputs, or none) does not say the flags were the same: it runs again.
    for older in ({k: v for k, v in line.items() if k != "inputs"},
                  {**line, "inputs": {k: line["inputs"][k] for k in ("to", "branch", "mapping")}}):
        state.write_text(json.dumps(older) + "\n")
        code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--state", str(state))
        assert code == 0, err
        assert (f"{state}: 1 repository finished with other flags runs again (1 line of another rehome "
                "version, not recording the same flags)\n") in err
        assert "skipped" not in err and state_lines(state)[-1]["inputs"] == line["inputs"]
    other = org.destination.replace("/mirror", "/other")
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--state", str(state), "--to", other)
    assert code == 0, err
    assert "skipped" not in err and [r["status"] for r in result["repositories"]] == ["done"]
    assert state_lines(state)[-1]["inputs"] == {**line["inputs"], "to": other}


def _sweep_with_sigterm_after(capsys, org: Org, tmp_path, monkeypatch, module,
                              name: str) -> tuple[int, dict, list[str]]:
    """A sweep of acme/svc-web that gets SIGTERM once `module.name` has returned (the sweep's handler
    takes it, in this thread): the exit code, the summary (the same as report.json), and the lines of
    standard error after the repository's."""
    real = getattr(module, name)

    def then_sigterm(*args, **kwargs):
        result = real(*args, **kwargs)
        signal.raise_signal(signal.SIGTERM)
        return result

    monkeypatch.setattr(module, name, then_sigterm)
    reports = tmp_path / "reports"
    before = signal.getsignal(signal.SIGTERM)
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--workers", "thread", "--report",
                              str(reports))
    assert signal.getsignal(signal.SIGTERM) is before  # a caller of main gets its handler back
    assert json.loads((reports / "report.json").read_text()) == {k: v for k, v in result.items() if k != "left_out"}
    url = f"{org.github.origin}/acme/svc-web/pull/1"
    assert [r["status"] for r in result["repositories"]] == ["done"]
    lines = err.splitlines()
    assert lines[:5] == ["1 repository to sweep, 62 left out",
                         f"acme/svc-web: cloning file://{org.remotes['acme/svc-web']} (branch main)",
                         f"acme/svc-web: pushing {BRANCH}", f"acme/svc-web: opened {url}",
                         f"[1/1] acme/svc-web: done: {url}"]
    return code, result, lines[5:]


def test_a_signal_once_every_repository_has_finished_but_before_the_summary_is_an_interrupt(
        org: Org, capsys, tmp_path, monkeypatch) -> None:
    import bot.commands.sweep as sweep_command

    code, result, after = _sweep_with_sigterm_after(capsys, org, tmp_path, monkeypatch, sweep_command, "sweep")
    assert (code, result["interrupted"], result["not_reached"], after) == (130, True, 0, [
        "SIGTERM: starting no other repository; none is running: the sweep writes its summary and "
        "reports, which say it was interrupted",
        "rehome: interrupted"])


def test_a_signal_while_the_summary_and_reports_are_written_changes_nothing_and_says_so(
        org: Org, capsys, tmp_path, monkeypatch) -> None:
    from bot.sweep import report as sweep_report

    code, result, after = _sweep_with_sigterm_after(capsys, org, tmp_path, monkeypatch, sweep_report, "write")
    assert (code, result["interrupted"], result["not_reached"], after) == (0, False, 0, [
        "SIGTERM: every repository has finished: the sweep writes its summary and reports and ends as it would have"])


def test_the_destination_a_config_file_sets_is_the_sweeps_without_to(org: Org, capsys, tmp_path) -> None:
    config = tmp_path / "rehome.yaml"
    config.write_text(f"destination: {org.destination}\n")
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-web$", "--config", str(config), to=False)
    assert (code, result["destination"], [r["status"] for r in result["repositories"]]) == (
        0, org.destination, ["done"]), err
    assert org.remote_git("acme/svc-web", "show", f"{BRANCH}:Dockerfile") == (
        f"FROM {org.target('nginx')}\nCOPY site /usr/share/nginx/html")


def test_a_config_file_edited_in_place_runs_the_finished_repositories_again(org: Org, capsys, tmp_path) -> None:
    state, config = tmp_path / "state.jsonl", tmp_path / "rehome.yaml"
    config.write_text('mapping: "{destination}/a/{domain}/{path}"\n')
    only = ("--repo-include", "^acme/svc-web$", "--state", str(state), "--config", str(config))
    code, _, err = sweep(capsys, org, *only)
    assert code == 0, err
    code, _, err = sweep(capsys, org, *only)
    assert "acme/svc-web: done (already done at this commit; skipped)" in err
    config.write_text('mapping: "{destination}/b/{domain}/{path}"\n')
    code, result, err = sweep(capsys, org, *only)
    assert code == 0, err
    assert f"{state}: 1 repository finished with other flags runs again (the contents of --config)\n" in err
    assert "skipped" not in err and [r["status"] for r in result["repositories"]] == ["done"]
    moved = org.target("nginx").replace("/mirror/", "/mirror/b/")
    assert org.remote_git("acme/svc-web", "show", f"{BRANCH}:Dockerfile") == (
        f"FROM {moved}\nCOPY site /usr/share/nginx/html")
