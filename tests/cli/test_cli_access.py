"""`kinko token|policy|audit` in local mode, through CliRunner on a real vault file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.vault import open_vault
from tests.cli.conftest import one_error_line, run

POLICY = 'name: app\nrules:\n  - path: "team/app/*"\n    capabilities: [read, list]\n'


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {"KINKO_VAULT": str(tmp_path / "v.db")}
    result = run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"))
    assert result.exit_code == 0, result.stderr
    return env


def test_policy_write_read_list_delete(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    assert run(env, "policy", "write", str(tmp_path / "p.yaml")).stdout == "wrote policy app (1 rules)\n"
    assert "team/app/*" in run(env, "policy", "read", "app").stdout
    assert run(env, "policy", "list").stdout.split() == ["admin", "app", "default", "root", "secrets-officer",
                                                         "secrets-reader"]
    bad = run(env, "policy", "write", "-", input=b"name: x\nrules:\n  - {path: 'a/*/b', capabilities: [read]}\n")
    one_error_line(bad, "invalid_input")
    assert "rule 0" in bad.stderr
    one_error_line(run(env, "policy", "delete", "admin"), "invalid_input")
    assert run(env, "policy", "delete", "app").exit_code == 0
    one_error_line(run(env, "policy", "read", "app"), "not_found")


def test_token_create_lookup_renew_revoke(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    run(env, "policy", "write", str(tmp_path / "p.yaml"))
    created = run(env, "token", "create", "-p", "app", "--ttl", "2h", "--display-name", "ci", "--meta", "team=a",
                  "-o", "json")
    assert created.exit_code == 0, created.stderr
    doc = json.loads(created.stdout)
    token, accessor = doc["token"], doc["accessor"]
    assert token.startswith("kinko_s_") and doc["policies"] == ["app"] and doc["metadata"] == {"team": "a"}
    looked = json.loads(run(env, "token", "lookup", "-", "-o", "json", input=token.encode()).stdout)
    assert looked["accessor"] == accessor and "token" not in looked
    assert token not in run(env, "token", "list").stdout and accessor in run(env, "token", "list").stdout
    assert run(env, "token", "renew", "--accessor", accessor, "--increment", "1h").exit_code == 0
    assert run(env, "token", "revoke", "-a", accessor).stdout == "revoked 1 token\n"
    one_error_line(run(env, "token", "lookup", "-a", accessor), "not_found")
    one_error_line(run(env, "token", "create", "-p", "nope"), "invalid_input")
    assert run(env, "token", "create", "-p", "app", "--ttl", "soon").exit_code == 2


def test_audit_hash_matches_the_log_and_verify_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    vault = open_vault(tmp_path / "v.db")  # key-file vault: auto-unsealed
    log = tmp_path / "audit.log"
    vault.enable_audit(log)
    vault.put(Caller.local_operator(), "a/b", b"canary-value")
    vault.close()
    hashed = run(env, "audit", "hash", "-", input=b"canary-value").stdout.strip()
    assert hashed.startswith("hmac-sha256:") and hashed in log.read_text() and "canary-value" not in log.read_text()
    assert run(env, "audit", "verify", str(log)).exit_code == 0
    vault = open_vault(tmp_path / "v.db")
    vault.enable_audit(log)
    for i in range(3):
        vault.put(Caller.local_operator(), f"a/p{i}", b"v")
    vault.close()
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2] + lines[3:]))
    result = run(env, "audit", "verify", str(log))
    assert result.exit_code == 1 and "line 3" in result.stdout
    assert json.loads(run(env, "audit", "verify", str(log), "-o", "json").stdout)["first_bad_line"] == 3
