"""The mirror step: make sure every move's target holds an exact, verified copy of its source.

`ensure_images` is what `rehome mirror` calls with the plan's moves; `rehome copy` calls it with one.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from bot.errors import RehomeError, UsageError
from bot.imageref import ImageRef, InvalidReference, check_not_host_alone, parse
from bot.output import print_json, render_table
from bot.registry import (
    Copier, CopyOptions, Credential, CredentialStore, Registries, RegistryError, RetryPolicy, Secret,
)
from bot.registry.copy import DEFAULT_JOBS, CopyResult
from bot.registry.manifests import head_digest

log = logging.getLogger("rehome")

# Statuses a human must look at (exit 1). A dry run's `unknown` (could not check, e.g. offline)
# is shown but is not a failure: the dry run changed nothing and promised nothing.
NEEDS_ATTENTION = frozenset({"failed", "differs"})
INTERRUPT_GRACE = 3.0  # seconds the copies under way get, after Ctrl-C, to stop at their next step
POLL = 0.2


@dataclasses.dataclass(frozen=True)
class MirrorOptions:
    dry_run: bool = False
    refresh: bool = False
    jobs: int = DEFAULT_JOBS
    referrers: bool = True
    insecure_registries: tuple[str, ...] = ()
    # Credentials given on the command line, by registry host (the destination's).
    credentials: Mapping[str, Credential] = dataclasses.field(default_factory=dict)
    destination: str | None = None  # the destination registry's host; the others are the sources'
    retry: RetryPolicy = RetryPolicy()
    timeout: float = 60.0  # seconds to wait for each answer
    warns_low_quota: bool = True  # False where the pulls left are reported otherwise (`rehome doctor`'s check line)


@dataclasses.dataclass(frozen=True)
class MirrorImage:
    """One line of `rehome mirror`'s output; the fields and their order are DESIGN.md's JSON contract
    (but `mirror_digest`, which the table shows and the JSON's `error` says)."""

    source: str
    target: str
    digest: str | None
    platforms: tuple[str, ...]
    status: str
    bytes: int
    pulls: int | None
    error: str | None
    mirror_digest: str | None = None  # differs: what the mirror's tag holds (`digest` is the source's)

    @property
    def verified_digest(self) -> str | None:
        """The digest the mirror is known to serve (present or copied): what `--pin-digest` pins."""
        return self.digest if self.status in ("present", "copied") else None

    @property
    def problem(self) -> str | None:
        """`error` for a text that names the image already: without the source's name the registry
        error starts with (a problem at the mirror keeps the mirror's name)."""
        return None if self.error is None else self.error.removeprefix(f"{parse(self.source).name}: ")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["platforms"] = list(self.platforms)
        del data["mirror_digest"]
        return data

    @classmethod
    def from_result(cls, result: CopyResult, pulls: int | None) -> MirrorImage:
        return cls(result.source, result.target, result.digest, tuple(result.platforms), result.status,
                   result.bytes, pulls, result.error, result.mirror_digest)


# An image waiting for a layer that another image is copying holds its worker meanwhile: with more
# image workers than blob jobs, the images behind it keep the blob jobs busy. (The mirror benchmark's
# 20 images sharing a 60 MB base: 8% less time, median of 10 paired runs.)
IMAGE_WORKERS_PER_JOB = 4
JOBS_HELP = (f"blobs copied at once (default {DEFAULT_JOBS}); "
             f"up to {IMAGE_WORKERS_PER_JOB}N images are looked up at once")


def open_registries(options: MirrorOptions) -> Registries:
    return Registries(
        credentials=CredentialStore(options.credentials),
        insecure=options.insecure_registries,
        retry=options.retry,
        timeout=options.timeout,
        connections=max(8, options.jobs * (IMAGE_WORKERS_PER_JOB + 1)),
        destination=options.destination,
        warns_low_quota=options.warns_low_quota,
    )


def ensure_images(
    moves: Sequence[tuple[str, str]],
    options: MirrorOptions = MirrorOptions(),
    *,
    pulls: Mapping[str, int | None] | None = None,
    registries: Registries | None = None,
) -> list[MirrorImage]:
    """Ensure each `(source, target)`; one result per move, sorted by source. Failures are results, not exceptions.

    Ctrl-C stops every copy (no request starts after it, downloads stop at their next chunk) and raises
    `Interrupted` with the results so far."""
    copy_options = CopyOptions(dry_run=options.dry_run, refresh=options.refresh, referrers=options.referrers,
                               jobs=options.jobs)
    pulls = pulls or {}
    own = registries is None
    pool = registries or open_registries(options)
    try:
        with Copier(pool, copy_options) as copier:
            results, interrupted = _ensure_each(copier, moves, options.jobs)
        report_rate_limits(pool)
    finally:
        if own:
            pool.close()
    found = sorted((MirrorImage.from_result(r, pulls.get(r.source)) for r in results),
                   key=lambda image: (image.source, image.target))
    if interrupted:
        raise Interrupted(found)
    return found


def _ensure_each(copier: Copier, moves: Sequence[tuple[str, str]], jobs: int) -> tuple[list[CopyResult], bool]:
    """The moves' results in order, and whether Ctrl-C stopped them (then the unfinished ones are failed)."""
    workers = ThreadPoolExecutor(max(1, jobs) * IMAGE_WORKERS_PER_JOB, thread_name_prefix="rehome-image")
    futures = [workers.submit(copier.ensure, *move) for move in moves]
    try:
        pending: set[Future[CopyResult]] = set(futures)
        while pending:  # in steps: a Ctrl-C that reached another thread is handled at the next one
            pending = wait(pending, timeout=POLL).not_done
        results = [future.result() for future in futures]
    except KeyboardInterrupt:
        copier.registries.cancel()
        workers.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: report what is done now
            if not all(future.done() for future in futures):
                log.warning("interrupted: waiting up to %gs for the copies under way to stop (Ctrl-C again not to "
                            "wait)", INTERRUPT_GRACE)
            wait(futures, timeout=INTERRUPT_GRACE)
        return [_finished_or_stopped(future, move, copier.options) for future, move in zip(futures, moves)], True
    workers.shutdown()
    return results, False


def _finished_or_stopped(future: Future[CopyResult], move: tuple[str, str], options: CopyOptions) -> CopyResult:
    if future.done() and not future.cancelled():
        return future.result()
    return CopyResult(*move, "unknown" if options.dry_run else "failed", error="interrupted before it finished")


class Interrupted(RehomeError):
    """Ctrl-C stopped the mirror step; `images` are the results, the unfinished ones failed (exit 130)."""

    exit_code = 130

    def __init__(self, images: list[MirrorImage]) -> None:
        verified = sum(1 for image in images if image.verified_digest)
        super().__init__(f"interrupted: {verified} of {len(images)} images are verified in the mirror; "
                         f"no copy went on after the interrupt (run the command again to finish)")
        self.images = images


def ensure_and_print(moves: Sequence[tuple[str, str]], options: MirrorOptions, output_format: str, *,
                     pulls: Mapping[str, int | None] | None = None) -> list[MirrorImage]:
    """`ensure_images`, then its table or JSON; when interrupted, what was done is printed before the error."""
    return ensure_and_show(moves, options, lambda images: print_images(images, output_format), pulls=pulls)


def ensure_and_show(moves: Sequence[tuple[str, str]], options: MirrorOptions,
                    show: Callable[[list[MirrorImage]], None], *, pulls: Mapping[str, int | None] | None = None,
                    registries: Registries | None = None) -> list[MirrorImage]:
    """`ensure_images`, then `show` the results; when interrupted, what was done is shown before the error."""
    try:
        images = ensure_images(moves, options, pulls=pulls, registries=registries)
    except Interrupted as stop:
        show(stop.images)
        raise
    show(images)
    return images


def print_images(images: Sequence[MirrorImage], output_format: str) -> None:
    if output_format == "json":
        print_json(to_json(images))
    else:
        print(render(images), flush=True)


def mirror_digests(targets: Sequence[str], options: MirrorOptions) -> dict[str, tuple[str | None, str | None]]:
    """The digest each target tag serves in the mirror, asking the mirror alone (its copies were verified
    when made): target -> (digest, None), (None, None) when the mirror has no such tag, or (None, why the
    mirror could not be asked)."""
    found: dict[str, tuple[str | None, str | None]] = {}
    with open_registries(options) as registries:
        for target in targets:
            ref = parse(target)
            reference = ref.digest or ref.tag or "latest"
            try:
                digest = head_digest(registries.get(ref.domain), ref.path, reference, "look up the copy")
            except RegistryError as exc:
                found[target] = (None, str(exc))
                continue
            found[target] = (digest, None)
    return found


def report_rate_limits(registries: Registries) -> None:
    """Docker Hub's pull quota, as its last answer reported it, unless the warning that few are left gave that count."""
    for registry in registries.used():
        limit = registry.rate_limit
        if limit is not None and limit.remaining != registry.quota_warned_at:
            log.info("%s: %d pulls left in the rate-limit window", registry.domain, limit.remaining)


def exit_code(images: Sequence[MirrorImage]) -> int:
    """1 when an image failed or differs, or is verified but its signatures could not be copied."""
    return 1 if any(image.status in NEEDS_ATTENTION or (image.verified_digest and image.error) for image in images) else 0


def to_json(images: Sequence[MirrorImage]) -> dict[str, Any]:
    return {"version": 1, "images": [image.to_json() for image in images]}


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def short_digest(digest: str | None) -> str:
    return "" if digest is None else digest.split(":", 1)[-1][:12]


def _digest_cell(image: MirrorImage) -> str:
    """The digest the mirror serves; for a tag that differs, what the mirror holds, then the source's."""
    if image.mirror_digest is None:
        return short_digest(image.digest)
    return f"{short_digest(image.mirror_digest)} (upstream {short_digest(image.digest)})"


def render(images: Sequence[MirrorImage]) -> str:
    """A table (one row per image), then each problem on its own line."""
    rows = [
        (image.status, image.source, image.target, _digest_cell(image), ",".join(image.platforms),
         human_bytes(image.bytes), "" if image.pulls is None else image.pulls)
        for image in images
    ]
    lines = [render_table(("STATUS", "SOURCE", "TARGET", "DIGEST", "PLATFORMS", "SENT", "PULLS"), rows)]
    lines += [f"{image.status}: {image.source}: {image.problem}" for image in images if image.error]
    return "\n".join(lines)


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    """How to reach and log in to registries (copy, mirror, doctor)."""
    parser.add_argument("--insecure-registry", action="append", default=[], metavar="HOST",
                        help="talk plain HTTP to HOST[:PORT] (loopback registries always are); repeatable")
    parser.add_argument("--username", help="user name for the destination registry (with --password-stdin)")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the destination registry's password or token from standard input")


def add_copy_arguments(parser: argparse.ArgumentParser) -> None:
    """What to copy and how (copy, mirror)."""
    parser.add_argument("--dry-run", action="store_true", help="copy nothing; say what would be copied")
    parser.add_argument("--refresh", action="store_true",
                        help="replace a mirror tag that now differs from its source (default: report 'differs')")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, metavar="N", help=JOBS_HELP)
    parser.add_argument("--no-referrers", dest="referrers", action="store_false",
                        help="do not copy signatures and attestations (cosign tags, OCI referrers)")


