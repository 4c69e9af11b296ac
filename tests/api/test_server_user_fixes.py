"""A real `kinko server`: the audit file is checked before "listening", remote `audit verify`, token file per server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kinko.cli.login import store_token
from kinko.config import client_settings
from tests.api.conftest import KINKO, start_server, stop_server


def test_missing_audit_directory_fails_before_listening(tmp_path: Path) -> None:
    done = subprocess.run([*KINKO, "server", "--dev", "--listen", "127.0.0.1:0", "--audit-file",
                           str(tmp_path / "missing" / "dir" / "audit.log")], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: audit_failed: ") and "missing/dir" in lines[0]
    assert "listening" not in done.stderr + done.stdout


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


def test_stored_token_is_only_sent_to_the_server_it_was_stored_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KINKO_TOKEN", raising=False)
    path = tmp_path / ".kinko" / "token"
    store_token("kinko_s_" + "a" * 43, path, "http://127.0.0.1:8200")
    assert json.loads(path.read_text()) == {"addr": "http://127.0.0.1:8200", "token": "kinko_s_" + "a" * 43}
    notes: list[str] = []
    assert client_settings({"KINKO_ADDR": "http://127.0.0.1:8200/"}).token == "kinko_s_" + "a" * 43
    assert client_settings({"KINKO_ADDR": "http://10.0.0.9:8200"}, warn=notes.append).token is None
    assert "not http://10.0.0.9:8200" in notes[0] and "kinko login" in notes[0] and "a" * 43 not in notes[0]
    path.write_text("kinko_s_" + "b" * 43 + "\n")  # written by an older kinko: no address in it
    assert client_settings({"KINKO_ADDR": "http://127.0.0.1:8200"}, warn=notes.append).token is None
    assert "older format" in notes[1]
