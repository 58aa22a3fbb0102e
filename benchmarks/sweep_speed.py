"""How long `rehome sweep` takes over an organisation, beside a plain `git clone` of the same
repositories with the same concurrency, measured in the same run.

The organisation lives on the GitHub stand-in (tests/github/server.py, PyGithub's politeness pauses
off as they are for loopback), each repository a bare remote built from ../shared/corpus: a random
sample of its Dockerfiles and YAML (a few hundred files, a few MB), plus one manifest using two of
four images on a loopback upstream registry; each remote is packed (`git repack -ad`), as a hosted
repository is, so the server sends stored deltas rather than compressing loose objects for every clone. The sweep is a real one, not a dry run: the four
images are copied to a loopback mirror registry (once for the whole sweep), every repository is
cloned, scanned, planned, rewritten, committed and pushed, and its pull request opened on the
stand-in. The corpus's own references (docker.io, gcr.io, …) are declared internal with
`--internal`, as nothing can be copied from the internet here. Each run uses a fresh stand-in, a new
mirror path and no bot branches. The plain clones write every file out, as `git clone` does; the
sweep's clones write none (rehome reads the files from git's objects), which is much of the
difference on a disk where creating a file is slow. Each timed step starts after a `sync`, so neither
pays for the other's writeback. Run as root, each timed step also starts from the same kernel caches:
they are dropped, then the remotes and the sweep's modules are read back in. Without that, on the
virtual machines this was measured on, the kernel time of the same clones grew from run to run
with the dentries and inodes earlier steps left behind (15 s, then 28, 28, 34 and 36 s for five
runs of the same 100 clones; 8-11 s each when the caches were dropped first), so the later runs
compared the sweep with ever slower clones. Nor is anything deleted between timed steps: on such
a disk (ext4 mounted with `discard`) 100 clones took 11.9-13.0 s of system time right after the
previous 100 clones were deleted, and 4.8-6.2 s when those were kept, so the trees and the clone
folders stay until the end. A third timed step runs the git work of the sweep alone, with no
scan and no GitHub call (a shallow clone that writes no file, a one-file commit, its push): the part
of the sweep's time that git takes, whatever rehome does in between. A fourth runs the same sweep
with `--include deploy/**`: everything as in the full sweep (listing, the copy, clone, commit, push,
pull request) but the scan of the corpus files, which it does not read: the part of the sweep's
time that is not scanning. Prints medians of several runs and of the runs' ratios; asserts nothing.

    python benchmarks/sweep_speed.py [--repos 100] [--files 600] [--runs 3] [--jobs 4] [--workers process]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.github.server import GitHubServer  # noqa: E402
from tests.oci import images  # noqa: E402
from tests.oci.servers import RegistryServer  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
TOKEN_ENV = "REHOME_BENCH_TOKEN"
BRANCH = "rehome/mirror-images"
FLOOR_BRANCH = "rehome-bench/git-steps"  # where the git steps timed alone push their commit
SCANNED_ALONE = "deploy/**"  # the one file of each repository that moves: what the sweep scans when timed without the rest


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and "peer" not in p.relative_to(CORPUS).parts)


def build_repositories(work: Path, count: int, files: int, upstream: str) -> tuple[list[Path], int, int]:
    """`count` bare remotes; returns them, the mean bytes and the mean file count per repository."""
    pool = corpus_files()
    remotes, sizes, counts = [], [], []
    loopback_images = [f"{upstream}/bench/img{n}:1" for n in range(4)]
    for number in range(count):
        rng = random.Random(number)
        tree = work / "trees" / f"repo-{number:03d}"
        picked = rng.sample(pool, min(files, len(pool)))
        for source in picked:
            target = tree / source.relative_to(CORPUS)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        used = [loopback_images[number % 4], loopback_images[(number + 1) % 4]]
        (tree / "deploy").mkdir(exist_ok=True)
        (tree / "deploy" / "bench-app.yaml").write_text(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
            "      containers:\n" + "".join(f"        - name: c{i}\n          image: {image}\n"
                                          for i, image in enumerate(used)))
        git(tree, "init", "-q", "-b", "main")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", "import")
        remote = work / "remotes" / f"repo-{number:03d}.git"
        git(work, "clone", "-q", "--bare", str(tree), str(remote))
        git(remote, "repack", "-adq")  # packed, with deltas, as a hosted repository is (the clone left them loose)
        git(remote, "config", "uploadpack.allowFilter", "true")
        sizes.append(sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts))
        counts.append(len(picked) + 1)  # the tree stays until the end, like the clones
    return remotes or sorted((work / "remotes").iterdir()), int(statistics.mean(sizes)), int(statistics.mean(counts))


def drop_bot_branches(remotes: list[Path]) -> None:
    """Each remote as built: no bot branch, and none of the objects its last push left behind."""
    for remote in remotes:
        for branch in (BRANCH, FLOOR_BRANCH):
            subprocess.run(["git", "--git-dir", str(remote), "update-ref", "-d", f"refs/heads/{branch}"], check=False)
        subprocess.run(["git", "--git-dir", str(remote), "prune", "--expire=now"], check=True)


DROP_CACHES = Path("/proc/sys/vm/drop_caches")
SWEEP_MODULES = "import bot.commands.sweep, bot.sweep.workers, bot.sweep.shared, bot.pipeline, bot.forge.github"


def can_drop_caches() -> bool:
    return os.geteuid() == 0 and os.access(DROP_CACHES, os.W_OK)


def settle(remotes: list[Path]) -> None:
    """Before each timed step: the files the last step wrote (or deleted) reach the disk now, so
    their writeback is not charged to the next step; as root, the caches are dropped and what both
    steps read (the remotes; the sweep's modules) is read back in."""
    os.sync()
    if can_drop_caches():
        DROP_CACHES.write_text("3\n")
        for remote in remotes:
            for path in remote.rglob("*"):
                if path.is_file():
                    path.read_bytes()
        subprocess.run([sys.executable, "-c", SWEEP_MODULES], cwd=ROOT, check=True)
    time.sleep(1)


def time_clones(remotes: list[Path], jobs: int, into: Path) -> float:
    into.mkdir(parents=True)
    settle(remotes)
    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda r: subprocess.run(["git", "clone", "-q", f"file://{r}", str(into / r.stem)],
                                               check=True), remotes))
    return time.perf_counter() - start  # `into` is kept: see the module's notes on deleting


