"""Docker's config.json: every shape Docker itself refuses is a usage error naming the file and the key;
a credential helper's answer that is not its JSON is named with the helper and the registry; only the protocol's
"credentials not found" answer means none, any other failure is the helper's, said with its masked first line."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError, RehomeError
from bot.registry.credentials import ANONYMOUS, CredentialHelperError, CredentialStore, run_credential_helper
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
                                  '{"auths": {"registry.example": {}}, "currentContext": "default"}'])
def test_empty_and_null_settings_mean_no_credentials(tmp_path: Path, text: str) -> None:
    store, _ = store_with_config(tmp_path, text)
    assert store.lookup(HOST) == ANONYMOUS


def test_a_folder_where_the_file_belongs_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    store = CredentialStore(environ={"DOCKER_CONFIG": str(tmp_path)})
    with pytest.raises(ConfigError) as caught:
        store.lookup(HOST)
    assert str(caught.value) == f"{tmp_path / 'config.json'}: Docker's credentials file is not a file"


@pytest.mark.parametrize("answer", ["not JSON", '{"Username": "u"}', pytest.param(DEEP_JSON, id="nested-too-deep")])
def test_a_helper_answer_that_is_not_its_json_is_named(tmp_path: Path, monkeypatch, answer: str) -> None:
    (tmp_path / "answer").write_text(answer)
    install_credential_helper(tmp_path, monkeypatch, "odd", f"cat '{tmp_path / 'answer'}'")
    with pytest.raises(RehomeError) as caught:
        run_credential_helper("odd", HOST, "config.json credHelpers")
    assert str(caught.value) == f"{HOST}: credentials: docker-credential-odd get printed something that is not its JSON answer"


@pytest.mark.parametrize("said", ["credentials not found in native keychain", " credentials not found in native keychain\r"])
def test_the_protocols_not_found_answer_on_stdout_means_no_credentials(tmp_path: Path, monkeypatch, said: str) -> None:
    install_credential_helper(tmp_path, monkeypatch, "empty", f"printf '%s\\n' '{said}'; exit 1")
    assert run_credential_helper("empty", HOST, "config.json credHelpers") is None


@pytest.mark.parametrize(("script", "detail"), [
    # a helper that cannot run what it wraps is broken, not empty, whatever its words
    ("echo 'ERROR: (gcloud.auth.docker-helper) /bin/sh: gcloud: not found' >&2; exit 127",
     "docker-credential-qa get failed (exit 127): ERROR: (gcloud.auth.docker-helper) /bin/sh: gcloud: not found"),
    # the protocol's "none" is said on stdout: said on stderr only, stdout's own words are the reason
    ("echo 'credentials not found in native keychain' >&2; echo 'keychain locked'; exit 1",
     "docker-credential-qa get failed (exit 1): keychain locked"),
    ("echo 'credentials not found for registry.example'; exit 1",
     "docker-credential-qa get failed (exit 1): credentials not found for registry.example"),
    ("echo; echo '  first words  '; echo 'second line'; exit 2", "docker-credential-qa get failed (exit 2): first words"),
    (f"echo '{'x' * 250}' >&2; exit 1", f"docker-credential-qa get failed (exit 1): {'x' * 200}…"),
    ("exit 1", f"docker-credential-qa get failed (exit 1) without saying why; `echo {HOST} | docker-credential-qa get` "
               "runs it by hand"),
])
def test_a_failing_helper_says_its_exit_code_and_first_line(tmp_path: Path, monkeypatch, script: str,
                                                            detail: str) -> None:
    install_credential_helper(tmp_path, monkeypatch, "qa", script)
    with pytest.raises(CredentialHelperError) as caught:
        run_credential_helper("qa", HOST, "config.json credHelpers")
    assert str(caught.value) == f"{HOST}: credentials: {detail}"


@pytest.mark.parametrize(("said", "shown"), [
    ('{"ServerURL": "registry.example", "Username": "bot", "Secret": "s3cret-canary"}',
     '{"ServerURL": "registry.example", "Username": "bot", "Secret": "***"}'),
    ("login failed: password=s3cret-canary, token: abc user=bot", "login failed: password=***, token: *** user=bot"),
    ("refresh token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl expired",
     "refresh token *** expired"),
    ("key AKIAIOSFODNN7EXAMPLE is not valid in ~/.docker/config.json",
     "key *** is not valid in ~/.docker/config.json"),
])
def test_what_looks_like_a_secret_in_a_helpers_message_is_masked(tmp_path: Path, monkeypatch, said: str,
                                                                 shown: str) -> None:
    (tmp_path / "said").write_text(said)
    install_credential_helper(tmp_path, monkeypatch, "leaky", f"cat '{tmp_path / 'said'}' >&2; exit 1")
    with pytest.raises(CredentialHelperError) as caught:
        run_credential_helper("leaky", HOST, "config.json credHelpers")
    assert caught.value.detail == f"docker-credential-leaky get failed (exit 1): {shown}"
