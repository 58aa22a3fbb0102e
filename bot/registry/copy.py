"""`ensure(source, target)`: make the target hold exactly the source image, verified by digest."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bot import jsontext
from bot.errors import RehomeError, UsageError
from bot.imageref import ImageRef, InvalidReference, parse, target_reference
from bot.registry import blobs, manifests
from bot.registry.blobs import UploadSessions, UploadSettings
from bot.registry.client import Registries, Registry, tries_after
from bot.registry.errors import Cancelled, NotARegistry, NotFound, RegistryError, RetryableError, with_tries
from bot.registry.manifests import IMAGE_CONFIG_TYPES, INDEX_TYPES, Descriptor, Manifest

log = logging.getLogger("rehome.registry")

COSIGN_SUFFIXES = ("sig", "att", "sbom")
# Referrers of referrers are copied too (a signature on an SBOM is two levels); a chain deeper than
# this is not expected, and the bound keeps a registry that lists referrers in a cycle from looping.
MAX_REFERRER_DEPTH = 4
DEFAULT_JOBS = 8
# An index of indexes is rare; deeper nesting is a registry serving nonsense, not an image.
MAX_INDEX_DEPTH = 4


@dataclasses.dataclass(frozen=True)
class CopyOptions:
    dry_run: bool = False
    refresh: bool = False
    referrers: bool = True
    jobs: int = DEFAULT_JOBS
    upload: UploadSettings = UploadSettings()


@dataclasses.dataclass
class CopyResult:
    """One image's outcome; `status` is present, copied, differs, failed (or missing, unknown under dry-run)."""

    source: str
    target: str
    status: str
    digest: str | None = None
    platforms: list[str] = dataclasses.field(default_factory=list)
    bytes: int = 0
    error: str | None = None
    mirror_digest: str | None = None  # differs: what the target's tag holds (`digest` is the source's)

    @property
    def verified_digest(self) -> str | None:
        """The digest the target is known to serve (for `--pin-digest`); None unless present or copied."""
        return self.digest if self.status in ("present", "copied") else None


@dataclasses.dataclass(frozen=True)
class _Repo:
    registry: Registry
    path: str

    def __str__(self) -> str:
        return f"{self.registry.domain}/{self.path}"


def _no_such_image(source: _Repo, step: str) -> NotFound:
    return manifests.no_such_image(source.registry, source.path, step)


def _is_config(descriptor: Descriptor) -> bool:
    return descriptor.media_type in IMAGE_CONFIG_TYPES and descriptor.size <= blobs.SMALL_BLOB_MAX


def _gave_up(error: RetryableError, tries: int) -> RegistryError:
    """The last failure of a blob copied `tries` times: a refusal (an HTTP status) says how often it was asked,
    as any request's does."""
    if error.status is None:
        return error
    return RegistryError(error.where, error.step, with_tries(error.detail, tries), error.hint, error.status)


