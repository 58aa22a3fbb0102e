"""`ensure_images`, the function `rehome mirror` calls with the plan's moves, and its output."""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from bot.mirror import (
    INTERRUPT_GRACE, Interrupted, MirrorImage, MirrorOptions, ensure_images, exit_code, human_bytes, render, to_json,
)
from tests.helpers import ROOT, logged
from tests.oci import images
from tests.oci.fixtures import FAST_RETRY, Loopback, stuck_download, unique_repo, when_downloading
from tests.oci.proxy import Fault
from tests.oci.servers import free_port


def test_ensure_images_reports_each_move_sorted(loopback: Loopback, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = loopback.upstream.host, loopback.target.host
    index, single = images.multi_platform(), images.image((1000,))
    src_index, src_single = unique_repo("b-index"), unique_repo("a-single")
    images.push(up, src_index, index, "2")
    images.push(up, src_single, single, "1")
    dst_index, dst_single = unique_repo("mirror"), unique_repo("mirror")
    moves = [
        (f"{up}/{src_index}:2", f"{down}/{dst_index}:2"),
        (f"{up}/{src_single}:1", f"{down}/{dst_single}:1"),
        (f"{up}/{src_single}:gone", f"{down}/{dst_single}:gone"),
    ]
    found = ensure_images(moves, MirrorOptions(jobs=2), pulls={moves[0][0]: 1200})
    assert found == [
        MirrorImage(moves[1][0], moves[1][1], single.digest, ("linux/amd64",), "copied",
                    sum(len(b.data) for b in single.blobs), None, None),
        MirrorImage(moves[2][0], moves[2][1], None, (), "failed", 0, None,
                    f"{up}/{src_single}: resolve tag gone: no such image (manifest unknown)"),
        MirrorImage(moves[0][0], moves[0][1], index.digest, ("linux/amd64", "linux/arm/v7", "linux/arm64/v8"),
                    "copied", sum(len(b.data) for b in index.all_blobs()), 1200, None),
    ]
    assert [image.verified_digest for image in found] == [single.digest, None, index.digest]
    assert exit_code(found) == 1
    again = ensure_images(moves[:2], MirrorOptions(dry_run=True))
    assert [(i.status, i.bytes) for i in again] == [("present", 0), ("present", 0)]
    assert exit_code(again) == 0
    # The source has no such tag: the dry run says so as the real run did, a failure.
    gone = ensure_images(moves[2:], MirrorOptions(dry_run=True))
    assert (gone, exit_code(gone)) == ([found[1]], 1)


def test_a_dry_run_that_cannot_reach_a_source_says_unknown_which_is_not_a_failure(
        loopback: Loopback, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    host = f"127.0.0.1:{free_port()}"
    move = (f"{host}/app:1", f"{loopback.target.host}/{unique_repo('mirror')}:1")
    found = ensure_images([move], MirrorOptions(dry_run=True, retry=FAST_RETRY))
    refused = "connection failed after 4 tries (ConnectError: [Errno 111] Connection refused)"
    assert (found, exit_code(found)) == ([MirrorImage(*move, None, (), "unknown", 0, None,
                                                      f"{host}/app: resolve tag 1: {refused}")], 0)


def test_a_source_registry_that_gave_no_answer_fails_its_other_images_at_once(
        loopback: Loopback, tmp_path: Path, monkeypatch) -> None:
    """--jobs 1 looks up four images at once: those in flight stop trying once one of them has given
    up; those that start later do not ask at all."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    host, dst = f"127.0.0.1:{free_port()}", f"{loopback.target.host}/{unique_repo('mirror')}"
    moves = [(f"{host}/app:{tag}", f"{dst}:{tag}") for tag in "123456"]
    found = ensure_images(moves, MirrorOptions(jobs=1, retry=FAST_RETRY))
    refused = "connection failed after 4 tries (ConnectError: [Errno 111] Connection refused)"
    # Each of the first four: the one that gave up, one in flight then, or one that had not asked yet.
    in_flight = re.compile(rf"(gave up after (?:1 try|[23] tries): the registry gave no answer to another request in this "
                           rf"run: |not asked: the registry gave no answer earlier in this run: )?{re.escape(refused)}")
    first_four, last_two = found[:4], found[4:]
    assert [(i.source, i.status) for i in found] == [(source, "failed") for source, _ in moves]
    assert [i.error for i in last_two] == [
        f"{host}/app: resolve tag {tag}: not asked: the registry gave no answer earlier in this run: {refused}"
        for tag in "56"]
    for tag, image in zip("1234", first_four):
        assert image.error is not None and image.error.startswith(f"{host}/app: resolve tag {tag}: ")
        assert in_flight.fullmatch(image.error.partition(f"tag {tag}: ")[2]), image.error
    assert any(image.error == f"{host}/app: resolve tag {i}: {refused}" for i, image in zip("1234", first_four))


def test_json_has_the_contract_fields_in_order() -> None:
    image = MirrorImage("nginx:1.27", "r.example/m/nginx:1.27", "sha256:" + "a" * 64, ("linux/amd64",), "copied",
                        2048, 7, None)
    assert to_json([image]) == {"version": 1, "images": [{
        "source": "nginx:1.27", "target": "r.example/m/nginx:1.27", "digest": "sha256:" + "a" * 64,
        "platforms": ["linux/amd64"], "status": "copied", "bytes": 2048, "pulls": 7, "error": None}]}
    assert list(image.to_json()) == ["source", "target", "digest", "platforms", "status", "bytes", "pulls", "error"]
    differs = MirrorImage("nginx:1.27", "r.example/m/nginx:1.27", "sha256:" + "c" * 64, (), "differs", 0, None,
                          "r.example/m/nginx:1.27 holds sha256:dd; the source is now sha256:cc", "sha256:" + "d" * 64)
    assert list(differs.to_json()) == list(image.to_json())  # what the mirror holds is in `error`, not a new field


def test_table_lists_images_then_problems() -> None:
    found = [
        MirrorImage("alpine:3.20", "m/alpine:3.20", "sha256:" + "b" * 64, ("linux/amd64", "linux/arm64"),
                    "present", 0, None, None),
        MirrorImage("nginx:1.27", "m/nginx:1.27", "sha256:" + "c" * 64, (), "differs", 0, 12,
                    "m/nginx:1.27 holds sha256:dd; the source is now sha256:cc", "sha256:" + "d" * 64),
    ]
    assert render(found) == "\n".join([
        "STATUS   SOURCE       TARGET         DIGEST                                PLATFORMS                SENT  PULLS",
        "-------  -----------  -------------  ------------------------------------  -----------------------  ----  -----",
        "present  alpine:3.20  m/alpine:3.20  bbbbbbbbbbbb                          linux/amd64,linux/arm64  0 B",
        "differs  nginx:1.27   m/nginx:1.27   dddddddddddd (upstream cccccccccccc)                           0 B   12",
        "differs: nginx:1.27: m/nginx:1.27 holds sha256:dd; the source is now sha256:cc",
    ])


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 999, 1000, 1_500_000, 3_200_000_000, 5_000_000_000_000)] == [
        "0 B", "999 B", "1.0 kB", "1.5 MB", "3.2 GB", "5000.0 GB"]


def test_options_merge_flags_and_rehome_yaml(monkeypatch) -> None:
    import argparse
    import io

    from bot.mirror import add_copy_arguments, add_registry_arguments, options_from_args
    from bot.registry import Secret

    parser = argparse.ArgumentParser()
    add_copy_arguments(parser)
    add_registry_arguments(parser)
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    args = parser.parse_args(["--jobs", "3", "--no-referrers", "--insecure-registry", "lab:5000",
                              "--username", "bot", "--password-stdin"])
    options = options_from_args(args, ["registry.lan:5000"], "r.example")
    assert (options.jobs, options.referrers, options.dry_run, options.refresh) == (3, False, False, False)
    assert options.insecure_registries == ("registry.lan:5000", "lab:5000")
    [(host, credential)] = options.credentials.items()
    assert (host, credential.username, credential.password, credential.source) == (
        "r.example", "bot", Secret("s3cret"), "--username/--password-stdin")


@pytest.mark.parametrize(("remaining", "said"), [
    ("87", "87 pulls left in the rate-limit window"),
    ("3", "only 3 pulls left in the rate-limit window"),  # warned as the run goes, not said again at its end
])
def test_pull_quota_is_reported_once(proxies: Loopback, tmp_path: Path, monkeypatch, caplog, remaining: str,
                                     said: str) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="rehome")
    monkeypatch.setattr(logging.getLogger("rehome"), "propagate", True)  # the CLI turns it off
    monkeypatch.setattr(logging.getLogger("rehome"), "handlers", [])  # and installs its own handler
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for method in ("HEAD", "GET"):  # Docker Hub sends it on every manifest answer
        proxies.upstream_proxy.add_headers.append((method, "/manifests/", {"ratelimit-remaining": f"{remaining};w=21600"}))
    src = unique_repo("upstream")
    images.push(proxies.upstream.host, src, images.image((10,)), "v1")
    [image] = ensure_images([(f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{unique_repo('m')}:v1")])
    assert image.status == "copied"
    assert caplog.messages == [f"{proxies.upstream_proxy.host}: {said}"]


def test_images_sharing_a_base_cost_the_target_only_the_needed_requests(
    proxies: Loopback, tmp_path: Path, monkeypatch
) -> None:
    """The benchmark's scenario (b) in small: each repository gets the shared base by one mount, and each
    image costs the target one check, a check/start/upload per own layer, a start/upload of its config,
    the push and the verification."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    base = images.random_layer(30_000)
    many = [images.image((2000,), shared=(base,)) for _ in range(3)]
    sources, targets = [unique_repo("upstream") for _ in many], [unique_repo("mirror") for _ in many]
    for src, image in zip(sources, many):
        images.push(proxies.upstream.host, src, image, "v1")
    moves = [(f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target_proxy.host}/{dst}:v1")
             for src, dst in zip(sources, targets)]
    found = ensure_images(moves, MirrorOptions(jobs=4))
    assert [(i.status, i.platforms, i.error) for i in found] == [("copied", ("linux/amd64",), None)] * 3
    names = sorted({name for dst in targets for name in (dst, quote(dst, safe=""))}, key=len, reverse=True)
    repo = re.compile("|".join(map(re.escape, names)))
    session = re.compile(r"/uploads/[^/?]+\?_state=[^&]+&")
    seen = Counter(session.sub("/uploads/<session>?", repo.sub("<repo>", f"{method} {path}"))
                   for method, path in proxies.target_proxy.requests)
    blobs = [base] + [blob for image in many for blob in image.blobs if blob != base]
    configs = [image.blobs[0] for image in many]
    assert seen == Counter({
        "GET /v2/<repo>/manifests/v1": 3,  # each image's check
        "HEAD /v2/<repo>/manifests/v1": 3,  # and its verification
        "PUT /v2/<repo>/manifests/v1": 3,
        **{f"HEAD /v2/<repo>/blobs/{blob.digest}": 1 for blob in blobs if blob not in configs},
        "POST /v2/<repo>/blobs/uploads/": len(blobs),
        **{f"PUT /v2/<repo>/blobs/uploads/<session>?digest={quote(blob.digest)}": 1 for blob in blobs},
        f"POST /v2/<repo>/blobs/uploads/?mount={quote(base.digest, safe='')}&from=<repo>": 2,
    })
    assert proxies.upstream_proxy.count("GET", "/blobs/") == len(blobs)


def test_images_waiting_for_a_layer_another_image_copies_do_not_hold_up_the_rest(
        proxies: Loopback, tmp_path: Path, monkeypatch) -> None:
    """--jobs 2: the first two images share a layer whose download goes silent; the third, which shares
    nothing, is copied in the meantime rather than after it."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    shared = images.random_layer(300_000)
    pictures = [images.image((1000,), shared=(shared,)), images.image((1000,), shared=(shared,)), images.image((1000,))]
    moves, targets = [], []
    for picture in pictures:
        src, dst = unique_repo("upstream"), unique_repo("mirror")
        images.push(proxies.upstream.host, src, picture, "v1")
        moves.append((f"{proxies.upstream_proxy.host}/{src}:v1", f"{proxies.target.host}/{dst}:v1"))
        targets.append(dst)
    proxies.upstream_proxy.faults.append(Fault("GET", f"/blobs/{shared.digest}", "hang"))
    shared_downloads_when_third_landed: list[int] = []

    def release_when_the_third_lands() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if httpx.get(f"http://{proxies.target.host}/v2/{targets[2]}/tags/list").status_code == 200:
                shared_downloads_when_third_landed.append(proxies.upstream_proxy.count("GET", shared.digest))
                break
            time.sleep(0.05)
        proxies.upstream_proxy.reset()  # the silent download breaks off; its retry completes

    watcher = threading.Thread(target=release_when_the_third_lands, daemon=True)
    watcher.start()
    found = ensure_images(moves, MirrorOptions(jobs=2, retry=FAST_RETRY))
    watcher.join()
    by_source = {image.source: (image.status, image.digest) for image in found}
    assert [by_source[source] for source, _ in moves] == [("copied", picture.digest) for picture in pictures]
    assert shared_downloads_when_third_landed == [1]  # landed while the first download of the layer hung


def test_ctrl_c_stops_the_copies_and_returns_what_was_done(proxies: Loopback, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    source, target, dst = stuck_download(proxies, "silent")
    started = time.monotonic()
    when_downloading(proxies, lambda: os.kill(os.getpid(), signal.SIGINT), proxies.upstream_proxy.faults[-1].path)
    with logged(logging.INFO) as messages:
        with pytest.raises(Interrupted) as stopped:
            ensure_images([(source, target)], MirrorOptions(jobs=2))
        assert time.monotonic() - started < INTERRUPT_GRACE + 10
        assert proxies.target.upload_sessions(dst) == {}  # the one the stuck copy opened was cancelled
        proxies.upstream_proxy.reset()  # the silent download ends: its copy must not go on, nor be tried again
        for thread in threading.enumerate():
            if thread.name.startswith("rehome-blob"):
                thread.join(timeout=30)
    assert [m for m in messages if "trying again" in m] == []
    assert httpx.head(f"http://{proxies.target.host}/v2/{dst}/manifests/v1").status_code == 404
    [image] = stopped.value.images
    # Stopped where it was: waiting on the silent download.
    assert (image.source, image.target, image.status, image.bytes) == (source, target, "failed", 0)
    assert image.error is not None and image.error.endswith("interrupted before it finished")
    assert str(stopped.value) == ("interrupted: 0 of 1 images are verified in the mirror; no copy went on after "
                                  "the interrupt (run the command again to finish)")
    assert stopped.value.exit_code == 130


WAITING = (f"interrupted: waiting up to {INTERRUPT_GRACE:g}s for the copies under way to stop (Ctrl-C again not to "
           "wait)\n")


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_on_the_command_exits_at_once_with_the_table(proxies: Loopback, tmp_path: Path, presses: int) -> None:
    """A real Ctrl-C (or two) to a real process whose only copy waits on a registry that went silent: it does
    not wait for the read timeout (60 s), prints what it did, and pushes nothing. Each press lands where it is
    meant to, however slow the machine: the first while the download waits for an answer that never comes
    (so the copy cannot finish on its own first), the second once the process says it waits for that copy."""
    source, target, dst = stuck_download(proxies, "silent")
    stuck_layer = proxies.upstream_proxy.faults[-1].path  # not the config: its download ends on its own
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "copy", source, target],
        env={**os.environ, "PYTHONPATH": str(ROOT), "DOCKER_CONFIG": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    errors: list[str] = []
    waiting = threading.Event()

    def read_errors() -> None:
        for line in process.stderr:
            errors.append(line)
            if line == WAITING:
                waiting.set()

    reader = threading.Thread(target=read_errors, daemon=True)
    reader.start()
    try:
        when_downloading(proxies, lambda: os.killpg(process.pid, signal.SIGINT), stuck_layer).join(timeout=40)
        assert waiting.wait(timeout=30), "".join(errors)
        started = time.monotonic()
        if presses == 2:
            os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=10)
        out, err = process.stdout.read(), "".join(errors)
    finally:
        process.kill()
        process.wait()
    assert time.monotonic() - started < INTERRUPT_GRACE + 10
    assert err.count(WAITING) == 1
    assert process.returncode == 130, err
    assert out, err
    problem = out.splitlines()[-1]
    assert problem.startswith(f"failed: {source}: ") and problem.endswith("interrupted before it finished"), out
    assert err.splitlines()[-1] == ("rehome: error: interrupted: 0 of 1 images are verified in the mirror; no copy "
                                    "went on after the interrupt (run the command again to finish)")
    assert httpx.head(f"http://{proxies.target.host}/v2/{dst}/manifests/v1").status_code == 404
    assert proxies.target.upload_sessions(dst) == {}
