"""`rehome copy SRC DST` end to end through the command line, against loopback registries."""
from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from bot.cli import main
from tests.oci import images
from tests.oci.fixtures import BASIC_USER, CANARY_PASSWORD, Loopback, unique_repo


@pytest.fixture(autouse=True)
def no_docker_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.chdir(tmp_path)


def test_copy_prints_json(loopback: Loopback, capsys: pytest.CaptureFixture[str]) -> None:
    image = images.image((1000,))
    src, dst = unique_repo("upstream"), unique_repo("mirror")
    images.push(loopback.upstream.host, src, image, "1.0")
    source, target = f"{loopback.upstream.host}/{src}:1.0", f"{loopback.target.host}/{dst}"
    assert main(["copy", source, target, "--format", "json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"version": 1, "images": [{
        "source": source, "target": target, "digest": image.digest, "platforms": ["linux/amd64"],
        "status": "copied", "bytes": sum(len(b.data) for b in image.blobs), "pulls": None, "error": None}]}
    assert out.err == ""
    # The target took the source's tag; a second run finds it present.
    assert main(["copy", source, f"{target}:1.0"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[2].split() == ["present", source, f"{target}:1.0", image.digest[7:19], "linux/amd64", "0", "B"]


def test_copy_failure_exits_1_and_says_why(loopback: Loopback, capsys: pytest.CaptureFixture[str]) -> None:
    src = unique_repo("upstream")
    source, target = f"{loopback.upstream.host}/{src}:nope", f"{loopback.target.host}/{unique_repo('mirror')}"
    assert main(["copy", source, target, "--format", "json"]) == 1
    [image] = json.loads(capsys.readouterr().out)["images"]
    assert (image["status"], image["error"]) == ("failed", f"{loopback.upstream.host}/{src}: resolve tag nope: no such image (manifest unknown)")


def test_a_copy_failure_names_the_image_once(loopback: Loopback, capsys: pytest.CaptureFixture[str]) -> None:
    source = f"{loopback.upstream.host}/{unique_repo('upstream')}:nope"
    assert main(["copy", source, f"{loopback.target.host}/{unique_repo('mirror')}"]) == 1
    assert capsys.readouterr().out.splitlines()[3:] == [
        f"failed: {source}: resolve tag nope: no such image (manifest unknown)"]


def test_a_source_that_refuses_anonymous_pulls_says_to_log_in_with_docker(loopback: Loopback,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    src, host = unique_repo("private"), loopback.basic.host
    target = f"{loopback.target.host}/{unique_repo('mirror')}"
    assert main(["copy", f"{host}/{src}:v1", target, "--format", "json"]) == 1
    [image] = json.loads(capsys.readouterr().out)["images"]
    assert (image["status"], image["error"]) == ("failed", (
        f"{host}/{src}: resolve tag v1: HTTP 401 (UNAUTHORIZED: authentication required)\n"
        f"hint: the credentials used: anonymous (no credentials found); log in with `docker login {host}`: a source's "
        "credentials come from Docker's config.json (`auths`, `credHelpers`, `credsStore`), never from "
        "--username/--password-stdin"))


@pytest.mark.parametrize("argv", [
    ["copy", "Not A Ref", "r.example/x"],
    ["copy", "nginx", "r.example/x", "--jobs", "0"],
    ["copy", "nginx", "r.example/x", "--username", "u"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("rehome: error: ")


@pytest.mark.parametrize(("argv", "message"), [
    (["nginx:1.27", "127.0.0.1:5000"], "DST '127.0.0.1:5000': 127.0.0.1:5000 names a registry but no repository; add a repository path, e.g. 127.0.0.1:5000/NAME"),
    (["nginx:1.27", "myreg.example:5000"], "DST 'myreg.example:5000': myreg.example:5000 names a registry but no repository; add a repository path, e.g. myreg.example:5000/NAME"),
    (["nginx:1.27", "localhost"], "DST 'localhost': localhost names a registry but no repository; add a repository path, e.g. localhost/NAME"),
    (["localhost:5000", "r.example/x"], "SRC 'localhost:5000': localhost:5000 names a registry but no repository; add a repository path, e.g. localhost:5000/NAME"),
])
def test_a_registry_host_alone_is_not_read_as_a_docker_hub_image(argv: list[str], message: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copy", *argv]) == 2
    assert capsys.readouterr() == ("", f"rehome: error: {message}\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["127.0.0.1:99999/app:1", "r.example/x"], "SRC '127.0.0.1:99999/app:1': invalid reference format: registry port "
                                               "99999 in '127.0.0.1:99999' is out of range: a port is 1 to 65535"),
    (["nginx:-1", "r.example/x"], "SRC 'nginx:-1': invalid reference format: tag '-1' must start with a letter, a "
                                  "digit or '_'"),
    (["nginx", "r.example/x@sha256:zz"], "DST 'r.example/x@sha256:zz': invalid digest 'sha256:zz': 'z' is not a hex "
                                         "digit; sha256 needs 64 hex digits (0-9, a-f)"),
])
def test_an_invalid_image_says_what_is_wrong_before_asking_a_registry(argv: list[str], message: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copy", *argv]) == 2
    assert capsys.readouterr() == ("", f"rehome: error: {message}\n")


def empty_component(name: str) -> str:
    return (f"invalid reference format: repository name '{name}' has an empty path component (a '/' at the start or "
            "end, or two in a row)")


DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("destination", "message", "meant"), [
    ("127.0.0.1:5000/mirror/", empty_component("127.0.0.1:5000/mirror/"),
     "127.0.0.1:5000/mirror, or 127.0.0.1:5000/mirror/NAME"),
    ("127.0.0.1:5000/", empty_component("127.0.0.1:5000/"), "127.0.0.1:5000/NAME"),
    ("127.0.0.1:5000//", empty_component("127.0.0.1:5000//"), "127.0.0.1:5000/NAME"),
    ("docker.io/", empty_component("docker.io/"), "docker.io/NAME"),
    ("127.0.0.1:5000/m/x:v1/", empty_component("127.0.0.1:5000/m/x:v1/"), "127.0.0.1:5000/m/x:v1"),
    (f"127.0.0.1:5000/m@{DIGEST}/",
     f"invalid digest '{DIGEST}/': '/' is not a hex digit; sha256 needs 64 hex digits (0-9, a-f)",
     f"127.0.0.1:5000/m@{DIGEST}"),
])
def test_a_destination_ending_in_a_slash_is_refused_as_no_mirror_prefix(
        destination: str, message: str, meant: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copy", "nginx:1.27", destination]) == 2
    assert capsys.readouterr() == ("", (
        f"rehome: error: DST '{destination}': {message}\n"
        f"hint: DST is where the copy goes ({meant}), not a mirror prefix as --to DEST is\n"))


def test_a_destination_ending_in_a_slash_that_nothing_fixes_gets_no_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copy", "nginx:1.27", "127.0.0.1:5000/m//x/"]) == 2
    assert capsys.readouterr() == ("", f"rehome: error: DST '127.0.0.1:5000/m//x/': "
                                       f"{empty_component('127.0.0.1:5000/m//x/')}\n")


def test_docker_config_of_the_wrong_shape_is_a_usage_error(loopback: Loopback, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = unique_repo("upstream")
    images.push(loopback.upstream.host, src, images.image((300,)), "v1")
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text('{"credHelpers": "gcloud"}')
    target = f"{loopback.basic.host}/{unique_repo('mirror')}"
    assert main(["copy", f"{loopback.upstream.host}/{src}:v1", target]) == 2
    assert capsys.readouterr() == ("", f"rehome: error: {tmp_path}/docker/config.json: \"credHelpers\" must be an object "
                                       "of registry -> helper name, not a string\n")


def test_canary_password_never_appears(loopback: Loopback, capsys: pytest.CaptureFixture[str],
                                       caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    image = images.image((500,))
    src = unique_repo("upstream")
    images.push(loopback.upstream.host, src, image, "v1")
    source = f"{loopback.upstream.host}/{src}:v1"
    outputs = []
    for password, expected in ((CANARY_PASSWORD, 0), (CANARY_PASSWORD + "-wrong", 1)):
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        target = f"{loopback.basic.host}/{unique_repo('mirror')}:v1"
        for fmt in ("table", "json"):
            code = main(["copy", "-v", source, target, "--username", BASIC_USER, "--password-stdin", "--format", fmt])
            monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
            assert code == expected
            out = capsys.readouterr()
            outputs += [out.out, out.err]
    outputs.append(caplog.text)
    assert "copied" in outputs[0] and "HTTP 401" in outputs[4]
    assert not [text for text in outputs if "canary" in text]
