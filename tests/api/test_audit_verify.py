"""POST /v1/sys/audit/verify: the server checks its own audit file with the vault's key (sudo only); remote
`kinko audit verify` against a real server asks for exactly that."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.api.conftest import KINKO, Local, start_server, stop_server


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


def test_remote_audit_verify_checks_the_servers_own_file(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    srv = start_server(["--dev", "--audit-file", str(log)], tmp_path)
    try:
        env = {**os.environ, "KINKO_ADDR": srv.addr, "KINKO_TOKEN": srv.token, "HOME": str(tmp_path)}
        env.pop("KINKO_VAULT", None)

        def kinko(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*KINKO, *args], env=env, capture_output=True, text=True, timeout=30)

        for name in ("a", "b", "c"):
            assert kinko("secret", "put", f"team/{name}", "--value", "v").returncode == 0
        ok = kinko("audit", "verify")
        assert ok.returncode == 0 and "chain intact" in ok.stdout, ok.stderr
        assert kinko("audit", "verify", str(log)).returncode == 2  # a local file is not sent to the server
        lines = log.read_bytes().splitlines(keepends=True)
        log.write_bytes(b"".join(lines[:1] + lines[2:]))
        bad = kinko("audit", "verify", "-o", "json")
        assert bad.returncode == 1 and json.loads(bad.stdout)["first_bad_line"] == 2
    finally:
        stop_server(srv.proc)
