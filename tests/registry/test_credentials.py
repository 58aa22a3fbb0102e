"""Docker's config.json: every shape Docker itself refuses is a usage error naming the file and the key;
a credential helper's answer that is not its JSON is named with the helper and the registry; only the protocol's
"credentials not found" answer means none, any other failure is the helper's, said with its exit code and never
with what it printed (which may hold credentials)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError, RehomeError
from bot.registry.credentials import (
    ANONYMOUS, Credential, CredentialHelperError, CredentialStore, run_credential_helper,
)
from bot.registry.secret import Secret
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP, install_credential_helper

HOST = "registry.example"


def store_with_config(tmp_path: Path, text: str) -> tuple[CredentialStore, Path]:
    folder = tmp_path / "docker"
    folder.mkdir()
    path = folder / "config.json"
    path.write_text(text)
    return CredentialStore(environ={"DOCKER_CONFIG": str(folder)}), path


@pytest.mark.parametrize(("text", "message"), [
    ("[]", "PATH must be a JSON object, not a list"),
    ('"auths"', "PATH must be a JSON object, not a string"),
    ("{", "PATH: cannot read Docker's credentials file: Expecting property name enclosed in double quotes: "
          "line 1 column 2 (char 1)"),
    pytest.param(f'{{"auths": {DEEP_JSON}}}', f"PATH: cannot read Docker's credentials file: {NESTED_TOO_DEEP}",
                 id="nested-too-deep"),
    ('{"credHelpers": "gcloud"}', 'PATH: "credHelpers" must be an object of registry -> helper name, not a string'),
    ('{"credHelpers": {"gcr.io": 5}}',
     'PATH: "credHelpers" entry "gcr.io" must be a helper name (a string), not a number'),
    ('{"credsStore": 5}', 'PATH: "credsStore" must be a helper name (a string), not a number'),
    ('{"credsStore": ["desktop"]}', 'PATH: "credsStore" must be a helper name (a string), not a list'),
    ('{"auths": []}', 'PATH: "auths" must be an object of registry -> credentials, not a list'),
    ('{"auths": "x"}', 'PATH: "auths" must be an object of registry -> credentials, not a string'),
    ('{"auths": {"other.example": "dXNlcjpwdw=="}}',
     'PATH: "auths" entry "other.example" must be an object such as {"auth": "base64 of user:password"}, not a string'),
    ('{"auths": {"registry.example": {"auth": true}}}',
     'PATH: "auths" entry "registry.example": "auth" must be a string, not true or false'),
    ('{"auths": {"registry.example": {"username": "u", "password": 1234}}}',
     'PATH: "auths" entry "registry.example": "password" must be a string, not a number'),
    ('{"auths": {"registry.example": {"identitytoken": {}}}}',
     'PATH: "auths" entry "registry.example": "identitytoken" must be a string, not an object'),
    ('{"auths": {"registry.example": {"auth": "not base64!"}}}',
     'PATH: "auths" entry "registry.example": "auth" must be base64 of user:password'),
    ('{"auths": {"registry.example": {"auth": "bm8tY29sb24="}}}',
     'PATH: "auths" entry "registry.example": "auth" must be base64 of user:password'),
])
def test_wrong_shapes_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    store, path = store_with_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        store.lookup(HOST)
    assert str(caught.value) == message.replace("PATH", str(path))


@pytest.mark.parametrize("text", ["null", "{}", '{"auths": null, "credHelpers": null, "credsStore": ""}',
                                  '{"auths": {"registry.example": {}}, "currentContext": "default"}',
                                  '{"auths": {"registry.example": {"username": null, "password": null, "auth": null}}}'])
def test_empty_and_null_settings_mean_no_credentials(tmp_path: Path, text: str) -> None:
    store, _ = store_with_config(tmp_path, text)
    assert store.lookup(HOST) == ANONYMOUS


def test_a_folder_where_the_file_belongs_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    store = CredentialStore(environ={"DOCKER_CONFIG": str(tmp_path)})
    with pytest.raises(ConfigError) as caught:
        store.lookup(HOST)
    assert str(caught.value) == f"{tmp_path / 'config.json'}: Docker's credentials file is not a file"


@pytest.mark.parametrize("answer", [
    b"not JSON", b'{"Username": "u"}', b'["u", "s"]', b'{"Username": "u", "Secret": 5}',
    b'{"Username": false, "Secret": "s"}', pytest.param(b'{"Username": "b\xfc", "Secret": "s"}', id="not-utf-8"),
    pytest.param(DEEP_JSON.encode(), id="nested-too-deep"),
])
def test_a_helper_answer_that_is_not_its_json_is_named(tmp_path: Path, monkeypatch, answer: bytes) -> None:
    (tmp_path / "answer").write_bytes(answer)
    install_credential_helper(tmp_path, monkeypatch, "odd", f"cat '{tmp_path / 'answer'}'")
    with pytest.raises(RehomeError) as caught:
        run_credential_helper("odd", HOST, "config.json credHelpers")
    assert str(caught.value) == f"{HOST}: credentials: docker-credential-odd get printed something that is not its JSON answer"


@pytest.mark.parametrize(("answer", "credential"), [
    (b'{"Username": null, "Secret": "s3"}', Credential("", Secret("s3"), None, "config.json credHelpers")),
    # an empty secret is no credentials, whether said "" or null
    (b'{"Username": "bot", "Secret": null}', None),
    (b'{"Username": null, "Secret": null}', None),
])
def test_a_null_in_a_helper_answer_is_read_as_empty_as_docker_reads_it(tmp_path: Path, monkeypatch, answer: bytes,
                                                                         credential: Credential | None) -> None:
    (tmp_path / "answer").write_bytes(answer)
    install_credential_helper(tmp_path, monkeypatch, "nulls", f"cat '{tmp_path / 'answer'}'")
    assert run_credential_helper("nulls", HOST, "config.json credHelpers") == credential


@pytest.mark.parametrize("said", ["credentials not found in native keychain", " credentials not found in native keychain\r"])
def test_the_protocols_not_found_answer_on_stdout_means_no_credentials(tmp_path: Path, monkeypatch, said: str) -> None:
    install_credential_helper(tmp_path, monkeypatch, "empty", f"printf '%s\\n' '{said}'; exit 1")
    assert run_credential_helper("empty", HOST, "config.json credHelpers") is None


def test_a_helper_that_cannot_be_run_is_named(tmp_path: Path, monkeypatch) -> None:
    install_credential_helper(tmp_path, monkeypatch, "qa", "exit 0")
    (tmp_path / "docker-credential-qa").chmod(0o644)
    with pytest.raises(CredentialHelperError) as caught:
        run_credential_helper("qa", HOST, "config.json credHelpers")
    assert str(caught.value) == f"{HOST}: credentials: docker-credential-qa cannot be run: Permission denied"


def failed(exit_code: str) -> str:
    return (f"docker-credential-qa get failed (exit {exit_code}); what it printed is not shown, as it may hold "
            f"credentials: `echo {HOST} | docker-credential-qa get` shows it")


@pytest.mark.parametrize(("script", "detail"), [
    # a helper that cannot run what it wraps is broken, not empty, whatever its words
    ("echo '/bin/sh: 1: gcloud: not found' >&2; exit 127",
     failed("127, which a shell gives for a command it cannot find")),
    # the protocol's "none" is said on stdout: said on stderr only, it is a failure
    ("echo 'credentials not found in native keychain' >&2; echo 'keychain locked'; exit 1", failed("1")),
    ("echo 'credentials not found for registry.example'; exit 1", failed("1")),
    ("exit 2", failed("2")),
    # what it printed may be credentials in any form, or not even UTF-8: none of it is shown
    ("echo 'error getting token from https://bot:hunter2@vault.example/v1/creds'; exit 1", failed("1")),
    ("""echo '{"Username": "bot", "Secret": "correct horse battery staple"}'; exit 1""", failed("1")),
    ("echo 'Authorization: Basic Ym90Omh1bnRlcjI=' >&2; exit 1", failed("1")),
    ("printf 'Passwort f\\374r bot ung\\374ltig\\n' >&2; printf 'b\\374\\n'; exit 1", failed("1")),
])
def test_a_failing_helper_says_its_exit_code_and_how_to_see_its_message(tmp_path: Path, monkeypatch, script: str,
                                                                        detail: str) -> None:
    install_credential_helper(tmp_path, monkeypatch, "qa", script)
    with pytest.raises(CredentialHelperError) as caught:
        run_credential_helper("qa", HOST, "config.json credHelpers")
    assert str(caught.value) == f"{HOST}: credentials: {detail}"
