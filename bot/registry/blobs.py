"""Blobs: existence checks, cross-repository mounts, and streamed, verified uploads."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator

import httpx

from bot.errors import RehomeError
from bot.output import plural
from bot.registry.client import Registry, retryable, transport_failure, tries_after
from bot.registry.errors import RegistryError, RetryableError, TimedOut
from bot.registry.manifests import Descriptor

log = logging.getLogger("rehome.registry")

SMALL_BLOB_MAX = 4 << 20  # an image config larger than this is not expected
# Seconds a cancel may take: it runs after a failure or an interrupt, and must not hold up either.
CANCEL_TIMEOUT = 2.0
# Blobs are compressed already, and their digest is of the bytes as stored: ask for them as they are.
RAW_BYTES = {"Accept-Encoding": "identity"}


@dataclasses.dataclass(frozen=True)
class UploadSettings:
    """Blobs up to `monolithic_max` bytes go in one streamed PUT; larger ones in PATCH chunks."""

    monolithic_max: int = 256 << 20
    chunk_size: int = 32 << 20


def _where(registry: Registry, repo: str) -> str:
    return f"{registry.domain}/{repo}"


def exists(registry: Registry, repo: str, digest: str) -> bool:
    step = f"check blob {digest}"
    response = registry.request("HEAD", f"/v2/{repo}/blobs/{digest}", repo=repo, step=step)
    if response.status_code == 200:
        return True
    if response.status_code == 404:
        return False
    raise registry.fail(repo, step, response)


@dataclasses.dataclass(frozen=True)
class Upload:
    location: str
    min_chunk: int = 0


def _upload_from(registry: Registry, repo: str, step: str, response: httpx.Response) -> Upload:
    location = response.headers.get("Location")
    if not location:
        raise RegistryError(_where(registry, repo), step, "the registry gave no upload Location")
    min_chunk = response.headers.get("OCI-Chunk-Min-Length", "0")
    return Upload(registry.url(location), int(min_chunk) if min_chunk.isdigit() else 0)


def start_upload(registry: Registry, repo: str) -> Upload:
    step = "start blob upload"
    # Retried: a session orphaned by a lost answer is harmless; registries expire unused sessions.
    response = registry.request("POST", f"/v2/{repo}/blobs/uploads/", repo=repo, step=step, actions=("pull", "push"))
    if response.status_code != 202:
        raise registry.fail(repo, step, response)
    return _upload_from(registry, repo, step, response)


def mount(registry: Registry, repo: str, digest: str, from_repo: str) -> Upload | None:
    """Mount `digest` from `from_repo`; None when mounted, else the upload session the registry opened instead."""
    step = f"mount blob {digest} from {from_repo}"
    response = registry.request(
        "POST", f"/v2/{repo}/blobs/uploads/", repo=repo, step=step, actions=("pull", "push"),
        extra_scopes=(f"repository:{from_repo}:pull",), params={"mount": digest, "from": from_repo},
    )
    if response.status_code == 201:
        return None
    if response.status_code == 202:
        return _upload_from(registry, repo, step, response)
    raise registry.fail(repo, step, response)


def cancel_upload(registry: Registry, repo: str, upload: Upload) -> None:
    """One DELETE, even after an interrupt, within `CANCEL_TIMEOUT`. Best effort: the session is dead weight
    either way, and one the registry does not let go is left to its upload purging."""
    step = "cancel blob upload"
    try:
        response = registry.request("DELETE", upload.location, repo=repo, step=step, actions=("pull", "push"),
                                    cleanup_within=CANCEL_TIMEOUT)
    except RehomeError as exc:
        log.debug("%s", exc)
        return
    if not response.is_success:
        log.debug("%s", registry.fail(repo, step, response))


class UploadSessions:
    """The upload sessions a run opened and has not finished. Each is cancelled once: by the copy that failed,
    or, after an interrupt, by `cancel_all` for the copies still blocked on the network."""

    def __init__(self) -> None:
        self._open: dict[Upload, tuple[Registry, str]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def open(self, target: Registry, repo: str, upload: Upload | None) -> Iterator[Upload]:
        """The upload session given (a refused mount opens one), else a new one; cancelled unless the block
        completes it."""
        upload = upload or start_upload(target, repo)
        with self._lock:
            self._open[upload] = (target, repo)
        try:
            yield upload
        except BaseException:
            self._cancel(upload)
            raise
        with self._lock:
            self._open.pop(upload, None)

    def cancel_all(self) -> None:
        """Cancel every session still open, all at once: the whole takes `CANCEL_TIMEOUT` at most."""
        with self._lock:
            left = list(self._open)
        cancels = [threading.Thread(target=self._cancel, args=(upload,), daemon=True) for upload in left]
        for cancel in cancels:
            cancel.start()
        deadline = time.monotonic() + CANCEL_TIMEOUT
        for cancel in cancels:
            cancel.join(max(0.0, deadline - time.monotonic()))

    def _cancel(self, upload: Upload) -> None:
        with self._lock:
            owner = self._open.pop(upload, None)
        if owner is not None:
            cancel_upload(*owner, upload)


def with_digest(location: str, digest: str) -> str:
    """Add `digest=` to an upload URL, keeping its own query (`_state` and the like)."""
    return str(httpx.URL(location).copy_add_param("digest", digest))


class Verifier:
    """Passes chunks through while hashing them; holds the last chunk back until size and sha256 check out.

    An upload fed from it therefore never completes with wrong bytes: the check fails before the end is sent.
    """

    def __init__(self, chunks: Iterable[bytes], descriptor: Descriptor, where: str) -> None:
        if not descriptor.digest.startswith("sha256:"):
            raise RegistryError(where, f"copy blob {descriptor.digest}", "only sha256 digests are supported")
        self._chunks = chunks
        self._descriptor = descriptor
        self._where = where
        self.received = 0

    def __iter__(self) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        expected = self._descriptor
        pending = b""
        for chunk in self._chunks:
            if not chunk:
                continue
            hasher.update(chunk)
            self.received += len(chunk)
            if self.received > expected.size:
                raise self._mismatch(f"more than the {expected.size} bytes announced")
            if pending:
                yield pending
            pending = chunk
        digest = "sha256:" + hasher.hexdigest()
        if self.received != expected.size:
            raise self._mismatch(f"{self.received} bytes received, {expected.size} announced")
        if digest != expected.digest:
            raise self._mismatch(f"the bytes hash to {digest}")
        if pending:
            yield pending

    def _mismatch(self, detail: str) -> RetryableError:
        return RetryableError(self._where, f"copy blob {self._descriptor.digest}", f"content does not match: {detail}")


def _regroup(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def put_monolithic(
    registry: Registry, repo: str, upload: Upload, body: bytes | Iterable[bytes], descriptor: Descriptor
) -> None:
    step = f"upload blob {descriptor.digest}"
    # Not retried on the same session, which a failed PUT may have closed: the caller starts a fresh one.
    response = registry.request(
        "PUT", with_digest(upload.location, descriptor.digest), repo=repo, step=step, actions=("pull", "push"),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(descriptor.size)},
        content=body, retry=False,
    )
    if response.status_code != 201:
        raise registry.fail(repo, step, response)


def put_chunked(
    registry: Registry, repo: str, upload: Upload, body: Iterable[bytes], descriptor: Descriptor, chunk_size: int
) -> None:
    """PATCH chunks of at least the registry's minimum; a broken chunk resumes from the offset the registry reports."""
    step = f"upload blob {descriptor.digest}"
    location, offset = upload.location, 0
    for chunk in _regroup(body, max(chunk_size, upload.min_chunk)):
        location, offset = _patch_with_resume(registry, repo, location, chunk, offset, step)
    response = registry.request(
        "PUT", with_digest(location, descriptor.digest), repo=repo, step=step, actions=("pull", "push"),
        headers={"Content-Type": "application/octet-stream"}, content=b"", retry=False,
    )
    if response.status_code != 201:
        raise registry.fail(repo, step, response)


