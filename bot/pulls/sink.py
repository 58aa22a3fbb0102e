"""The guide's log sink: Kubernetes `Pulling` events of each project into one BigQuery dataset.

Talks to the Cloud Logging REST API (v2) on httpx with Application Default Credentials;
REHOME_LOGGING_ENDPOINT points it at another endpoint.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any
from urllib.parse import quote

import httpx

from bot import jsontext
from bot.errors import RehomeError, UsageError
from bot.pulls import bigquery

SINK_NAME = "image_pull_logs"
SINK_FILTER = 'resource.type="k8s_pod" jsonPayload.reason="Pulling"'
ENDPOINT = "https://logging.googleapis.com"
ENDPOINT_ENV = "REHOME_LOGGING_ENDPOINT"
SCOPES = ("https://www.googleapis.com/auth/logging.admin",)
GRANT_ROLE = "roles/bigquery.dataEditor"
TIMEOUT_SECONDS = 30.0


def check_project(project: str) -> str:
    return bigquery.check_project(project, f"--projects {project!r}")


@dataclasses.dataclass(frozen=True)
class Dataset:
    project: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Dataset:
        return cls(*bigquery.split_dataset(text, f"--dataset {text!r}",
                                           "PROJECT.DATASET (for example acme-logs.pull_logs)"))

    @property
    def destination(self) -> str:
        return f"bigquery.googleapis.com/projects/{self.project}/datasets/{self.name}"

    def grant_command(self, member: str) -> str:
        return shlex.join(["bq", "add-iam-policy-binding", f"--member={member}", f"--role={GRANT_ROLE}",
                           f"{self.project}:{self.name}"])


@dataclasses.dataclass(frozen=True)
class SinkResult:
    project: str
    status: str  # created | exists | conflict | failed
    writer_identity: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class LoggingApi:
    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def _call(self, step: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Refused, timed out, cut off: the next project may still work.
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.ReadTimeout:
            raise RehomeError(f"Cloud Logging API: {step}: {self._client.base_url} did not answer within "
                              f"{TIMEOUT_SECONDS:g}s") from None
        except httpx.TransportError as exc:
            raise RehomeError(f"Cloud Logging API: {step}: cannot reach {self._client.base_url}: "
                              f"{exc or type(exc).__name__}") from None

    def _check(self, step: str, response: httpx.Response) -> dict[str, Any]:
        if not response.is_success:
            try:
                detail = jsontext.loads(response.content)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                detail = response.text[:200]
            raise RehomeError(f"Cloud Logging API: {step}: {response.status_code} {detail}")
        try:
            answer = jsontext.loads(response.content)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise RehomeError(f"Cloud Logging API: {step}: the answer is not a JSON object: "
                              f"{response.text[:200]!r}")
        return answer

    def get_sink(self, project: str, name: str) -> dict[str, Any] | None:
        step = "reading the sink"
        response = self._call(step, "GET", f"/v2/projects/{_segment(project)}/sinks/{_segment(name)}")
        if response.status_code == 404:
            return None
        return self._check(step, response)

    def create_sink(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        # No retry: a create is not idempotent, and a second run finds the sink anyway.
        step = "creating the sink"
        response = self._call(step, "POST", f"/v2/projects/{_segment(project)}/sinks",
                              params={"uniqueWriterIdentity": "true"}, json=body)
        return self._check(step, response)


def _segment(text: str) -> str:
    """One segment of a request path (`:` of a domain-scoped project stays as it is)."""
    return quote(text, safe=":")


def _same_filter(a: object, b: str) -> bool:
    return isinstance(a, str) and " ".join(a.split()) == " ".join(b.split())


def ensure_sink(api: LoggingApi, project: str, dataset: Dataset) -> SinkResult:
    """Create the sink in `project` unless it is there already with the guide's filter and destination."""
    try:
        existing = api.get_sink(project, SINK_NAME)
        if existing is None:
            created = api.create_sink(project, {
                "name": SINK_NAME, "destination": dataset.destination, "filter": SINK_FILTER,
            })
            return SinkResult(project, "created", created.get("writerIdentity"))
    except RehomeError as exc:
        return SinkResult(project, "failed", message=exc.message)
    if _same_filter(existing.get("filter"), SINK_FILTER) and existing.get("destination") == dataset.destination:
        return SinkResult(project, "exists", existing.get("writerIdentity"))
    return SinkResult(project, "conflict", existing.get("writerIdentity"), message=(
        f"sink {SINK_NAME} exists with filter {existing.get('filter', '')!r} and destination "
        f"{existing.get('destination', '')!r}; left unchanged"
    ))


def logging_client() -> httpx.Client:
    """An httpx client for the Logging API with a bearer token from Application Default Credentials."""
    try:
        import google.auth
        import google.auth.transport.requests
        from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError
    except ImportError:
        raise UsageError("rehome sink needs google-auth", hint="pip install 'rehome-bot[gcp]'") from None
    try:
        credentials, _ = google.auth.default(scopes=SCOPES)
        credentials.refresh(google.auth.transport.requests.Request())
    except (DefaultCredentialsError, RefreshError) as exc:
        raise RehomeError(f"no usable Google Cloud credentials: {exc}",
                          hint="gcloud auth application-default login") from None
    except TransportError as exc:
        raise RehomeError(f"cannot get a Google Cloud access token, no project was changed: {exc}") from None
    return httpx.Client(
        base_url=os.environ.get(ENDPOINT_ENV, ENDPOINT), timeout=TIMEOUT_SECONDS,
        headers={"Authorization": f"Bearer {credentials.token}"},
    )


def create_commands(projects: list[str], dataset: Dataset) -> list[str]:
    """The `gcloud` command that creates the sink, for each project."""
    return [shlex.join(["gcloud", "logging", "sinks", "create", SINK_NAME, dataset.destination,
                        f"--project={project}", f"--log-filter={SINK_FILTER}"])
            for project in projects]


def gcloud_commands(projects: list[str], dataset: Dataset) -> list[str]:
    lines = create_commands(projects, dataset)
    lines.append(f"# then, for each writer identity those print (serviceAccount:…), grant it {GRANT_ROLE}:")
    lines.append("# " + dataset.grant_command("WRITER_IDENTITY"))
    return lines
