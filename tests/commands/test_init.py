from __future__ import annotations

from bot.config import load_config
from tests.helpers import run_cli


def test_init_writes_a_valid_commented_starter(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "init", str(tmp_path), "--to", "us-docker.pkg.dev/acme/mirror")
    assert (code, out) == (0, f"wrote {tmp_path / 'rehome.yaml'}\n")
    config = load_config(tmp_path / "rehome.yaml")
    assert (config.destination, config.mapping, config.pin_digest) == (
        "us-docker.pkg.dev/acme/mirror", "{destination}/{domain}/{path}", False)
    assert "# internal:" in (tmp_path / "rehome.yaml").read_text()


def test_init_never_overwrites_without_force(tmp_path, capsys):
    (tmp_path / "rehome.yaml").write_text("destination: keep.me/x\n")
    code, out, err = run_cli(capsys, "init", str(tmp_path))
    assert (code, err) == (2, f"rehome: error: {tmp_path / 'rehome.yaml'} already exists (use --force to overwrite it)\n")
    assert (tmp_path / "rehome.yaml").read_text() == "destination: keep.me/x\n"
    assert run_cli(capsys, "init", str(tmp_path), "--force")[0] == 0
    assert load_config(tmp_path / "rehome.yaml").destination == "us-docker.pkg.dev/PROJECT/mirror"
