"""`kinko key`: the lifecycle and every data operation through CliRunner on a local vault, and through a real
server over HTTP (RemoteVault) with a token that may encrypt but not decrypt."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Server, start_server, stop_server
from tests.cli.conftest import error_line, run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("key-cli")
    srv = start_server(["--dev"], work, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    yield srv
    stop_server(srv.proc)


def test_lifecycle_and_data_operations(keyfile_env: dict[str, str], tmp_path: Path) -> None:
    env = keyfile_env
    created = run(env, "key", "create", "orders", "--output", "json")
    assert created.exit_code == 0, created.stderr
    assert json.loads(created.stdout)["type"] == "aes256-gcm96"
    assert run(env, "key", "list").stdout.split() == ["orders"]
    sealed = run(env, "key", "encrypt", "orders", "card 4111", "--associated-data", "row-1").stdout.strip()
    assert sealed.startswith("vault:v1:")
    opened = run(env, "key", "decrypt", "orders", sealed, "--associated-data", "row-1")
    assert opened.exit_code == 0 and opened.stdout == "card 4111"
    refused = run(env, "key", "decrypt", "orders", sealed, "--associated-data", "row-2")
    assert error_line(refused, "key_error") == "cipher: message authentication failed"
    assert "version 2" in run(env, "key", "rotate", "orders").stdout
    rewrapped = run(env, "key", "rewrap", "orders", sealed, "--associated-data", "row-1").stdout.strip()
    assert rewrapped.startswith("vault:v2:")
    shown = run(env, "key", "config", "orders", "--min-decryption-version", "2", "--output", "json")
    assert json.loads(shown.stdout)["min_decryption_version"] == 2
    too_old = run(env, "key", "decrypt", "orders", sealed, "--associated-data", "row-1")
    assert "too old" in error_line(too_old, "key_error")
    both = json.loads(run(env, "key", "datakey", "orders", "--bits", "128", "--output", "json").stdout)
    assert len(base64.b64decode(both["plaintext"])) == 16
    assert run(env, "key", "datakey", "orders", "--wrapped-only").stdout.startswith("vault:v2:")
    refused = run(env, "key", "delete", "orders")
    assert "deletion is not allowed" in error_line(refused, "key_error")
    assert run(env, "key", "config", "orders", "--deletion-allowed").exit_code == 0
    assert run(env, "key", "delete", "orders").exit_code == 0
    assert error_line(run(env, "key", "show", "orders"), "key_not_found")


def test_sign_and_verify(keyfile_env: dict[str, str], tmp_path: Path) -> None:
    env = keyfile_env
    assert run(env, "key", "create", "release", "--type", "ecdsa-p256").exit_code == 0
    assert "-----BEGIN PUBLIC KEY-----" in run(env, "key", "show", "release").stdout
    (tmp_path / "artifact").write_bytes(b"\x00binary artifact")
    signature = run(env, "key", "sign", "release", f"@{tmp_path / 'artifact'}", "--hash", "sha2-384").stdout.strip()
    good = run(env, "key", "verify", "release", signature, f"@{tmp_path / 'artifact'}", "--hash", "sha2-384")
    assert good.exit_code == 0 and good.stdout.strip() == "valid"
    bad = run(env, "key", "verify", "release", signature, "other data", "--hash", "sha2-384")
    assert bad.exit_code == 1 and bad.stdout.strip() == "invalid"


def test_through_a_server_an_encrypt_only_token_cannot_decrypt(server: Server) -> None:
    root = {"KINKO_ADDR": server.addr, "KINKO_TOKEN": server.token, "KINKO_VAULT": ""}
    assert run(root, "key", "create", "cli-remote").exit_code == 0
    policy = {"name": "cli-enc", "rules": [{"path": "transit/encrypt/cli-remote", "capabilities": ["update"]}]}
    assert run(root, "policy", "write", "-", input=json.dumps(policy)).exit_code == 0
    token = json.loads(run(root, "token", "create", "--policy", "cli-enc", "--output", "json").stdout)["token"]
    enc_only = {**root, "KINKO_TOKEN": token}
    sealed = run(enc_only, "key", "encrypt", "cli-remote", "payload").stdout.strip()
    assert sealed.startswith("vault:v1:")
    assert error_line(run(enc_only, "key", "decrypt", "cli-remote", sealed), "permission_denied")
    assert run(root, "key", "decrypt", "cli-remote", sealed).stdout == "payload"