def time_git_steps(remotes: list[Path], jobs: int, into: Path) -> float:
    """The git work of a sweep's repository, alone: a shallow clone that writes no file (as the
    sweep's), one commit changing one file made without a working tree, and its push."""
    into.mkdir(parents=True)
    settle(remotes)
    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda r: clone_commit_push(r, into / r.stem), remotes))
    return time.perf_counter() - start


def clone_commit_push(remote: Path, into: Path) -> None:
    git(into.parent, "clone", "-q", "--template=", "--depth", "1", "--no-checkout", "--single-branch", "--no-tags",
        "--branch", "main", f"file://{remote}", str(into))
    base = git(into, "rev-parse", "HEAD").strip()
    content = b"moved\n"
    commands = (b"commit refs/heads/git-steps\ncommitter bench <bench@example.com> 0 +0000\ndata 5\nmoved"
                + f"\nfrom {base}\nM 100644 inline deploy/bench-app.yaml\ndata {len(content)}\n".encode()
                + content + b"\ndone\n")
    subprocess.run(["git", "fast-import", "--quiet", "--done"], cwd=into, input=commands, check=True, capture_output=True)
    git(into, "push", "-q", f"--force-with-lease=refs/heads/{FLOOR_BRANCH}:", "origin",
        f"refs/heads/git-steps:refs/heads/{FLOOR_BRANCH}")


