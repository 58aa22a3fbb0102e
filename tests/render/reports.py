"""Run reports the rendering tests share."""
from __future__ import annotations

from bot.plan import Occurrence
from bot.report import MovedImage, NotMoved, PullWindow, RunReport

DEST = "europe-west1-docker.pkg.dev/acme/mirror"
NGINX_DIGEST = "sha256:9a4f8b2c71d0e6f5a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0"
EXPORTER_DIGEST = "sha256:4032c6d5bf0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a4938271605f4e"
REDIS_DIGEST = "sha256:0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"


def typical_report(dry_run: bool = False, not_moved: bool = True) -> RunReport:
    nginx = MovedImage(
        source="docker.io/library/nginx:1.27",
        target=f"{DEST}/docker.io/library/nginx:1.27",
        digest=NGINX_DIGEST,
        platforms=("linux/amd64", "linux/arm64"),
        status="missing" if dry_run else "copied",
        pulls=1234,
        repository_pulls=5678,
        occurrences=(
            Occurrence("deploy/web.yaml", 12, 16),
            Occurrence("Dockerfile", 1, 6),
        ),
    )
    exporter = MovedImage(
        source="quay.io/prometheus/node-exporter:v1.8.2",
        target=f"{DEST}/quay.io/prometheus/node-exporter:v1.8.2",
        digest=EXPORTER_DIGEST,
        platforms=("linux/amd64", "linux/arm64", "linux/arm/v7"),
        status="present",
        pulls=None,
        repository_pulls=None,
        occurrences=tuple(Occurrence(f"charts/monitoring/values-{n}.yaml", 3, 10) for n in range(7)),
    )
    redis = MovedImage(
        source="docker.io/library/redis:7",
        target=f"{DEST}/docker.io/library/redis:7",
        digest=None if dry_run else REDIS_DIGEST,
        platforms=(),
        status="unknown" if dry_run else "copied",
        pulls=0,
        repository_pulls=0,
        occurrences=(Occurrence("compose.yaml", 4, 12),),
    )
    left = (
        NotMoved("Dockerfile", 9, 6, "${BASE_IMAGE}", "unresolved", "variable BASE_IMAGE has no default"),
        NotMoved("deploy/worker.yaml", 20, 18, "ghcr.io/acme/worker:2.0", "failed", "copy failed: 403 Forbidden"),
        NotMoved("deploy/job.yaml", 8, 16, "busybox:1.36", "differs",
                 "the mirror tag holds sha256:1111 (source sha256:2222); left alone"),
        NotMoved("deploy/web.yaml", 30, 16, "gcr.io/acme/sidecar:1", "internal", "internal registry"),
    )
    return RunReport(
        repository="acme/shop",
        destination=DEST,
        base="main",
        branch="rehome/mirror-images",
        moved=(nginx, exporter, redis),
        not_moved=left if not_moved else (),
        files_changed=("Dockerfile", "compose.yaml", "deploy/web.yaml")
        + tuple(f"charts/monitoring/values-{n}.yaml" for n in range(7)),
        pull_window=PullWindow("bigquery://acme-logs.gke_events", "2026-10-27T00:00:00Z", "2026-11-26T00:00:00Z"),
        dry_run=dry_run,
    )
