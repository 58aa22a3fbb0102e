"""Count a generated NDJSON log export of pull events; print events per second and peak memory.

    python benchmarks/pulls_speed.py [EVENTS ...]     (default: 250000 1000000)

Each size runs in a fresh process so peak memory (max RSS) is its own; the target is 200,000 events/s
and a peak memory that does not grow with the file. Events per CPU second shows the speed apart from
other load on the machine.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

IMAGES = [f"nginx:1.{i}" for i in range(10)] + [f"quay.io/team/app{i}:v{i}" for i in range(10)]
CLUSTERS = ["prod", "staging", "dev"]
SPAN_SECONDS = 7 * 24 * 3600


def write_export(path: Path, events: int) -> None:
    start = 1_714_521_600  # 2024-05-01T00:00:00Z
    with path.open("w") as out:
        for i in range(events):
            seconds = start + (i * 7919) % SPAN_SECONDS
            entry = {
                "insertId": f"id{i:08d}",
                "jsonPayload": {
                    "involvedObject": {"kind": "Pod", "name": f"web-{i % 977}", "namespace": "default"},
                    "kind": "Event",
                    "message": f'Pulling image "{IMAGES[i % len(IMAGES)]}"',
                    "reason": "Pulling",
                    "source": {"component": "kubelet", "host": f"node-{i % 31}"},
                    "type": "Normal",
                },
                "logName": "projects/acme/logs/events",
                "receiveTimestamp": time.strftime("%Y-%m-%dT%H:%M:%S.123456789Z", time.gmtime(seconds)),
                "resource": {"labels": {
                    "cluster_name": CLUSTERS[i % len(CLUSTERS)], "location": "us-central1",
                    "namespace_name": "default", "pod_name": f"web-{i % 977}", "project_id": "acme",
                }, "type": "k8s_pod"},
                "severity": "INFO",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000001Z", time.gmtime(seconds)),
            }
            out.write(json.dumps(entry))
            out.write("\n")


def measure(path: Path) -> None:
    """Runs in the child process: count, then print one JSON line of figures."""
    from bot.pulls import load_counts

    started, cpu_started = time.perf_counter(), time.process_time()
    counts = load_counts(str(path))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    pulls = sum(row.pulls for row in counts.images)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"pulls": pulls, "seconds": elapsed, "cpu_seconds": cpu, "max_rss_kib": peak_kib}))


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for events in sizes:
            path = Path(tmp) / f"pulls-{events}.ndjson"
            write_export(path, events)
            size_mib = path.stat().st_size / 2**20
            child = subprocess.run(
                [sys.executable, __file__, "--measure", str(path)], check=True, capture_output=True, text=True,
            )
            figures = json.loads(child.stdout)
            assert figures["pulls"] == events, figures
            print(
                f"{events:>9,} events  {size_mib:7.1f} MiB  {figures['seconds']:6.2f} s  "
                f"{events / figures['seconds']:>9,.0f} events/s ({events / figures['cpu_seconds']:,.0f} per CPU second)  "
                f"peak memory {figures['max_rss_kib'] / 1024:6.1f} MiB"
            )
            path.unlink()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure(Path(sys.argv[2]))
    else:
        main([int(n) for n in sys.argv[1:]] or [250_000, 1_000_000])