def _patch_with_resume(registry: Registry, repo: str, location: str, chunk: bytes, start: int, step: str) -> tuple[str, int]:
    end = start + len(chunk)
    offset = start
    tries, attempt = registry.retry.tries, 0
    timed_out: TimedOut | None = None
    while attempt < tries:
        attempt += 1
        piece = chunk[offset - start:]
        try:
            response = registry.request(
                "PATCH", location, repo=repo, step=step, actions=("pull", "push"), retry=False,
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{end - 1}",
                         "Content-Length": str(len(piece))},
                content=piece,
            )
            if response.status_code == 202:
                return registry.url(response.headers.get("Location", location)), end
            refusal = registry.fail(repo, step, response)
            if not isinstance(refusal, RetryableError):
                raise refusal
            error = refusal
        except RetryableError as exc:
            error = exc
        tries = tries_after(error, attempt, tries)
        timed_out = error if isinstance(error, TimedOut) else timed_out
        log.info("%s: chunk %d-%d broke (%s); asking where to resume", _where(registry, repo), offset, end - 1, error.detail)
        registry.sleep(registry.retry.delay(attempt, error.retry_after))
        location, offset = upload_status(registry, repo, location)
        if not start <= offset <= end:
            raise RetryableError(_where(registry, repo), step, f"cannot resume: the registry holds {offset} bytes, the chunk starts at {start}")
        if offset == end:
            return location, end
    # A chunk that timed out on any try makes the whole blob worth one more try at most, like the chunk itself.
    detail = f"chunk {start}-{end - 1} failed {plural(attempt, 'time')}: {error.detail}"
    if timed_out is not None and timed_out is not error:
        detail += f" (and {timed_out.detail} before)"
    raise (RetryableError if timed_out is None else TimedOut)(_where(registry, repo), step, detail)


