"""`bigquery://PROJECT.DATASET`: the guide's query over the log sink's `events_*` tables.

Runs through google-cloud-bigquery (the optional extra `rehome-bot[gcp]`) with Application Default
Credentials; REHOME_BIGQUERY_ENDPOINT points it at another API endpoint. The window is a query
parameter, so only the days in it are read (`_TABLE_SUFFIX`) and counted; rows come back per image and
day, so there are no 6-hour peaks from this source.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from bot.errors import UsageError
from bot.pulls.model import Window
from bot.pulls.source import Entry, Malformed, SourceError
from bot.pulls.times import from_datetime, to_datetime

SCHEME = "bigquery://"
SCOPES = ("https://www.googleapis.com/auth/bigquery",)
ENDPOINT_ENV = "REHOME_BIGQUERY_ENDPOINT"
# The client retries an unreachable BigQuery for 10 minutes (40 with job retries), silently. rehome
# starts no request after RETRY_SECONDS, and a request gives up after REQUEST_SECONDS without a
# connection or an answer: an unreachable BigQuery fails within RETRY_SECONDS + REQUEST_SECONDS. No job
# retries: they would start the request retries over, each time with RETRY_SECONDS of their own. A
# query that takes longer still runs: BigQuery answers each request within REQUEST_SECONDS, and the
# client asks again while the query runs.
RETRY_SECONDS = 20.0
REQUEST_SECONDS = 30.0
# A project ID: 6 to 30 lowercase letters, digits and hyphens, starting with a letter and not ending
# with a hyphen; older projects may be domain-scoped (`example.com:project`).
PROJECT_ID_RE = re.compile(r"(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
PROJECT_ID_RULE = "6 to 30 lowercase letters, digits and hyphens, starting with a letter; for example acme-prod"
DATASET_ID_RE = re.compile(r"[A-Za-z0-9_]+")

QUERY = """\
SELECT
  TIMESTAMP_TRUNC(timestamp, DAY) AS day,
  REGEXP_EXTRACT(jsonPayload.message, r'"(.*?)"') AS imageName,
  COUNT(*) AS numberOfPulls
FROM `{project}.{dataset}.events_*`
WHERE jsonPayload.reason = 'Pulling'
  AND _TABLE_SUFFIX BETWEEN FORMAT_TIMESTAMP('%Y%m%d', @since) AND FORMAT_TIMESTAMP('%Y%m%d', @until)
  AND timestamp BETWEEN @since AND @until
GROUP BY day, imageName
ORDER BY day, imageName
"""


class BadLocation(UsageError):
    """A project ID or PROJECT.DATASET that is not one: said of the text as given, for the caller to
    name where it was given."""


def is_bigquery(source: str) -> bool:
    return source.startswith(SCHEME)


def check_project(project: str, where: str) -> str:
    if PROJECT_ID_RE.fullmatch(project) is None:
        raise BadLocation(f"{where}: not a project ID ({PROJECT_ID_RULE})")
    return project


def split_dataset(text: str, where: str, expected: str) -> tuple[str, str]:
    """PROJECT.DATASET as (project, dataset); a usage error naming `where` says what is wrong with it."""
    project, dot, dataset = text.rpartition(".")  # a domain-scoped project has dots, a dataset none
    if not dot or not project or DATASET_ID_RE.fullmatch(dataset) is None:
        raise BadLocation(f"{where}: expected {expected}")
    return check_project(project, f"{where}: project {project!r}"), dataset


def parse_location(source: str) -> tuple[str, str]:
    return split_dataset(source[len(SCHEME):], source,
                         "bigquery://PROJECT.DATASET (for example bigquery://acme-prod.pull_logs)")


def _bigquery() -> Any:
    try:
        from google.cloud import bigquery
    except ImportError:
        raise SourceError(
            "reading bigquery:// needs google-cloud-bigquery", hint="pip install 'rehome-bot[gcp]'"
        ) from None
    return bigquery


def make_client(project: str) -> Any:
    bigquery = _bigquery()
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(scopes=SCOPES)
    except DefaultCredentialsError as exc:
        raise SourceError(
            f"no Google Cloud credentials for BigQuery: {exc}", hint="gcloud auth application-default login"
        ) from None
    endpoint = os.environ.get(ENDPOINT_ENV)
    options = {"api_endpoint": endpoint} if endpoint else None
    return bigquery.Client(project=project, credentials=credentials, client_options=options)


def query_entries(client: Any, project: str, dataset: str, window: Window) -> Iterator[Entry | Malformed]:
    """One entry per (day, image) row; a row whose message names no image is malformed (its row number)."""
    bigquery = _bigquery()
    from google.api_core.exceptions import GoogleAPIError, RetryError
    from google.auth.exceptions import GoogleAuthError
    from google.cloud.bigquery.retry import DEFAULT_RETRY
    from requests.exceptions import RequestException

    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("since", "TIMESTAMP", to_datetime(window.since)),
        bigquery.ScalarQueryParameter("until", "TIMESTAMP", to_datetime(window.until)),
    ])
    where = f"bigquery://{project}.{dataset}"
    try:
        rows = list(client.query_and_wait(
            QUERY.format(project=project, dataset=dataset), job_config=config, api_timeout=REQUEST_SECONDS,
            retry=DEFAULT_RETRY.with_timeout(RETRY_SECONDS), job_retry=None,
        ))
    except RetryError as exc:
        raise SourceError(f"{where}: BigQuery did not answer within {RETRY_SECONDS:g}s of retries: {exc.cause}",
                          hint=f"check the network, or {ENDPOINT_ENV} if it is set") from None
    except GoogleAPIError as exc:
        raise SourceError(f"{where}: the query failed: {exc}") from None
    except (GoogleAuthError, RequestException) as exc:
        raise SourceError(f"{where}: cannot reach BigQuery: {exc}") from None
    for number, row in enumerate(rows, 1):
        if not row["imageName"] or row["day"] is None:
            yield Malformed(number)
        else:
            yield Entry(from_datetime(row["day"]), row["imageName"], int(row["numberOfPulls"]), position=number)