def time_sweep(remotes: list[Path], jobs: int, workers: str, target: str, run: int, work: Path,
               *extra: str) -> tuple[float, int]:
    github = GitHubServer()
    try:
        for remote in remotes:
            github.add_repo(f"bench/{remote.stem}", f"file://{remote}", git_dir=str(remote))
        env = {**os.environ, TOKEN_ENV: "bench-token", "PYTHONPATH": str(ROOT),
               "DOCKER_CONFIG": str(work / "docker-config")}
        argv = [sys.executable, "-m", "bot", "sweep", "--org", "bench", "--to", f"{target}/run{run}",
                "--github-url", github.base_url, "--token-env", TOKEN_ENV, "--jobs", str(jobs), "--workers", workers,
                "--no-progress",
                "--internal", "[!1]*", "--format", "json", "-q", *extra]
        settle(remotes)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"the sweep failed ({done.returncode}): {done.stderr[-2000:]}")
        pulls = sum(len(repo.pulls) for repo in github.repos.values())
        if pulls != len(remotes):
            odd = [(r["repo"], r["status"], r["error"]) for r in json.loads(done.stdout)["repositories"]
                   if r["status"] != "done"]
            raise SystemExit(f"run {run}: {pulls} pull requests for {len(remotes)} repositories: {odd[:5]}")
        return elapsed, pulls
    finally:
        github.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--workers", choices=["process", "thread"], default="process", help="the sweep's --workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rehome-sweep-bench-") as tmp:
        work = Path(tmp)
        upstream, target = RegistryServer(work / "upstream").start(), RegistryServer(work / "target").start()
        try:
            for n in range(4):
                images.push(upstream.host, f"bench/img{n}", images.image((200_000, 300_000)), "1")
            start = time.perf_counter()
            remotes, size, files = build_repositories(work, args.repos, args.files, upstream.host)
            print(f"built {len(remotes)} repositories in {time.perf_counter() - start:.0f}s: "
                  f"mean {files} files, {size / 1e6:.1f} MB each (from ../shared/corpus)")
            sweeps, clones, steps, unscanned = [], [], [], []
            for run in range(args.runs):
                drop_bot_branches(remotes)  # each run's clones and sweep see the repositories as built
                clones.append(time_clones(remotes, args.jobs, work / f"clones{run}"))
                steps.append(time_git_steps(remotes, args.jobs, work / f"steps{run}"))
                drop_bot_branches(remotes)
                elapsed, pulls = time_sweep(remotes, args.jobs, args.workers, f"{target.host}/mirror", run, work)
                sweeps.append(elapsed)
                drop_bot_branches(remotes)
                unscanned.append(time_sweep(remotes, args.jobs, args.workers, f"{target.host}/unscanned", run, work,
                                            "--include", SCANNED_ALONE)[0])
                print(f"run {run + 1}: sweep {elapsed:.2f}s ({pulls} pull requests opened), "
                      f"git clone {clones[-1]:.2f}s, ratio {elapsed / clones[-1]:.2f}x; "
                      f"the sweep's git steps alone {steps[-1]:.2f}s ({steps[-1] / clones[-1]:.2f}x); "
                      f"the sweep scanning one file {unscanned[-1]:.2f}s ({unscanned[-1] / clones[-1]:.2f}x)")
        finally:
            upstream.stop()
            target.stop()
    sweep, clone = statistics.median(sweeps), statistics.median(clones)
    print("mode: real sweep (no --dry-run): 4 images copied once to a loopback mirror, every repository "
          "cloned, scanned, rewritten, pushed, its pull request opened on the GitHub stand-in")
    print(f"concurrency: --jobs {args.jobs} --workers {args.workers} / {args.jobs} clones at once; "
          f"{os.cpu_count()} CPUs; kernel caches dropped before each step: {'yes' if can_drop_caches() else 'no (not root)'}")
    ratio = statistics.median(s / c for s, c in zip(sweeps, clones))
    print(f"median of {args.runs} runs: rehome sweep {sweep:.2f}s, git clone {clone:.2f}s; "
          f"median of the runs' ratios {ratio:.2f}x (target <= 1.5x)")
    floor = statistics.median(s / c for s, c in zip(steps, clones))
    print(f"the sweep's git steps alone (shallow clone writing no file, a one-file commit, its push; no scan, "
          f"no GitHub calls): median {statistics.median(steps):.2f}s, {floor:.2f}x the clones")
    alone = statistics.median(u / c for u, c in zip(unscanned, clones))
    print(f"the same sweep scanning only {SCANNED_ALONE} (everything else as it is: clone, copy, commit, push, pull "
          f"request): median {statistics.median(unscanned):.2f}s, {alone:.2f}x the clones")


if __name__ == "__main__":
    main()
