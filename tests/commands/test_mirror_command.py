"""`rehome mirror PATH`: every planned move ensured in the mirror, with pull counts from the plan."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli, write_tree
from tests.oci import images
from tests.oci.fixtures import Loopback, unique_repo
from tests.oci.proxy import Answer


def test_mirror_copies_every_move_then_finds_them_present(loopback: Loopback, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down = loopback.upstream.host, loopback.target.host
    web, index = unique_repo("m-web"), unique_repo("m-multi")
    single, multi = images.image((2048,)), images.multi_platform()
    images.push(up, web, single, "1.0")
    images.push(up, index, multi, "3")
    repo = write_tree(tmp_path / "repo", {
        "Dockerfile": f"FROM {up}/{web}:1.0\n",
        "pod.yaml": f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: {up}/{index}:3\n    - image: {up}/{web}:missing\n",
    })
    pulls = tmp_path / "pulls.csv"
    pulls.write_text(f"imageName,numberOfPulls\n{up}/{web}:1.0,42\n{up}/{index}:3,-1\n")
    dest = f"{down}/mirror"
    encoded = up.replace(":", "__")
    argv = ["mirror", str(repo), "--to", dest, "--internal", down, "--pulls", str(pulls), "--format", "json"]
    code, out, err = run_cli(capsys, *argv)
    result = json.loads(out)
    assert code == 1  # one image failed; the others still completed
    assert err.splitlines()[0] == ("pulls.csv (CSV of the guide's query (imageName,numberOfPulls)): "
                                   "malformed entries skipped: 1 (at 3)")
    assert [(i["source"], i["target"], i["status"], i["digest"], i["platforms"], i["pulls"]) for i in result["images"]] == [
        (f"{up}/{index}:3", f"{dest}/{encoded}/{index}:3", "copied", multi.digest,
         ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"], None),
        (f"{up}/{web}:1.0", f"{dest}/{encoded}/{web}:1.0", "copied", single.digest, ["linux/amd64"], 42),
        (f"{up}/{web}:missing", f"{dest}/{encoded}/{web}:missing", "failed", None, [], None),
    ]
    assert result["images"][2]["error"] == f"{up}/{web}: resolve tag missing: no such image (manifest unknown)"
    # The source has no tag `missing`: a dry run fails it as the real run did, with the same reason, exit 1.
    code, out, _ = run_cli(capsys, *argv, "--dry-run")
    dry = json.loads(out)
    assert code == 1
    assert [i["status"] for i in dry["images"]] == ["present", "present", "failed"]
    assert dry["images"][2] == result["images"][2]
    code, out, _ = run_cli(capsys, *argv[:-2], "--dry-run")
    assert code == 1
    assert [line.split()[0] for line in out.splitlines()[2:5]] == ["present", "present", "failed"]
    assert out.splitlines()[5:] == [f"failed: {up}/{web}:missing: resolve tag missing: no such image (manifest unknown)"]


@pytest.mark.parametrize(("at", "fix"), [
    ("destination", "check the --to host and port: no registry answers there"),
    ("source", "check the image's host name and port: no registry answers there"),
])
def test_a_dry_run_with_a_web_server_says_it_is_no_registry_and_which_address_to_check(
        proxies: Loopback, tmp_path: Path, capsys, monkeypatch, at: str, fix: str) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    up, down, src = proxies.upstream_proxy.host, proxies.target_proxy.host, unique_repo("m-web")
    images.push(proxies.upstream.host, src, images.image((100,)), "1.0")
    web = {"destination": proxies.target_proxy, "source": proxies.upstream_proxy}[at]
    web.routes.append(lambda method, path: Answer(404, {"Content-Type": "text/html"}, b"Not Found"))
    repo = write_tree(tmp_path / "repo", {"Dockerfile": f"FROM {up}/{src}:1.0\n"})
    code, out, _ = run_cli(capsys, "mirror", str(repo), "--to", f"{down}/mirror", "--dry-run", "--format", "json")
    target = f"{down}/mirror/{up.replace(':', '__')}/{src}"
    where, step = {"destination": (target, "check target"), "source": (f"{up}/{src}", "resolve tag 1.0")}[at]
    assert (code, json.loads(out)) == (1, {"version": 1, "images": [{
        "source": f"{up}/{src}:1.0", "target": f"{target}:1.0", "digest": None, "platforms": [], "status": "failed",
        "bytes": 0, "pulls": None,
        "error": f"{where}: {step}: {web.host} does not speak the registry API: http://{web.host}/v2/ answered HTTP "
                 f"404, not as a registry does\nhint: {fix}"}]})


def test_pin_digest_is_not_offered_as_the_mirror_writes_no_reference(tmp_path: Path, capsys) -> None:
    repo = write_tree(tmp_path / "repo", {"Dockerfile": "FROM nginx:1.27\n"})
    code, out, err = run_cli(capsys, "mirror", str(repo), "--to", "127.0.0.1:1/mirror", "--pin-digest")
    assert (code, out, err.splitlines()[-1]) == (2, "", "rehome: error: unrecognized arguments: --pin-digest")