def upload_status(registry: Registry, repo: str, location: str) -> tuple[str, int]:
    """The upload's current Location and how many bytes the registry holds (from `Range: 0-<last>`)."""
    step = "get blob upload status"
    response = registry.request("GET", location, repo=repo, step=step, actions=("pull", "push"))
    if response.status_code not in (202, 204):
        raise RetryableError(_where(registry, repo), step, f"cannot resume the upload (HTTP {response.status_code})")
    last = response.headers.get("Range", "0-0").rpartition("-")[2]
    # `0-0` means either nothing or one byte; chunks are never one byte, so it means nothing.
    held = int(last) + 1 if last.isdigit() and int(last) > 0 else 0
    return registry.url(response.headers.get("Location", location)), held


def _downloaded(response: httpx.Response, registry: Registry, where: str, step: str) -> Iterator[bytes]:
    # Chunks as the network gives them: re-chunking to a fixed size costs more than it saves. The bytes as
    # sent (not decoded): a blob is checked against its digest as stored, whatever encoding a server added.
    try:
        for chunk in response.iter_raw():
            registry.check_cancelled(where, step)
            yield chunk
    except httpx.TransportError as exc:
        what, why = transport_failure(exc)
        raise retryable(exc, where, step, f"{what} mid-blob ({why})") from None


def transfer(
    source: Registry, source_repo: str, target: Registry, target_repo: str, descriptor: Descriptor,
    settings: UploadSettings, upload: Upload,
) -> int:
    """Stream one blob from source to target in the open `upload`, verified on the way; the number of bytes sent."""
    step = f"download blob {descriptor.digest}"
    response = source.request("GET", f"/v2/{source_repo}/blobs/{descriptor.digest}", repo=source_repo, step=step,
                              headers=RAW_BYTES, stream=True)
    try:
        if response.status_code != 200:
            raise source.fail(source_repo, step, response)
        chunks = _downloaded(response, source, _where(source, source_repo), step)
        verified = Verifier(chunks, descriptor, _where(source, source_repo))
        if descriptor.size <= settings.monolithic_max:
            put_monolithic(target, target_repo, upload, verified, descriptor)
        else:
            put_chunked(target, target_repo, upload, verified, descriptor, settings.chunk_size)
    finally:
        response.close()
    return descriptor.size


def transfer_small(
    source: Registry, source_repo: str, target: Registry, target_repo: str, descriptor: Descriptor, upload: Upload,
) -> bytes:
    """Copy a small blob (an image config) through memory into the open `upload`, verified; its bytes, for the
    caller to keep."""
    content = read_small(source, source_repo, descriptor)
    put_monolithic(target, target_repo, upload, content, descriptor)
    return content


def read_small(registry: Registry, repo: str, descriptor: Descriptor, limit: int = SMALL_BLOB_MAX) -> bytes:
    """A small blob (an image config) in memory, checked against its digest."""
    step = f"read blob {descriptor.digest}"
    if descriptor.size > limit:
        raise RegistryError(_where(registry, repo), step, f"{descriptor.size} bytes is more than the {limit} expected")
    response = registry.request("GET", f"/v2/{repo}/blobs/{descriptor.digest}", repo=repo, step=step, headers=RAW_BYTES,
                                stream=True)
    try:
        if response.status_code != 200:
            raise registry.fail(repo, step, response)
        return b"".join(Verifier(_downloaded(response, registry, _where(registry, repo), step), descriptor,
                                 _where(registry, repo)))
    finally:
        response.close()
