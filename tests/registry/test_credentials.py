"""Docker's config.json: every shape Docker itself refuses is a usage error naming the file and the key;
a credential helper's answer that is not its JSON is named with the helper and the registry."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.errors import ConfigError, RehomeError
from bot.registry.credentials import ANONYMOUS, CredentialStore, run_credential_helper
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP

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
    helper = tmp_path / "docker-credential-odd"
    helper.write_text(f"#!/bin/sh\ncat > /dev/null\ncat '{tmp_path / 'answer'}'\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(RehomeError) as caught:
        run_credential_helper("odd", HOST, "config.json credHelpers")
    assert str(caught.value) == f"{HOST}: credentials: docker-credential-odd get printed something that is not its JSON answer"
