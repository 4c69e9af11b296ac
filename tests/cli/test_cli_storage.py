"""Choosing the vault's storage: `--storage URL` / KINKO_STORAGE for every local command and the server, never a
password on the command line, `--vault FILE` typed still wins, and a URL is printed without its password."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinko.api.server import load_config, vault_location
from kinko.config import check_storage_url, shown_location
from kinko.errors import UsageError
from tests.cli.conftest import error_line, run

URL = "postgresql://kinko@db.internal:5432/kinko"


@pytest.mark.parametrize("url", [
    "postgresql://kinko:hunter2@db:5432/kinko",
    "postgres://kinko:hunter2@db/kinko",
    "postgresql://kinko@db/kinko?sslmode=require&password=hunter2",
])
def test_a_password_in_a_url_on_the_command_line_is_refused(url: str, tmp_path: Path) -> None:
    env = {"KINKO_ADDR": "", "HOME": str(tmp_path)}
    result = run(env, "secret", "list", "--storage", url)
    assert result.exit_code == 2 and "passfile" in result.output and "hunter2" not in result.output
    with pytest.raises(UsageError, match="visible to every user"):
        check_storage_url(url, option="--storage", on_command_line=True)
    assert check_storage_url(url, option="storage", on_command_line=False) == url  # env or config file: allowed
    assert "hunter2" not in shown_location(url)
    server = run(env, "server", "--storage", url)
    assert server.exit_code == 2 and "hunter2" not in server.output


def test_not_a_url_is_a_usage_error(tmp_path: Path) -> None:
    result = run({"KINKO_ADDR": "", "HOME": str(tmp_path)}, "secret", "list", "--storage", "db.internal:5432")
    assert result.exit_code == 2 and "not a storage URL" in result.output


def test_local_commands_use_kinko_storage_and_a_typed_vault_wins(pg_url: str, tmp_path: Path) -> None:
    env = {"KINKO_STORAGE": pg_url, "KINKO_ADDR": "", "HOME": str(tmp_path), "KINKO_VAULT": str(tmp_path / "v.db")}
    init = run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"))
    assert init.exit_code == 0, init.output
    assert "postgresql://kinko@127.0.0.1:" in init.output and not (tmp_path / "v.db").exists()
    assert run(env, "secret", "put", "team/db", "-", input=b"in-postgres").exit_code == 0
    assert run(env, "secret", "get", "team/db").stdout_bytes == b"in-postgres"
    # the same database by flag, with KINKO_STORAGE unset
    flag = run({**env, "KINKO_STORAGE": ""}, "secret", "get", "team/db", "--storage", pg_url)
    assert flag.stdout_bytes == b"in-postgres"
    # `--vault FILE` typed on the command line means that file, whatever KINKO_STORAGE says
    error_line(run(env, "secret", "get", "team/db", "--vault", str(tmp_path / "v.db")), "not_found")
    # and `--storage` typed wins over KINKO_ADDR (the server) like `--vault` does
    remote = run({**env, "KINKO_ADDR": "http://127.0.0.1:9"}, "secret", "get", "team/db", "--storage", pg_url)
    assert remote.stdout_bytes == b"in-postgres"


def test_server_storage_from_config_env_or_flag(tmp_path: Path) -> None:
    conf = tmp_path / "server.yaml"
    conf.write_text(f"storage: {URL}\n")
    assert vault_location(load_config(conf, env={})) == URL
    assert vault_location(load_config(None, env={"KINKO_STORAGE": URL + "2"})) == URL + "2"
    assert vault_location(load_config(None, env={"KINKO_VAULT": str(tmp_path / "v.db")})) == tmp_path / "v.db"
    with pytest.raises(UsageError, match="not a storage URL"):
        load_config(None, env={"KINKO_STORAGE": "/var/lib/kinko/vault.db"})
    dev = run({"HOME": str(tmp_path)}, "server", "--dev", "--storage", URL)
    assert dev.exit_code == 2 and "--dev" in dev.output
