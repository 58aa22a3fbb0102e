"""The sweep's GitHub side: paginated listing and filters, rate limits, App installation tokens,
`rehome report status`."""
from __future__ import annotations

import datetime
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.registry import Secret
from bot.sweep import access
from bot.sweep.ratelimit import RateLimiter
from bot.sweep.select import Selection, Unreadable, select
from tests.github.server import GitHubServer
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP, run_cli
from tests.sweep.conftest import LIBS, ORG, PER_PAGE, TOKEN, TOKEN_ENV, Org
from tests.sweep.held import Held
from tests.sweep.test_sweep import state_lines, sweep
from tests.sweep.test_workers import sweep_process, wait_for_line


def listed(org: Org) -> list:
    tokens = access.TokenSource(Secret(TOKEN))
    return list(access.org_repositories(access.client(tokens, org.github.base_url), ORG, RateLimiter()))


def names(repos) -> list[str]:
    return [repo.full_name for repo in repos]


def test_the_org_is_listed_page_by_page_and_filtered(org: Org) -> None:
    repos = listed(org)
    total = len(org.remotes) + LIBS + 4
    assert len(repos) == total and total > 2 * PER_PAGE
    pages = [r for r in org.github.requests if r.path == f"/orgs/{ORG}/repos"]
    # The organisation, then its pages; never one request per repository.
    assert [r.path for r in org.github.requests] == [f"/orgs/{ORG}"] + [f"/orgs/{ORG}/repos"] * 3
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3"]
    assert all(r.authorization == f"token {TOKEN}" for r in pages)
    by_name = {r.full_name: r for r in repos}
    assert (by_name["acme/svc-old"].archived, by_name["acme/svc-fork"].fork, by_name["acme/svc-new"].empty,
            by_name["acme/svc-off"].disabled, by_name["acme/lib-10"].topics) == (True, True, True, True, ("team-x",))

    def taken(**flags) -> list[str]:
        return names(select(repos, Selection.from_flags(flags.pop("include", ()), flags.pop("exclude", ()),
                                                         **flags))[0])

    assert taken(include=["^acme/svc-"]) == [f"acme/svc-{n}" for n in
                                             ("api", "broken", "docs", "jobs", "prfail", "pushfail", "web")]
    assert taken(include=["^acme/svc-"], exclude=["fail$", "broken"], include_archived=True, include_forks=True,
                 include_empty=True) == [f"acme/svc-{n}" for n in ("api", "docs", "fork", "jobs", "new", "old", "web")]
    assert taken(topics=("team-x",)) == [f"acme/lib-{n}" for n in ("00", "10", "20", "30", "40", "50")]
    assert taken(topics=("team-x",), limit=2) == ["acme/lib-00", "acme/lib-10"]
    assert len(taken()) == len(org.remotes) + LIBS  # archived, fork, empty and disabled left out by default