class Copier:
    """Copies images between registries; each unique blob goes once per target registry per run."""

    def __init__(self, registries: Registries, options: CopyOptions = CopyOptions()) -> None:
        self.registries = registries
        self.options = options
        self._pool = ThreadPoolExecutor(max(1, options.jobs), thread_name_prefix="rehome-blob")
        # (target registry, digest) -> the blob's copy, whose result is (repository it landed in, bytes sent).
        self._blobs: dict[tuple[str, str], Future[tuple[str, int]]] = {}
        # Image configs this run copied, by digest: their platform is read from here, not fetched back.
        self._configs: dict[str, bytes] = {}
        self._uploads = UploadSessions()
        self._lock = threading.Lock()

    def __enter__(self) -> Copier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        # Interrupted: a blob copy blocked in a read cannot be stopped from here, and is not waited for; the
        # upload session it opened is cancelled here instead (a Ctrl-C again stops waiting for that too).
        self._pool.shutdown(wait=not self.registries.cancelled.is_set(), cancel_futures=True)
        with contextlib.suppress(KeyboardInterrupt):
            self._uploads.cancel_all()

    def ensure(self, source: str, target: str) -> CopyResult:
        result = CopyResult(source, target, "unknown" if self.options.dry_run else "failed")
        try:
            self._ensure(parse(source), parse(target), result)
        except UsageError:
            raise  # a setting that is wrong for every image (a Docker config.json of the wrong shape)
        except (RehomeError, InvalidReference) as exc:  # this image's registry, or its credential helper
            failure = self._at_no_registry(exc, target) or exc
            result.status = self._failed_status(failure)
            result.error = str(failure)
            log.debug("%s -> %s: %s", source, target, failure)
        return result

    def _at_no_registry(self, exc: Exception, target: str) -> NotARegistry | None:
        """A refusal from the target (an upload's, a push's) where no registry answers, said so."""
        if not isinstance(exc, RegistryError):
            return None
        ref = parse(target)
        if exc.where != f"{ref.domain}/{ref.path}":
            return None
        return manifests.refused_by_no_registry(self.registries.get(ref.domain), ref.path, exc)

    def _failed_status(self, exc: Exception) -> str:
        """`failed`. A dry run says `unknown` when the real run might get past what stopped it (a login refused,
        no answer), but not when the source answered that it has no such image: the real run fails on that too."""
        return "unknown" if self.options.dry_run and not isinstance(exc, NotFound) else "failed"

    def _ensure(self, source_ref: ImageRef, target_ref: ImageRef, result: CopyResult) -> None:
        source = _Repo(self.registries.get(source_ref.domain), source_ref.path)
        target = _Repo(self.registries.get(target_ref.domain), target_ref.path)
        reference = target_reference(source_ref, target_ref) or target_ref.digest or source_ref.digest
        assert reference is not None  # an untagged reference has a digest
        # A web server's 404 at the target is found out by the real run's upload; a dry run uploads nothing, so
        # its lookup is where a destination that is no registry shows.
        existing = manifests.find_manifest(target.registry, target.path, reference, "check target",
                                           sure_of_registry=not self.options.dry_run)
        # A source without a pull quota is asked for the manifest itself at once when the target lacks it;
        # from one with a quota, the digest is looked up first by HEAD (free), and fetched only when needed.
        fetch_now = existing is None and not source.registry.meters_pulls
        manifest = self._source_manifest(source, source_ref) if fetch_now else None
        digest = manifest.digest if manifest is not None else self._resolve(source, source_ref)
        result.digest = digest
        if target_ref.digest and target_ref.digest != digest:
            raise RegistryError(str(target), "check target", f"the target pins {target_ref.digest}, the source is {digest}")
        if existing is not None and existing.digest == digest:
            result.status = "present"
            result.platforms = self._platforms(target, existing)
            if self.options.referrers and not self.options.dry_run:
                result.bytes = self._referrers_of_verified(source, target, existing, result)
            return
        if existing is not None and not self.options.refresh:
            result.status = "differs"
            result.mirror_digest = existing.digest
            result.error = self._differs(source, target, reference, existing.digest, digest)
            return
        manifest = manifest or self._source_manifest_by_digest(source, digest)
        if self.options.dry_run:
            result.status = "missing"
            result.platforms = self._platforms(source, manifest)
            return
        result.bytes = self._copy_contents(source, target, manifest)
        self._push_verified(target, reference, manifest)
        result.status = "copied"
        result.platforms = self._platforms(target, manifest)
        if self.options.referrers:
            result.bytes += self._referrers_of_verified(source, target, manifest, result)

    @staticmethod
    def _differs(source: _Repo, target: _Repo, reference: str, held: str, digest: str) -> str:
        """Why the mirror tag is left alone. A source that has the mirror's image moved its tag since the copy; one
        that does not (asked by `HEAD`, free on Docker Hub) never had it there: it is another image's copy. When
        that question gets no answer, the tag is left alone all the same: only the reason is less sure."""
        try:
            found = manifests.head_digest(source.registry, source.path, held, "look up the mirror's image")
        except Cancelled:
            raise
        except RegistryError as exc:  # its hint stays last, on a line of its own
            return str(RehomeError(
                f"{target}:{reference} holds {held}; the source is {digest} (left alone; check the mapping first: "
                f"--refresh would replace it). Whether the source's tag moved or the mirror holds another image's "
                f"copy could not be checked: {exc.message}", exc.hint))
        if found == held:
            return f"{target}:{reference} holds {held}; the source is now {digest} (left alone; --refresh replaces it)"
        return (f"{target}:{reference} holds {held}, an image {source} does not have (another image's copy, as when "
                f"a mapping sends two images to one name, or one the source deleted); the source is {digest} "
                f"(left alone; check the mapping first: --refresh would replace it)")

    def _referrers_of_verified(self, source: _Repo, target: _Repo, manifest: Manifest, result: CopyResult) -> int:
        """The image is in the mirror, verified, whatever happens to its signatures: a failure to copy
        them is the result's error, not its status."""
        try:
            return self._copy_referrers(source, target, manifest)
        except UsageError:
            raise
        except RehomeError as exc:  # its hint stays last, on a line of its own
            result.error = str(RehomeError(f"the image is verified, but its signatures and attestations were not "
                                           f"copied: {exc.message} (--no-referrers leaves them out)", exc.hint))
            return 0

    def _source_manifest(self, source: _Repo, ref: ImageRef) -> Manifest:
        if ref.digest:
            return self._source_manifest_by_digest(source, ref.digest)
        tag = ref.tag or "latest"
        manifest = manifests.find_manifest(source.registry, source.path, tag, f"resolve tag {tag}")
        if manifest is None:
            raise _no_such_image(source, f"resolve tag {tag}")
        return manifest

    @staticmethod
    def _source_manifest_by_digest(source: _Repo, digest: str) -> Manifest:
        """A 404 for a digest is no such image, as for a tag, unless no registry answers there (a web server)."""
        step = f"get manifest {digest}"
        manifest = manifests.find_manifest(source.registry, source.path, digest, step)
        if manifest is None:
            raise _no_such_image(source, step)
        return manifest

    def _resolve(self, source: _Repo, ref: ImageRef) -> str:
        """The digest the source's tag points to, by `HEAD` (which Docker Hub does not count as a pull)."""
        if ref.digest:
            return ref.digest  # `tag@digest` is copied by digest; the tag is only the target's name
        tag = ref.tag or "latest"
        digest = manifests.head_digest(source.registry, source.path, tag, f"resolve tag {tag}")
        if digest is None:
            raise _no_such_image(source, f"resolve tag {tag}")
        return digest

    def _push_verified(self, target: _Repo, reference: str, manifest: Manifest) -> None:
        manifests.put_manifest(target.registry, target.path, reference, manifest)
        after = manifests.head_digest(target.registry, target.path, reference, "verify the copy")
        if after == manifest.digest:
            return
        pushed = f"the manifest {reference}" if manifests.is_digest(reference) else f"the tag {reference}"
        if after is None:
            problem = f"{pushed} is not there after the push (HTTP 404)"
        else:
            problem = f"{pushed} answers {after} after the push, not {manifest.digest}"
        raise RegistryError(str(target), "verify the copy", problem)

    def _copy_contents(self, source: _Repo, target: _Repo, manifest: Manifest, depth: int = 0) -> int:
        """Everything `manifest` refers to (child manifests, blobs), not the manifest itself; the bytes sent."""
        if not manifest.is_index:
            return self._copy_blobs(source, target, manifest.blobs())
        if depth == MAX_INDEX_DEPTH:
            raise RegistryError(str(source), f"copy index {manifest.digest}", f"indexes nested more than {MAX_INDEX_DEPTH} deep")
        children = [
            manifests.get_manifest(source.registry, source.path, child.digest)
            for child in manifest.children()
            if manifests.head_digest(target.registry, target.path, child.digest, "check child manifest") != child.digest
        ]
        sent = self._copy_blobs(source, target, [blob for child in children for blob in child.blobs()])
        for child in children:
            if child.is_index:
                sent += self._copy_contents(source, target, child, depth + 1)
            manifests.put_manifest(target.registry, target.path, child.digest, child)
        return sent

    def _copy_blobs(self, source: _Repo, target: _Repo, descriptors: list[Descriptor]) -> int:
        unique = {d.digest: d for d in descriptors}
        claimed = [(d, *self._claim(source, target, d)) for d in unique.values()]
        sent = 0
        for descriptor, future, owner in claimed:
            landed_in, size = future.result()
            if owner:
                sent += size
            if landed_in != target.path:
                sent += self._place(source, target, descriptor, landed_in)
        return sent

    def _claim(self, source: _Repo, target: _Repo, descriptor: Descriptor) -> tuple[Future[tuple[str, int]], bool]:
        key = (target.registry.domain, descriptor.digest)
        with self._lock:
            future = self._blobs.get(key)
            if future is not None:
                return future, False
            future = self._pool.submit(self._copy_blob, source, target, descriptor)
            self._blobs[key] = future
            return future, True

    def _copy_blob(self, source: _Repo, target: _Repo, descriptor: Descriptor) -> tuple[str, int]:
        # An image config (a few kilobytes) is sent without asking first: a new image's config is new
        # too, and sending one the target already holds costs one request more than the question.
        if not _is_config(descriptor) and blobs.exists(target.registry, target.path, descriptor.digest):
            return target.path, 0
        upload = None
        if source.registry is target.registry and source.path != target.path:
            upload = blobs.mount(target.registry, target.path, descriptor.digest, source.path)
            if upload is None:
                return target.path, 0
        return target.path, self._transfer(source, target, descriptor, upload)

    def _place(self, source: _Repo, target: _Repo, descriptor: Descriptor, landed_in: str) -> int:
        """A blob this run already put in another repository of the target registry: mount it, else upload.
        (A mount of a blob the repository already holds succeeds too, so no existence check first.)"""
        upload = blobs.mount(target.registry, target.path, descriptor.digest, landed_in)
        return 0 if upload is None else self._transfer(source, target, descriptor, upload)

    def _transfer(self, source: _Repo, target: _Repo, descriptor: Descriptor, upload: blobs.Upload | None) -> int:
        """Copy the blob whole, again while it fails in a way worth trying again (after a timeout, once more),
        after the pause the registry asks for (`Retry-After`), if longer than the backoff."""
        tries, attempt = target.registry.retry.tries, 0
        while True:
            attempt += 1
            try:
                return self._transfer_once(source, target, descriptor, upload)
            except RetryableError as exc:
                tries = tries_after(exc, attempt, tries)
                if attempt == tries:
                    raise _gave_up(exc, attempt) from None
                upload = None  # the failed session was cancelled; the next try opens its own
                target.registry.pause_before_retry(exc.where, exc.step, exc.detail, attempt, tries, exc.retry_after)

    def _transfer_once(self, source: _Repo, target: _Repo, descriptor: Descriptor, upload: blobs.Upload | None) -> int:
        with self._uploads.open(target.registry, target.path, upload) as session:
            if _is_config(descriptor):
                content = blobs.transfer_small(source.registry, source.path, target.registry, target.path, descriptor,
                                               session)
                self._configs[descriptor.digest] = content
                sent = len(content)
            else:
                sent = blobs.transfer(source.registry, source.path, target.registry, target.path, descriptor,
                                      self.options.upload, session)
        log.debug("%s: copied blob %s (%d bytes)", target, descriptor.digest, sent)
        return sent

    def _platforms(self, repo: _Repo, manifest: Manifest, depth: int = 0) -> list[str]:
        if manifest.is_index:
            return self._index_platforms(repo, manifest, depth)
        config = manifest.config()
        if config is None or config.media_type not in IMAGE_CONFIG_TYPES:
            return []
        content = self._configs.get(config.digest)
        if content is None:
            content = blobs.read_small(repo.registry, repo.path, config)
        try:
            platform = manifests.platform_text(jsontext.loads(content))
        except ValueError:
            platform = None
        if platform is None:
            log.debug("%s: the image config %s names no platform", repo, config.digest)
            return []  # only shown, never checked: an image whose config says nothing still copies
        return [platform]

    def _index_platforms(self, repo: _Repo, index: Manifest, depth: int) -> list[str]:
        """The platforms of an index's images, those of an index nested in it included (read from `repo`)."""
        found: set[str] = set()
        for child in index.children():
            if child.media_type in INDEX_TYPES and depth < MAX_INDEX_DEPTH:
                nested = manifests.get_manifest(repo.registry, repo.path, child.digest)
                found.update(self._platforms(repo, nested, depth + 1))
            elif child.platform and child.platform != "unknown/unknown":
                found.add(child.platform)
        return sorted(found)

    def _copy_referrers(self, source: _Repo, target: _Repo, manifest: Manifest) -> int:
        """Cosign's `sha256-<hex>.sig/.att/.sbom` tags and what the OCI referrers API lists, for the image and its
        children, and in turn theirs (a signature on an SBOM), down to `MAX_REFERRER_DEPTH`."""
        tags = set(manifests.list_tags(source.registry, source.path))
        subjects = [manifest.digest] + [c.digest for c in manifest.children()]
        seen = set(subjects)
        sent = 0
        for _ in range(MAX_REFERRER_DEPTH):
            found: list[str] = []
            for subject in subjects:
                for reference in self._referrers_of(source, subject, tags):
                    copied, digest = self._copy_reference(source, target, reference)
                    sent += copied
                    if digest is not None and digest not in seen:
                        seen.add(digest)
                        found.append(digest)
            subjects = found
        return sent

    def _referrers_of(self, source: _Repo, subject: str, tags: set[str]) -> list[str]:
        cosign = [f"{subject.replace(':', '-')}.{suffix}" for suffix in COSIGN_SUFFIXES]
        listed = [referrer.digest for referrer in manifests.referrers(source.registry, source.path, subject)]
        return [tag for tag in cosign if tag in tags] + listed

    def _copy_reference(self, source: _Repo, target: _Repo, reference: str) -> tuple[int, str | None]:
        """Copy one referrer (a tag or a digest) unless the target has it; (bytes sent, its digest)."""
        digest = manifests.head_digest(source.registry, source.path, reference, f"look up {reference}")
        if digest is None or manifests.head_digest(target.registry, target.path, reference, f"check {reference}") == digest:
            return 0, digest
        manifest = manifests.get_manifest(source.registry, source.path, digest)
        sent = self._copy_contents(source, target, manifest)
        self._push_verified(target, reference, manifest)
        log.debug("%s: copied %s", target, reference)
        return sent, digest
