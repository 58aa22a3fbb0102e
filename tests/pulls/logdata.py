"""Builders for the pull-count fixtures the tests write."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

MESSAGES = {
    "Pulling": 'Pulling image "{}"',
    "Pulled": 'Successfully pulled image "{}" in 1.2s (1.2s including waiting)',
    "Failed": 'Failed to pull image "{}": rpc error: code = NotFound',
    "BackOff": 'Back-off pulling image "{}"',
}


def log_entry(timestamp: str, image: str, reason: str = "Pulling", cluster: str | None = "prod") -> dict[str, Any]:
    labels = {"project_id": "acme", "location": "us-central1", "namespace_name": "web", "pod_name": "web-1"}
    if cluster is not None:
        labels["cluster_name"] = cluster
    return {
        "insertId": "x1",
        "jsonPayload": {"kind": "Event", "reason": reason, "message": MESSAGES[reason].format(image),
                        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "web"}},
        "logName": "projects/acme/logs/events",
        "resource": {"type": "k8s_pod", "labels": labels},
        "severity": "INFO",
        "timestamp": timestamp,
    }


def kube_event(time: str, image: str, reason: str = "Pulling", count: int | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Event", "reason": reason, "message": MESSAGES[reason].format(image),
        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "web"},
        "metadata": {"name": "web-1.17", "namespace": "web", "creationTimestamp": time},
        "firstTimestamp": time, "lastTimestamp": time, "type": "Normal",
    }
    if count is not None:
        event["count"] = count
    return event


def write_ndjson(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text)
    return path


def write_gzip(path: Path, text: str) -> Path:
    with gzip.open(path, "wt") as out:
        out.write(text)
    return path
