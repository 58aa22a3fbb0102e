from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli import main
from tests.helpers import DEEP_JSON
from tests.pulls.standin import Request, serve, token_answer, write_adc

DESTINATION = "bigquery.googleapis.com/projects/acme-logs/datasets/pull_logs"
FILTER = 'resource.type="k8s_pod" jsonPayload.reason="Pulling"'


class LoggingStandIn:
    """Sinks per project, as the Logging API keeps them."""

    def __init__(self) -> None:
        self.sinks: dict[str, dict[str, Any]] = {
            # the same filter, spaced differently: still the guide's sink
            "acme-dev": {"name": "image_pull_logs", "destination": DESTINATION,
                         "filter": 'resource.type="k8s_pod"\n  jsonPayload.reason="Pulling"',
                         "writerIdentity": "serviceAccount:service-2@gcp-sa-logging.iam.gserviceaccount.com"},
            "acme-old": {"name": "image_pull_logs", "destination": DESTINATION, "filter": 'resource.type="k8s_pod"',
                         "writerIdentity": "serviceAccount:service-3@gcp-sa-logging.iam.gserviceaccount.com"},
        }

    def __call__(self, request: Request) -> tuple[int, Any]:
        token = token_answer(request)
        if token:
            return token
        if request.headers.get("authorization") != "Bearer test-token":
            return 401, {"error": {"code": 401, "message": "no token"}}
        parts = request.path.split("/")  # /v2/projects/P/sinks[/NAME]
        project = parts[3]
        if project == "acme-locked":
            return 403, {"error": {"code": 403, "message": "Permission 'logging.sinks.get' denied", "status": "PERMISSION_DENIED"}}
        if request.method == "GET":
            sink = self.sinks.get(project)
            return (200, sink) if sink else (404, {"error": {"code": 404, "message": "not found"}})
        sink = {**request.body, "writerIdentity": "serviceAccount:service-1@gcp-sa-logging.iam.gserviceaccount.com"}
        self.sinks[project] = sink
        return 200, sink


@pytest.fixture()
def logging_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    stand_in = LoggingStandIn()
    with serve(stand_in) as api:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write_adc(tmp_path / "adc.json", api.url + "/token")))
        monkeypatch.setenv("REHOME_LOGGING_ENDPOINT", api.url)
        yield api


def calls(api: Any) -> list[tuple[str, str, object]]:
    return [(r.method, r.path, r.body or r.query) for r in api.requests if r.path != "/token"]


