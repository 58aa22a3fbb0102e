from __future__ import annotations

import random
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core.retry import retry_base, retry_unary
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery as bq

from bot.errors import UsageError
from bot.pulls import bigquery, count, load_counts
from bot.pulls.bigquery import parse_location, query_entries
from bot.pulls.model import Window
from bot.pulls.source import Entry, Malformed, SourceError
from bot.pulls.times import DAY, parse_time
from tests.pulls.standin import Request, serve, token_answer, write_adc

SCHEMA = {"fields": [
    {"name": "day", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "imageName", "type": "STRING", "mode": "NULLABLE"},
    {"name": "numberOfPulls", "type": "INTEGER", "mode": "NULLABLE"},
]}
DAY1, DAY2 = parse_time("2024-05-01T00:00:00Z"), parse_time("2024-05-02T00:00:00Z")
ROWS = [(DAY1, "nginx:1.14.2", 40), (DAY1, "docker.io/library/nginx:1.14.2", 2), (DAY1, None, 5),
        (DAY2, "us-docker.pkg.dev/acme/mirror/docker.io/library/nginx:1.14.2", 30)]


def answer_query(request: Request) -> tuple[int, Any]:
    token = token_answer(request)
    if token:
        return token
    if request.method != "POST" or not request.path.endswith("/queries"):
        return 404, {"error": {"code": 404, "message": f"no {request.path}"}}
    return 200, {
        "kind": "bigquery#queryResponse", "jobComplete": True, "totalRows": str(len(ROWS)), "schema": SCHEMA,
        "jobReference": {"projectId": "acme-logs", "jobId": "job-1", "location": "US"},
        "rows": [{"f": [{"v": str(day)}, {"v": name}, {"v": str(n)}]} for day, name, n in ROWS],
    }


def parameters(request: Request) -> dict[str, str]:
    return {p["name"]: p["parameterValue"]["value"] for p in request.body["queryParameters"]}


def test_the_guides_query_with_the_window_as_parameters() -> None:
    window = Window(parse_time("2024-04-25T12:00:00Z"), parse_time("2024-05-02T12:00:00Z"))
    with serve(answer_query) as api:
        client = bq.Client(project="acme-logs", credentials=AnonymousCredentials(),
                           client_options={"api_endpoint": api.url})
        entries = list(query_entries(client, "acme-logs", "pull_logs", window))
    assert entries == [Entry(DAY1, "nginx:1.14.2", 40, position=1),
                       Entry(DAY1, "docker.io/library/nginx:1.14.2", 2, position=2), Malformed(3),
                       Entry(DAY2, "us-docker.pkg.dev/acme/mirror/docker.io/library/nginx:1.14.2", 30, position=4)]
    [request] = api.requests
    assert request.path == "/bigquery/v2/projects/acme-logs/queries"
    assert request.body["formatOptions"] == {"useInt64Timestamp": True}
    query = request.body["query"]
    assert "REGEXP_EXTRACT(jsonPayload.message, r'\"(.*?)\"') AS imageName" in query
    assert "FROM `acme-logs.pull_logs.events_*`" in query
    assert "jsonPayload.reason = 'Pulling'" in query
    assert "timestamp BETWEEN @since AND @until" in query
    assert request.body["parameterMode"] == "NAMED"
    assert parameters(request) == {"since": "2024-04-25 12:00:00+00:00", "until": "2024-05-02 12:00:00+00:00"}
    assert [p["parameterType"] for p in request.body["queryParameters"]] == [{"type": "TIMESTAMP"}] * 2


def test_load_counts_through_application_default_credentials(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(answer_query) as api:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write_adc(tmp_path / "adc.json", api.url + "/token")))
        monkeypatch.setenv("REHOME_BIGQUERY_ENDPOINT", api.url)
        counts = load_counts("bigquery://acme-logs.pull_logs", since="2024-04-20", until="2024-05-03T00:00:00Z")
    token, query = api.requests
    assert token.path == "/token"
    assert query.headers["authorization"] == "Bearer test-token"
    assert parameters(query) == {"since": "2024-04-20 00:00:00+00:00", "until": "2024-05-03 00:00:00+00:00"}
    assert counts.to_json() == {
        "version": 1, "source": "bigquery://acme-logs.pull_logs",
        "window": {"since": "2024-04-20T00:00:00Z", "until": "2024-05-03T00:00:00Z"},
        "limit": {"pulls": 100, "per": "6h"}, "malformed": 1, "malformed_lines": [3],
        "images": [
            {"image": "docker.io/library/nginx:1.14.2", "repository": "docker.io/library/nginx", "pulls": 42,
             "repository_pulls": 42, "peak_6h": None, "at_risk": None, "clusters": []},
            {"image": "us-docker.pkg.dev/acme/mirror/docker.io/library/nginx:1.14.2",
             "repository": "us-docker.pkg.dev/acme/mirror/docker.io/library/nginx", "pulls": 30,
             "repository_pulls": 30, "peak_6h": None, "at_risk": None, "clusters": []},
        ],
    }
    assert [(d.day, d.pulls) for d in counts.days] == [("2024-05-01", 42), ("2024-05-02", 30)]


