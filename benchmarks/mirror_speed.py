"""How fast `rehome` copies images between loopback registries, beside `skopeo copy` and a `curl -T` floor.

Scenarios (issue 4): (a) one 100 MB image with 4 layers; (b) 20 images sharing a 60 MB base, each with its
own 5 MB layer; (c) a 3-platform index. Every run copies into a freshly started target registry, each
tool after a `sync` (the previous step's writes reach the disk first), the tools taking turns at going
first. The targets are deleted at the end, not between steps: on an ext4 disk mounted with `discard`,
writing right after a large deletion costs much more kernel time (benchmarks/sweep_speed.py measures
it). Prints medians of several runs, the ratios, and rehome/skopeo of each run; asserts nothing.

    python benchmarks/mirror_speed.py [--runs 3] [--scale 1.0]
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.mirror import MirrorOptions, ensure_images  # noqa: E402
from tests.oci import images  # noqa: E402
from tests.oci.servers import RegistryServer  # noqa: E402

MB = 1_000_000


@dataclasses.dataclass
class Scenario:
    name: str
    repos: list[tuple[str, images.Image]]  # (upstream repository, image), tag "v1"
    index: bool = False

    @property
    def unique_bytes(self) -> int:
        found: dict[str, int] = {}
        for _, image in self.repos:
            found.update({b.digest: len(b.data) for b in image.all_blobs()})
        return sum(found.values())


def scenarios(scale: float) -> list[Scenario]:
    def size(mb: float) -> int:
        return int(mb * MB * scale)

    one = images.image(tuple(size(25) for _ in range(4)))
    base = images.random_layer(size(60))
    many = [images.image((size(5),), shared=(base,)) for _ in range(20)]
    index = images.multi_platform(size(30))
    return [
        Scenario("(a) one image, 4 layers", [("bench/single", one)]),
        Scenario("(b) 20 images, shared base", [(f"bench/many{i}", image) for i, image in enumerate(many)]),
        Scenario("(c) 3-platform index", [("bench/index", index)], index=True),
    ]


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run_rehome(upstream: str, target: str, scenario: Scenario) -> None:
    moves = [(f"{upstream}/{repo}:v1", f"{target}/{repo}:v1") for repo, _ in scenario.repos]
    results = ensure_images(moves, MirrorOptions(jobs=8))
    bad = [r for r in results if r.status != "copied"]
    if bad:
        raise SystemExit(f"rehome failed: {bad[0].error}")


def run_skopeo(upstream: str, target: str, scenario: Scenario) -> None:
    for repo, _ in scenario.repos:
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--all", "--preserve-digests", "--src-tls-verify=false",
             "--dest-tls-verify=false", f"docker://{upstream}/{repo}:v1", f"docker://{target}/{repo}:v1"],
            check=True, capture_output=True,
        )


def curl_floor(target: str, path: Path, digest: str) -> float:
    """One streamed monolithic PUT of the same number of bytes: the registry's own speed limit."""
    start = httpx.post(f"http://{target}/v2/bench/floor/blobs/uploads/")
    start.raise_for_status()
    url = str(httpx.URL(start.headers["Location"]).copy_add_param("digest", digest))
    return timed(lambda: subprocess.run(
        ["curl", "-sSf", "-T", str(path), "-X", "PUT", "-H", "Content-Type: application/octet-stream", url],
        check=True, capture_output=True))


def settle() -> None:
    """Before each timed step: what the last one wrote reaches the disk now, so its writeback
    is not charged to whichever tool comes next."""
    os.sync()
    time.sleep(0.5)


def measure(workdir: Path, upstream: str, scenario: Scenario, runs: int) -> dict[str, Any]:
    floor_file = workdir / "floor.bin"
    hasher = hashlib.sha256()
    with floor_file.open("wb") as f:
        remaining = scenario.unique_bytes
        while remaining:
            chunk = os.urandom(min(remaining, 8 * MB))
            hasher.update(chunk)
            f.write(chunk)
            remaining -= len(chunk)
    digest = "sha256:" + hasher.hexdigest()
    times: dict[str, list[float]] = {"rehome": [], "skopeo": [], "floor": []}
    tools = list(times)
    used: list[RegistryServer] = []
    for run in range(runs):
        for tool in tools[run % len(tools):] + tools[:run % len(tools)]:  # each tool in each place in turn
            target = RegistryServer(workdir / f"target-{tool}-{run}").start()
            try:
                settle()
                if tool == "floor":
                    times[tool].append(curl_floor(target.host, floor_file, digest))
                else:
                    runner = run_rehome if tool == "rehome" else run_skopeo
                    times[tool].append(timed(lambda: runner(upstream, target.host, scenario)))
            finally:
                target.stop()
                used.append(target)
    for target in used:  # deleted only now: see the module's notes
        target.wipe()
    floor_file.unlink()
    medians = {tool: statistics.median(values) for tool, values in times.items()}
    # Each run times both tools minutes apart at most: its own ratio shows how much the machine's noise moves it.
    medians["per run"] = [ours / theirs for ours, theirs in zip(times["rehome"], times["skopeo"])]
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every layer size (1.0 = the issue's sizes)")
    parser.add_argument("--only", choices=("a", "b", "c"), action="append", help="run only these scenarios")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rehome-bench-") as tmp:
        workdir = Path(tmp)
        upstream = RegistryServer(workdir / "upstream").start()
        try:
            print(f"median of {args.runs} runs, loopback registries (docker-registry), scale {args.scale}")
            header = f"{'scenario':<30} {'MB':>6} {'rehome s':>9} {'skopeo s':>9} {'floor s':>8} " \
                     f"{'rehome/skopeo':>14} {'rehome MB/s':>12} {'floor MB/s':>11} {'of floor':>9}"
            print(header)
            for scenario in scenarios(args.scale):
                if args.only and scenario.name[1] not in args.only:
                    continue
                for repo, image in scenario.repos:
                    images.push(upstream.host, repo, image, "v1")
                medians = measure(workdir, upstream.host, scenario, args.runs)
                megabytes = scenario.unique_bytes / MB
                ours, floor = megabytes / medians["rehome"], megabytes / medians["floor"]
                print(f"{scenario.name:<30} {megabytes:>6.0f} {medians['rehome']:>9.2f} {medians['skopeo']:>9.2f} "
                      f"{medians['floor']:>8.2f} {medians['rehome'] / medians['skopeo']:>13.2f}x "
                      f"{ours:>12.1f} {floor:>11.1f} {ours / floor:>8.0%}", flush=True)
                print(f"{'':<30} rehome/skopeo of each run: "
                      + " ".join(f"{ratio:.2f}x" for ratio in medians["per run"]), flush=True)
        finally:
            upstream.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
