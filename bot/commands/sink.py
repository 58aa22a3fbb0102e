"""`rehome sink --projects P1 P2 … --dataset PROJECT.DATASET`: create the guide's log sink of image
pulls in each project (a no-op where it exists with that filter), or `--print` the gcloud commands."""
from __future__ import annotations

import argparse
from typing import Any

from bot.output import print_json
from bot.pulls.sink import GRANT_ROLE, SINK_NAME, Dataset, LoggingApi, SinkResult, check_project, create_commands
from bot.pulls.sink import ensure_sink, gcloud_commands, logging_client

HELP = "create the log sink of image pulls into BigQuery in each project (for `rehome pulls bigquery://…`)"
CONFIG_HELP = None  # reads no rehome.yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--projects", nargs="+", required=True, metavar="PROJECT",
                        help="projects whose clusters' pulls to collect")
    parser.add_argument("--dataset", required=True, metavar="PROJECT.DATASET", help="the BigQuery dataset to fill")
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="print the equivalent gcloud commands instead of calling the API")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    projects = [check_project(project) for project in args.projects]
    dataset = Dataset.parse(args.dataset)
    if args.print_only:
        _print_commands(projects, dataset, args)
        return 0
    with logging_client() as client:
        api = LoggingApi(client)
        results = [ensure_sink(api, project, dataset) for project in projects]
    if args.format == "json":
        print_json({**_json_head(dataset, args), "sinks": [r.to_json() for r in results]})
    else:
        for result in results:
            print(_describe(result, dataset))
    return 1 if any(r.status in ("conflict", "failed") for r in results) else 0


def _json_head(dataset: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    return {"version": 1, "sink": SINK_NAME, "destination": dataset.destination,
            "grant": {"role": GRANT_ROLE, "dataset": args.dataset}}


def _print_commands(projects: list[str], dataset: Dataset, args: argparse.Namespace) -> None:
    """`--print`: the gcloud commands, or in JSON the create commands and the grant's (for each writer identity)."""
    if args.format == "json":
        print_json({**_json_head(dataset, args), "commands": create_commands(projects, dataset),
                    "grant_command": dataset.grant_command("WRITER_IDENTITY")})
    else:
        print("\n".join(gcloud_commands(projects, dataset)))


def _describe(result: SinkResult, dataset: Dataset) -> str:
    if result.status in ("conflict", "failed"):
        return f"{result.project}: {result.status}: {result.message}"
    said = (f"created sink {SINK_NAME} → {dataset.destination}" if result.status == "created"
            else f"sink {SINK_NAME} already exists with this filter; nothing to change")
    lines = [f"{result.project}: {said}"]
    if result.writer_identity:
        lines.append(f"  writer identity: {result.writer_identity}")
        lines.append(f"  it needs roles/bigquery.dataEditor on {dataset.project}.{dataset.name}:")
        lines.append(f"    {dataset.grant_command(result.writer_identity)}")
    return "\n".join(lines)