def test_the_window_flags_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[tuple[str, str]] = []

    def reading(name: str, parse: Callable[[str], int]) -> Callable[[str], int]:
        def parse_and_note(text: str) -> int:
            read.append((name, text))
            return parse(text)
        return parse_and_note

    monkeypatch.setattr(count, "parse_time", reading("time", count.parse_time))
    monkeypatch.setattr(count, "parse_duration", reading("duration", count.parse_duration))
    with serve(answer_query) as api:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write_adc(tmp_path / "adc.json", api.url + "/token")))
        monkeypatch.setenv("REHOME_BIGQUERY_ENDPOINT", api.url)
        counts = load_counts("bigquery://acme-logs.pull_logs", since="2024-04-20", until="2024-05-03T00:00:00Z")
    assert counts.window == Window(parse_time("2024-04-20T00:00:00Z"), parse_time("2024-05-03T00:00:00Z"))
    assert read == [("time", "2024-05-03T00:00:00Z"), ("duration", "2024-04-20"), ("time", "2024-04-20")]


def test_until_defaults_to_now_for_bigquery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(answer_query) as api:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write_adc(tmp_path / "adc.json", api.url + "/token")))
        monkeypatch.setenv("REHOME_BIGQUERY_ENDPOINT", api.url)
        monkeypatch.setattr("time.time", lambda: parse_time("2024-05-03T08:30:00Z") / 1e6)
        counts = load_counts("bigquery://acme-logs.pull_logs")
    assert counts.window == Window(parse_time("2024-05-03T08:30:00Z") - 7 * DAY, parse_time("2024-05-03T08:30:00Z"))


def test_query_errors_and_bad_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: Request) -> tuple[int, Any]:
        return token_answer(request) or (403, {"error": {"code": 403, "message": "Access Denied: acme-logs"}})

    with serve(refuse) as api:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write_adc(tmp_path / "adc.json", api.url + "/token")))
        monkeypatch.setenv("REHOME_BIGQUERY_ENDPOINT", api.url)
        with pytest.raises(SourceError, match=r"^bigquery://acme-logs\.pull_logs: the query failed: 403 .*Access Denied"):
            load_counts("bigquery://acme-logs.pull_logs", until="2024-05-03")


NOT_A_PROJECT = "not a project ID (6 to 30 lowercase letters, digits and hyphens, starting with a letter; for example acme-prod)"


@pytest.mark.parametrize(("location", "message"), [
    ("just-a-project", "expected bigquery://PROJECT.DATASET (for example bigquery://acme-prod.pull_logs)"),
    ("acme-logs.`x`", "expected bigquery://PROJECT.DATASET (for example bigquery://acme-prod.pull_logs)"),
    (".logs", "expected bigquery://PROJECT.DATASET (for example bigquery://acme-prod.pull_logs)"),
    ("acme.logs", f"project 'acme': {NOT_A_PROJECT}"),
    ("acme-logs-.logs", f"project 'acme-logs-': {NOT_A_PROJECT}"),
    ("Acme-logs.logs", f"project 'Acme-logs': {NOT_A_PROJECT}"),
])
def test_a_bad_location_is_a_usage_error_saying_what_is_wrong(location: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_counts(f"bigquery://{location}")
    assert str(caught.value) == f"bigquery://{location}: {message}"


def test_a_domain_scoped_project() -> None:
    assert parse_location("bigquery://example.com:acme-logs.logs_1") == ("example.com:acme-logs", "logs_1")


@pytest.fixture()
def short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bigquery, "RETRY_SECONDS", 1.0)
    monkeypatch.setattr(bigquery, "REQUEST_SECONDS", 1.0)


def unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str) -> SourceError:
    with serve(token_answer) as tokens:
        adc = write_adc(tmp_path / "adc.json", tokens.url + "/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
        monkeypatch.setenv("REHOME_BIGQUERY_ENDPOINT", endpoint)
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            load_counts("bigquery://acme-logs.pull_logs", until="2024-05-03")
    assert time.monotonic() - started < 10
    assert caught.value.hint == "check the network, or REHOME_BIGQUERY_ENDPOINT if it is set"
    return caught.value


def test_bigquery_refusing_connections_fails_after_a_bounded_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   short_retries: None) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    error = unreachable(tmp_path, monkeypatch, endpoint)
    assert re.fullmatch(r"bigquery://acme-logs\.pull_logs: BigQuery did not answer within 1s of retries: "
                        r".*Connection refused.*", error.message), error.message


def test_bigquery_that_never_answers_fails_after_a_bounded_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 short_retries: None) -> None:
    with socket.socket() as silent:  # takes connections (the kernel does), never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        error = unreachable(tmp_path, monkeypatch, f"http://127.0.0.1:{silent.getsockname()[1]}")
    assert re.fullmatch(r"bigquery://acme-logs\.pull_logs: BigQuery did not answer within 1s of retries: "
                        r".*[Rr]ead timed out.*", error.message), error.message


class Clock:
    """The retries' clock, with sleeps that take no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_no_request_starts_after_the_retry_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    for module in (retry_base, retry_unary):
        monkeypatch.setattr(module, "time", clock)
    random.seed(7)  # the retries' jitter
    started: list[float] = []

    def refuse(adapter: object, request: object, **kwargs: object) -> None:
        started.append(clock.now)
        raise requests.ConnectionError("connection refused")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)
    client = bq.Client(project="acme-logs", credentials=AnonymousCredentials(),
                       client_options={"api_endpoint": "http://bigquery.invalid"})
    with pytest.raises(SourceError) as caught:
        list(query_entries(client, "acme-logs", "pull_logs", Window(0, DAY)))
    assert caught.value.message == ("bigquery://acme-logs.pull_logs: BigQuery did not answer within 20s of retries: "
                                    "connection refused")
    assert len(started) > 3
    assert max(started) <= bigquery.RETRY_SECONDS
    assert clock.now <= bigquery.RETRY_SECONDS


def test_the_default_retries_give_up_well_within_a_minute() -> None:
    assert bigquery.RETRY_SECONDS + bigquery.REQUEST_SECONDS <= 50