@pytest.mark.parametrize("workers", ["process", "thread"])
def test_rate_limit_headers_make_the_sweep_wait_and_say_so(org: Org, capsys, monkeypatch, workers: str) -> None:
    waits: list[float] = []
    budget = {"left": 30, "reset": int(time.time()) + 600}

    def headers() -> dict[str, str]:
        budget["left"] = max(0, budget["left"] - 1)
        return {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(budget["left"]),
                "X-RateLimit-Reset": str(budget["reset"])}

    def fake_sleep(seconds: float) -> None:  # the reset came: a full budget again
        waits.append(seconds)
        budget["left"], budget["reset"] = 5000, int(time.time()) + 3600

    org.github.rate_headers = headers
    monkeypatch.setattr("bot.commands.sweep.RateLimiter", lambda: RateLimiter(reserve=20, sleep=fake_sleep))
    # Secondary limits: a 403 and a 429 with Retry-After, each retried after the wait it asks for.
    org.github.faults.append(("GET", f"^/orgs/{ORG}/repos$", 403, {"Retry-After": "1"},
                              {"message": "You have exceeded a secondary rate limit."}))
    org.github.faults.append(("POST", "^/repos/acme/svc-web/pulls$", 429, {"Retry-After": "1"},
                              {"message": "You have exceeded a secondary rate limit."}))
    code, result, err = sweep(capsys, org, "--repo-include", "^acme/svc-(web|docs)$", "--jobs", "1",
                              "--workers", workers)
    assert code == 0, err
    assert [r["status"] for r in result["repositories"]] == ["nothing-to-do", "done"]
    assert len(waits) == 1 and 590 < waits[0] <= 601
    said = re.findall(r"GitHub rate limit: (\d+) requests left; waiting (\d+)s until the reset at", err)
    assert len(said) == 1 and int(said[0][0]) <= 20 and said[0][1] == f"{waits[0]:.0f}"
    assert err.count("GitHub: waiting 1.0s before retrying (rate limit or server error)") == 2
    assert len(org.pulls("acme/svc-web")) == 1


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_a_sweep_interrupted_while_listing_writes_its_reports_saying_so(org: Org, tmp_path, how: str) -> None:
    """Every answer says no request is left until a reset an hour away: the sweep waits after the
    listing's first page. Interrupted then, it ran no repository and cannot know how many there are."""
    reports, log = tmp_path / "reports", tmp_path / "stderr"
    reset = int(time.time()) + 3600
    org.github.rate_headers = lambda: {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0",
                                       "X-RateLimit-Reset": str(reset)}
    with log.open("w") as stderr:
        process = sweep_process(org, "--report", str(reports), stderr=stderr)
        try:
            waiting = wait_for_line(log, "GitHub rate limit: ")
            if how == "ctrl-c":
                os.killpg(process.pid, signal.SIGINT)
            else:
                process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=60)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 130
    at = datetime.datetime.fromtimestamp(reset, datetime.timezone.utc).strftime("%H:%M:%S")
    assert re.fullmatch(rf"GitHub rate limit: 0 requests left; waiting 3[56]\d\ds until the reset at {at} UTC", waiting)
    assert log.read_text() == f"{waiting}\nrehome: interrupted\n"
    assert [r.path for r in org.github.requests] == [f"/orgs/{ORG}", f"/orgs/{ORG}/repos"]
    report = {"version": 1, "mode": "sweep", "destination": org.destination, "interrupted": True, "not_reached": None,
              "totals": {"repositories": 0, "done": 0, "partial": 0, "nothing-to-do": 0, "declined": 0, "scanned": 0, "failed": 0,
                         "third_party": 0, "internal": 0, "unresolved": 0, "images": 0},
              "repositories": [], "images": []}
    assert json.loads(out) == {**report, "left_out": []}
    assert json.loads((reports / "report.json").read_text()) == report
    assert (reports / "report.md").read_text() == f"""# rehome sweep

Destination: `{org.destination}`

Interrupted: the sweep was stopped before it finished; not reached, and not in this report: an unknown number of \
repositories (it was stopped before they were all listed).

| repositories | images | third-party references | internal | unresolved |
|---:|---:|---:|---:|---:|
| 0 | 0 | 0 | 0 | 0 |

## Images

No third-party images.

## Repositories

| repository | status | pull request | third-party | error |
|---|---|---|---:|---|
"""
    assert (reports / "report.csv").read_text() == "repo,status,pr_url,head,third_party,internal,unresolved,error\n"


def signalled_while_held(org: Org, held: Held, log: Path, signum: int, *args: str,
                         said: bool = True) -> tuple[int, str | None, str]:
    """`rehome sweep ARGS` held at `held`'s point, where its whole group gets the signal, then let go: its
    exit code, the line of standard error (in `log`) that names the signal (when it is `said`), and
    standard output."""
    with log.open("w") as stderr:
        process = sweep_process(org, *args, stderr=stderr, held=held)
        try:
            held.wait()
            os.killpg(process.pid, signum)
            line = wait_for_line(log, f"{signal.Signals(signum).name}: ", process) if said else None
            held.release()
            out, _ = process.communicate(timeout=60)
        finally:
            process.kill()
            process.wait()
    return process.returncode, line, out