def test_creates_where_missing_and_leaves_the_same_sink_alone(logging_api: Any,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sink", "--projects", "acme-prod", "acme-dev", "--dataset", "acme-logs.pull_logs"]) == 0
    assert capsys.readouterr() == (f"""\
acme-prod: created sink image_pull_logs → {DESTINATION}
  writer identity: serviceAccount:service-1@gcp-sa-logging.iam.gserviceaccount.com
  it needs roles/bigquery.dataEditor on acme-logs.pull_logs:
    bq add-iam-policy-binding --member=serviceAccount:service-1@gcp-sa-logging.iam.gserviceaccount.com --role=roles/bigquery.dataEditor acme-logs:pull_logs
acme-dev: sink image_pull_logs already exists with this filter; nothing to change
  writer identity: serviceAccount:service-2@gcp-sa-logging.iam.gserviceaccount.com
  it needs roles/bigquery.dataEditor on acme-logs.pull_logs:
    bq add-iam-policy-binding --member=serviceAccount:service-2@gcp-sa-logging.iam.gserviceaccount.com --role=roles/bigquery.dataEditor acme-logs:pull_logs
""", "")
    assert calls(logging_api) == [
        ("GET", "/v2/projects/acme-prod/sinks/image_pull_logs", {}),
        ("POST", "/v2/projects/acme-prod/sinks", {"name": "image_pull_logs", "destination": DESTINATION, "filter": FILTER}),
        ("GET", "/v2/projects/acme-dev/sinks/image_pull_logs", {}),
    ]
    assert logging_api.requests[2].query == {"uniqueWriterIdentity": ["true"]}
    # A second run changes nothing.
    assert main(["sink", "--projects", "acme-prod", "--dataset", "acme-logs.pull_logs", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["sinks"] == [{
        "project": "acme-prod", "status": "exists",
        "writer_identity": "serviceAccount:service-1@gcp-sa-logging.iam.gserviceaccount.com", "message": None,
    }]
    assert [c[0] for c in calls(logging_api)] == ["GET", "POST", "GET", "GET"]


def test_another_filter_or_a_refusal_is_reported_and_the_rest_goes_on(logging_api: Any,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sink", "--projects", "acme-old", "acme-locked", "acme-new", "--dataset", "acme-logs.pull_logs",
                 "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "version": 1, "sink": "image_pull_logs", "destination": DESTINATION,
        "grant": {"role": "roles/bigquery.dataEditor", "dataset": "acme-logs.pull_logs"},
        "sinks": [
            {"project": "acme-old", "status": "conflict",
             "writer_identity": "serviceAccount:service-3@gcp-sa-logging.iam.gserviceaccount.com",
             "message": f"sink image_pull_logs exists with filter 'resource.type=\"k8s_pod\"' and destination "
                        f"'{DESTINATION}'; left unchanged"},
            {"project": "acme-locked", "status": "failed", "writer_identity": None,
             "message": "Cloud Logging API: reading the sink: 403 Permission 'logging.sinks.get' denied"},
            {"project": "acme-new", "status": "created",
             "writer_identity": "serviceAccount:service-1@gcp-sa-logging.iam.gserviceaccount.com", "message": None},
        ],
    }
    assert [c[:2] for c in calls(logging_api)] == [
        ("GET", "/v2/projects/acme-old/sinks/image_pull_logs"),
        ("GET", "/v2/projects/acme-locked/sinks/image_pull_logs"),
        ("GET", "/v2/projects/acme-new/sinks/image_pull_logs"),
        ("POST", "/v2/projects/acme-new/sinks"),
    ]


def test_print_shows_the_gcloud_commands_without_calling_anything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sink", "--projects", "acme-prod", "acme-dev", "--dataset", "acme-logs.pull_logs", "--print"]) == 0
    assert capsys.readouterr() == (f"""\
gcloud logging sinks create image_pull_logs {DESTINATION} --project=acme-prod '--log-filter={FILTER}'
gcloud logging sinks create image_pull_logs {DESTINATION} --project=acme-dev '--log-filter={FILTER}'
# then, for each writer identity those print (serviceAccount:…), grant it roles/bigquery.dataEditor:
# bq add-iam-policy-binding --member=WRITER_IDENTITY --role=roles/bigquery.dataEditor acme-logs:pull_logs
""", "")


def test_print_in_json_gives_the_commands_as_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sink", "--projects", "acme-prod", "acme-dev", "--dataset", "acme-logs.pull_logs", "--print",
                 "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert (json.loads(out), err) == ({
        "version": 1, "sink": "image_pull_logs", "destination": DESTINATION,
        "grant": {"role": "roles/bigquery.dataEditor", "dataset": "acme-logs.pull_logs"},
        "commands": [f"gcloud logging sinks create image_pull_logs {DESTINATION} --project={project} "
                     f"'--log-filter={FILTER}'" for project in ("acme-prod", "acme-dev")],
        "grant_command": "bq add-iam-policy-binding --member=WRITER_IDENTITY --role=roles/bigquery.dataEditor "
                         "acme-logs:pull_logs"}, "")


@pytest.mark.parametrize(("dataset", "message"), [
    ("just_a_dataset", "expected PROJECT.DATASET (for example acme-logs.pull_logs)"),
    ("acme-logs.pull-logs", "expected PROJECT.DATASET (for example acme-logs.pull_logs)"),
    ("logs.pull_logs", "project 'logs': not a project ID (6 to 30 lowercase letters, digits and hyphens, "
                       "starting with a letter; for example acme-prod)"),
    ("acme-logs/x.pull_logs", "project 'acme-logs/x': not a project ID (6 to 30 lowercase letters, digits and "
                              "hyphens, starting with a letter; for example acme-prod)"),
])
def test_a_bad_dataset_is_a_usage_error(capsys: pytest.CaptureFixture[str], dataset: str, message: str) -> None:
    assert main(["sink", "--projects", "acme-prod", "--dataset", dataset, "--print"]) == 2
    assert capsys.readouterr().err == f"rehome: error: --dataset {dataset!r}: {message}\n"


BAD_PROJECTS = ["acme", "a" * 31, "Acme-prod", "1acme-prod", "acme-prod-", "acme_prod", "acme-prod/sinks/x",
                "../../v2/x", "acme-prod?x=1", "example.com:acme", ":acme-prod"]


def test_a_bad_project_id_is_a_usage_error_before_any_call(logging_api: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for project in BAD_PROJECTS:
        for extra in ([], ["--print"]):
            assert main(["sink", "--projects", "acme-prod", project, "--dataset", "acme-logs.pull_logs", *extra]) == 2
            assert capsys.readouterr() == ("", (
                f"rehome: error: --projects {project!r}: not a project ID (6 to 30 lowercase letters, digits and "
                "hyphens, starting with a letter; for example acme-prod)\n"))
    assert logging_api.requests == []


def test_a_domain_scoped_project_is_one_path_segment(logging_api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sink", "--projects", "example.com:acme-prod", "--dataset", "example.com:acme-logs.pull_logs",
                 "--format", "json"]) == 0
    destination = "bigquery.googleapis.com/projects/example.com:acme-logs/datasets/pull_logs"
    assert json.loads(capsys.readouterr().out)["destination"] == destination
    assert calls(logging_api) == [
        ("GET", "/v2/projects/example.com:acme-prod/sinks/image_pull_logs", {}),
        ("POST", "/v2/projects/example.com:acme-prod/sinks",
         {"name": "image_pull_logs", "destination": destination, "filter": FILTER}),
    ]


def test_an_unreachable_api_fails_each_project_by_name(logging_api: Any, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("REHOME_LOGGING_ENDPOINT", endpoint)
    assert main(["sink", "--projects", "acme-prod", "acme-dev", "--dataset", "acme-logs.pull_logs"]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    assert re.fullmatch(
        f"acme-prod: failed: Cloud Logging API: reading the sink: cannot reach {endpoint}: .*Connection refused.*\n"
        f"acme-dev: failed: Cloud Logging API: reading the sink: cannot reach {endpoint}: .*Connection refused.*\n",
        out), out


def test_a_network_error_midway_keeps_the_projects_done(logging_api: Any, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    def cut_off(request: httpx.Request) -> httpx.Response:
        if "/acme-gone/" in request.url.path:
            raise httpx.ConnectError("connection refused")
        if "/acme-cut/" in request.url.path and request.method == "POST":
            raise httpx.ReadError("connection reset by peer")
        if "/acme-slow/" in request.url.path:
            raise httpx.ReadTimeout("timed out")
        with httpx.Client(base_url=logging_api.url) as real:
            answer = real.request(request.method, request.url.path, params=request.url.params,
                                  headers=request.headers, content=request.content)
            return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    def client() -> httpx.Client:
        return httpx.Client(base_url="https://logging.example", transport=httpx.MockTransport(cut_off),
                            headers={"Authorization": "Bearer test-token"})

    monkeypatch.setattr("bot.commands.sink.logging_client", client)
    assert main(["sink", "--projects", "acme-prod", "acme-gone", "acme-cut", "acme-slow", "acme-next",
                 "--dataset", "acme-logs.pull_logs", "--format", "json"]) == 1
    writer = "serviceAccount:service-1@gcp-sa-logging.iam.gserviceaccount.com"
    assert json.loads(capsys.readouterr().out)["sinks"] == [
        {"project": "acme-prod", "status": "created", "writer_identity": writer, "message": None},
        {"project": "acme-gone", "status": "failed", "writer_identity": None,
         "message": "Cloud Logging API: reading the sink: cannot reach https://logging.example: connection refused"},
        {"project": "acme-cut", "status": "failed", "writer_identity": None,
         "message": "Cloud Logging API: creating the sink: cannot reach https://logging.example: "
                    "connection reset by peer"},
        {"project": "acme-slow", "status": "failed", "writer_identity": None,
         "message": "Cloud Logging API: reading the sink: https://logging.example did not answer within 30s"},
        {"project": "acme-next", "status": "created", "writer_identity": writer, "message": None},
    ]


def test_answers_that_are_not_a_sink_fail_that_project_by_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    odd_get = {
        "acme-list": (200, [1, 2]),
        "acme-nullsink": (200, None),  # not "no sink": nothing is created
        "acme-broken": (500, {"error": {"code": 500, "message": "backend error"}}),
        "acme-nofilter": (200, {"name": "image_pull_logs", "destination": DESTINATION, "filter": None}),
        "acme-deep": (200, DEEP_JSON.encode()),
        "acme-deep-error": (500, f'{{"error": {DEEP_JSON}}}'.encode()),
    }

    def answer(request: Request) -> tuple[int, Any]:
        project = request.path.split("/")[3] if request.path != "/token" else ""
        if request.method == "GET" and project in odd_get:
            return odd_get[project]
        if request.method == "POST" and project == "acme-created-list":
            return 200, ["x"]
        return token_answer(request) or (404, {"error": {"code": 404, "message": "not found"}})

    with serve(answer) as api:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write_adc(tmp_path / "adc.json", api.url + "/token")))
        monkeypatch.setenv("REHOME_LOGGING_ENDPOINT", api.url)
        assert main(["sink", "--projects", "acme-list", "acme-nullsink", "acme-broken", "acme-nofilter",
                     "acme-created-list", "acme-deep", "acme-deep-error", "--dataset", "acme-logs.pull_logs"]) == 1
    assert capsys.readouterr() == (f"""\
acme-list: failed: Cloud Logging API: reading the sink: the answer is not a JSON object: '[1, 2]'
acme-nullsink: failed: Cloud Logging API: reading the sink: the answer is not a JSON object: 'null'
acme-broken: failed: Cloud Logging API: reading the sink: 500 backend error
acme-nofilter: conflict: sink image_pull_logs exists with filter None and destination '{DESTINATION}'; left unchanged
acme-created-list: failed: Cloud Logging API: creating the sink: the answer is not a JSON object: '["x"]'
acme-deep: failed: Cloud Logging API: reading the sink: the answer is not a JSON object: '{"[" * 200}'
acme-deep-error: failed: Cloud Logging API: reading the sink: 500 {'{"error": ' + "[" * 190}
""", "")
    assert [(r.method, r.path) for r in api.requests if r.method == "POST" and r.path != "/token"] == [
        ("POST", "/v2/projects/acme-created-list/sinks")]
