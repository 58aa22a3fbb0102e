"""Whole-process time of `rehome scan` on the whole corpus, next to the guide's grep
pipelines (run here, in the same run) and Renovate's measured time (corpus README).

Each command runs as a subprocess, once untimed (to warm the file cache) and then
`--runs` times; the median is reported. rehome is this checkout's (`python -m bot`,
which is what the `rehome` console script runs). Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"

# The corpus README: Renovate 39 in extract-only mode, all seven repositories, 2-core machine.
RENOVATE_SECONDS = 33.0
TARGET_SECONDS = 1.5

# The guide's pipelines, run from the corpus folder.
GREP_PIPELINES = {
    "grep FROM": """grep -inr -H --include Dockerfile\\* "FROM" . | grep -i -v -E 'docker.pkg.dev|gcr.io'""",
    "grep image:": (
        """grep -inr -H --include \\*.yaml --include \\*.yml "image:" . | grep -i -v -E 'docker.pkg.dev|gcr.io'"""
    ),
}


def rehome_command(corpus: Path) -> list[str]:
    return [sys.executable, "-m", "bot", "scan", str(corpus), "--format", "json"]


def run_once(command: list[str] | str, cwd: Path) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=env, shell=isinstance(command, str), capture_output=True, text=True, check=False,
    )
    elapsed = time.perf_counter() - start
    # grep exits 1 when nothing matches; anything else is a broken run.
    if done.returncode not in (0, 1) or (done.returncode == 1 and not isinstance(command, str)):
        raise SystemExit(f"{command!r} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed, done.stdout


def timed(command: list[str] | str, cwd: Path, runs: int) -> tuple[list[float], str]:
    _, output = run_once(command, cwd)  # warm-up, not counted
    times = []
    for _ in range(runs):
        elapsed, output = run_once(command, cwd)
        times.append(elapsed)
    return times, output


def corpus_files(corpus: Path) -> int:
    """Dockerfiles, Containerfiles and YAML files in the repository folders."""
    count = 0
    for path in corpus.rglob("*"):
        if not path.is_file() or "peer" in path.relative_to(corpus).parts[:1]:
            continue
        name = path.name
        if name.startswith(("Dockerfile", "Containerfile")) or name.endswith((".Dockerfile", ".yaml", ".yml")):
            count += 1
    return count


def grep_counts(output: str) -> tuple[int, int]:
    lines = [line for line in output.splitlines() if line]
    return len(lines), len({line.split(":", 1)[0] for line in lines})


def describe(times: list[float]) -> str:
    return f"median {statistics.median(times):6.3f} s  (min {min(times):.3f}, max {max(times):.3f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time rehome scan on the whole corpus against grep and Renovate.")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the corpus folder (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        parser.error(f"{args.corpus}: not a folder")
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    corpus = args.corpus.resolve()
    print(f"corpus: {corpus.name}/ ({corpus_files(corpus)} Dockerfiles and YAML files), {args.runs} runs each")

    rehome_times, output = timed(rehome_command(corpus), REPO_ROOT, args.runs)
    scan = json.loads(output)
    references = scan["references"]
    files = len({r["path"] for r in references})
    rehome = statistics.median(rehome_times)
    print(f"rehome scan       {describe(rehome_times)}")
    print(f"  {len(references)} references in {files} files, {len(scan['skipped'])} files skipped")

    grep_total = 0.0
    for name, pipeline in GREP_PIPELINES.items():
        times, output = timed(pipeline, corpus, args.runs)
        grep_total += statistics.median(times)
        lines, grep_files = grep_counts(output)
        print(f"{name:17} {describe(times)}")
        print(f"  {lines} lines in {grep_files} files")

    print(f"Renovate          {RENOVATE_SECONDS:6.1f} s  (measured once, corpus README)")
    print()
    print(f"rehome / both greps: {rehome / grep_total:.1f}x the time ({grep_total:.3f} s for the two pipelines)")
    print(f"Renovate / rehome:   {RENOVATE_SECONDS / rehome:.1f}x faster than Renovate")
    verdict = "within" if rehome <= TARGET_SECONDS else "over"
    print(f"target {TARGET_SECONDS} s for the whole corpus: {rehome:.3f} s, {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