def test_a_sweep_interrupted_once_its_repositories_are_listed_starts_none_and_writes_its_reports(
        org: Org, tmp_path) -> None:
    """SIGTERM to the whole group (as timeout(1) sends it) once the repositories are listed, before the
    sweep starts the first: it starts none, and says how many it did not reach."""
    reports, log, state = tmp_path / "reports", tmp_path / "stderr", tmp_path / "state.jsonl"
    listed = Held(tmp_path / "held", "listed")
    code, said, out = signalled_while_held(org, listed, log, signal.SIGTERM, "--repo-include",
                                           "^acme/svc-(api|docs|jobs|web)$", "--state", str(state),
                                           "--report", str(reports))
    assert code == 130
    assert log.read_text() == f"4 repositories to sweep, 59 left out\n{said}\nrehome: interrupted\n"
    assert said == ("SIGTERM: starting no other repository; none is running: the sweep writes its summary and "
                    "reports, which say it was interrupted")
    assert [r.path for r in org.github.requests] == [f"/orgs/{ORG}"] + [f"/orgs/{ORG}/repos"] * 3  # no repository's
    assert not state.exists()
    report = {"version": 1, "mode": "sweep", "destination": org.destination, "interrupted": True, "not_reached": 4,
              "totals": {"repositories": 0, "done": 0, "partial": 0, "nothing-to-do": 0, "declined": 0, "scanned": 0,
                         "failed": 0, "third_party": 0, "internal": 0, "unresolved": 0, "images": 0},
              "repositories": [], "images": []}
    assert json.loads((reports / "report.json").read_text()) == report
    assert {k: v for k, v in json.loads(out).items() if k != "left_out"} == report
    assert "not reached, and not in this report: 4 repositories." in (reports / "report.md").read_text()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_a_signal_as_the_process_exits_after_the_summary_changes_nothing(org: Org, tmp_path, how: str) -> None:
    """The signal reaches the process after its summary and last line, at the last of its exit, where
    Python has given up its own handlers: it ends as it would have (exit 0, as the reports call for),
    not by the signal (exit 143 or 130)."""
    reports, log = tmp_path / "reports", tmp_path / "stderr"
    exiting = Held(tmp_path / "held", "exiting")
    code, _, out = signalled_while_held(org, exiting, log, getattr(signal, how), "--repo-include",
                                        "^acme/svc-web$", "--dry-run", "--report", str(reports), said=False)
    assert code == 0, log.read_text()
    assert log.read_text() == (f"1 repository to sweep, 62 left out\nacme/svc-web: cloning "
                               f"file://{org.remotes['acme/svc-web']} (branch main)\n[1/1] acme/svc-web: done\n")
    report = json.loads((reports / "report.json").read_text())
    assert (report["interrupted"], [r["status"] for r in report["repositories"]]) == (False, ["done"])
    assert {k: v for k, v in json.loads(out).items() if k != "left_out"} == report


def test_rate_limiter_waits_only_when_the_reserve_is_reached() -> None:
    now = [1000.0]
    slept: list[float] = []
    limiter = RateLimiter(reserve=2, clock=lambda: now[0], sleep=slept.append)
    limiter.before()  # nothing known yet
    limiter.observe(4, 1060)
    limiter.before()  # 4 left: go (3 now counted)
    limiter.before()  # 3 left: go
    limiter.before()  # 2 left: wait for the reset, plus a second
    assert slept == [61.0]
    limiter.observe(-1, None)  # an answer without the headers changes nothing
    limiter.before()
    assert slept == [61.0]


def _private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_a_github_app_sweeps_with_installation_tokens_refreshed_before_expiry(org: Org, capsys, tmp_path) -> None:
    org.github.installations[ORG] = 7
    key = tmp_path / "app.pem"
    key.write_text(_private_key())
    # Three repositories in three worker processes: one installation token for the whole sweep.
    code, result, err = run_cli(capsys, "sweep", "--org", ORG, "--to", org.destination, "--github-url",
                                org.github.base_url, "--app-id", "42", "--app-key-file", str(key),
                                "--repo-include", "^acme/svc-(api|jobs|web)$", "--jobs", "3", "--format", "json")
    assert code == 0, err
    assert [(r["repo"], r["status"]) for r in json.loads(result)["repositories"]] == [
        ("acme/svc-api", "done"), ("acme/svc-jobs", "done"), ("acme/svc-web", "done")]
    app_calls = [r for r in org.github.requests if r.path.startswith(("/app/", f"/orgs/{ORG}/installation"))]
    assert [(r.method, r.path) for r in app_calls] == [("GET", f"/orgs/{ORG}/installation"),
                                                      ("POST", "/app/installations/7/access_tokens")]
    assert all(r.authorization.startswith("Bearer ey") for r in app_calls)  # the App's JWT
    later = [r for r in org.github.requests if r not in app_calls]
    assert later and all(r.authorization == "token ghs_installation1" for r in later)
    assert {name: len(org.pulls(name)) for name in ("acme/svc-api", "acme/svc-jobs", "acme/svc-web")} == {
        "acme/svc-api": 1, "acme/svc-jobs": 1, "acme/svc-web": 1}
    assert "ghs_installation1" not in err

    # An installation token is replaced before it expires, not after.
    clock = [datetime.datetime.now(datetime.timezone.utc)]
    tokens = access.TokenSource(app=access.AppCredentials("42", Secret(key.read_text())), org=ORG,
                                base_url=org.github.base_url, now=lambda: clock[0])
    first = tokens.current()
    assert tokens.current() == first
    clock[0] += datetime.timedelta(minutes=51)  # 9 minutes left of the hour: a new token
    assert tokens.current().reveal() != first.reveal()
    assert "ghs_" not in repr(tokens)