def credentials_from_args(args: argparse.Namespace, destination_host: str) -> dict[str, Credential]:
    """`--username` with `--password-stdin`: credentials for the destination registry only."""
    if args.password_stdin != bool(args.username):
        raise UsageError("--username and --password-stdin go together")
    if not args.password_stdin:
        return {}
    password = sys.stdin.read().rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin: standard input is empty")
    return {destination_host: Credential(args.username, Secret(password), None, "--username/--password-stdin")}


def options_from_args(args: argparse.Namespace, insecure_registries: Sequence[str], destination_host: str) -> MirrorOptions:
    """MirrorOptions from the shared flags plus `rehome.yaml`'s `insecure_registries`."""
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    return MirrorOptions(
        dry_run=args.dry_run, refresh=args.refresh, jobs=args.jobs, referrers=args.referrers,
        insecure_registries=tuple(insecure_registries) + tuple(args.insecure_registry),
        credentials=credentials_from_args(args, destination_host),
        destination=destination_host,
    )


def image_argument(reference: str, what: str) -> ImageRef:
    """An image named on the command line, as Docker reads it; a registry host alone is refused."""
    try:
        check_not_host_alone(reference)
        return parse(reference)
    except InvalidReference as exc:
        raise UsageError(f"{what} {reference!r}: {exc}") from None


def registry_host(reference: str, what: str) -> str:
    return image_argument(reference, what).domain
