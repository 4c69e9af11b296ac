"""POST /v1/sys/audit/verify: the server checks its own audit file with the vault's key (sudo only)."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Local


def test_server_verifies_its_own_audit_file_and_needs_sudo(local: Local, tmp_path: Path) -> None:
    none = local.client.post("/v1/sys/audit/verify", headers=local.auth)
    assert none.status_code == 400 and "no audit file" in none.json()["error"]["message"]
    log = tmp_path / "server-audit.log"
    local.vault.enable_audit(log)
    for name in ("a", "b", "c"):
        assert local.client.put(f"/v1/secrets/team/{name}", headers=local.auth, json={"value": "x"}).status_code == 200
    ok = local.client.post("/v1/sys/audit/verify", headers=local.auth)
    assert ok.status_code == 200, ok.text
    assert ok.json()["ok"] is True and ok.json()["keyed_records"] == 4
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:1] + lines[2:]))
    bad = local.client.post("/v1/sys/audit/verify", headers=local.auth).json()
    assert bad["ok"] is False and bad["first_bad_line"] == 2
    plain = local.client.post("/v1/auth/token/create", headers=local.auth, json={"policies": ["default"]})
    denied = local.client.post("/v1/sys/audit/verify", headers={"X-Kinko-Token": plain.json()["token"]})
    assert denied.status_code == 403