def test_report_status_says_which_pull_requests_are_open_merged_or_closed(org: Org, capsys, tmp_path) -> None:
    state = tmp_path / "state.jsonl"
    code, _, err = sweep(capsys, org, "--repo-include", "^acme/svc-(web|api|jobs|docs)$", "--state", str(state))
    assert code == 0, err
    org.pulls("acme/svc-api")[0].update(state="closed", merged=True)
    org.pulls("acme/svc-jobs")[0].update(state="closed")
    before = len(org.github.requests)
    code, out, err = run_cli(capsys, "report", "status", "--state", str(state), "--github-url", org.github.base_url,
                             "--token-env", TOKEN_ENV, "--format", "json")
    assert code == 0, err
    origin = org.github.origin
    finished = {line["repo"]: line["finished_at"] for line in state_lines(state)}

    def pull_request(name: str, state: str) -> dict:
        return {"repo": f"acme/{name}", "pr_url": f"{origin}/acme/{name}/pull/1", "state": state, "error": None,
                "latest_run": {"status": "done", "finished_at": finished[f"acme/{name}"], "error": None}}

    assert json.loads(out) == {
        "version": 1, "totals": {"open": 1, "merged": 1, "closed": 1, "unknown": 0, "without_pull_request": 1,
                                 "latest_run_failed": 0},
        "pull_requests": [pull_request("svc-api", "merged"), pull_request("svc-jobs", "closed"),
                          pull_request("svc-web", "open")]}
    # One API call per pull request.
    assert [(r.method, r.path) for r in org.github.requests[before:]] == [
        ("GET", f"/repos/acme/{name}/pulls/1") for name in ("svc-api", "svc-jobs", "svc-web")]
    assert len(state_lines(state)) == 4


def test_an_answer_nested_too_deep_fails_only_its_repository_or_pull_request(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    server = GitHubServer()
    try:
        server.add_repo("acme/shop", "file:///nowhere.git")
        deep, unreadable = f'{{"full_name": {DEEP_JSON}}}'.encode(), f"the answer is not JSON ({NESTED_TOO_DEEP})"
        server.faults.append(("GET", r"^/repos/acme/shop$", 200, {}, deep))
        github = access.client(access.TokenSource(), server.base_url)
        assert list(access.named_repositories(github, ["acme/shop"], RateLimiter())) == [
            Unreadable("acme/shop", f"GitHub: read repository acme/shop: {unreadable}")]
        pr_url = f"{server.origin}/acme/shop/pull/1"
        state = tmp_path / "state.jsonl"
        state.write_text(json.dumps({"repo": "acme/shop", "status": "done", "pr_url": pr_url, "head": "h",
                                     "error": None, "finished_at": "2026-11-26T10:00:00Z"}) + "\n")
        server.faults.append(("GET", r"^/repos/acme/shop/pulls/1$", 200, {}, deep))
        code, out, err = run_cli(capsys, "report", "status", "--state", str(state), "--github-url", server.base_url,
                                 "--token-env", TOKEN_ENV, "--format", "json")
    finally:
        server.stop()
    assert (code, json.loads(out)["pull_requests"], err) == (1, [
        {"repo": "acme/shop", "pr_url": pr_url, "state": "unknown", "error": f"GitHub: read {pr_url}: {unreadable}",
         "latest_run": {"status": "done", "finished_at": "2026-11-26T10:00:00Z", "error": None}}], "")
