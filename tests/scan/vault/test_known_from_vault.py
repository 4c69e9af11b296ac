"""`kinko scan --known-from-vault`: exact occurrences of stored values, by keyed fingerprints, locally and through a
real `kinko server`; the `scan` capability decides which values count; no value leaves the vault."""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinko.client import RemoteVault
from kinko.core.fingerprints import KEY_BYTES, fingerprint
from kinko.errors import InvalidInput, PermissionDenied
from kinko.scan.detect.known import KnownValues
from kinko.vault import Caller
from tests.api.conftest import Server, keyfile_vault, start_server, stop_server

KINKO = Path(sys.executable).parent / "kinko"


def _password(n: int = 12) -> str:
    """A random password no pattern rule knows (letters and digits, no prefix)."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def test_tokens_and_pieces_are_matched_exactly() -> None:
    key = secrets.token_bytes(KEY_BYTES)
    stored = {"team/db": b"Xk9mQ2vL7pR4", "team/b64": b"c2VjcmV0LXZhbHVlLTEyMw=="}
    prints = [fp for path, value in stored.items() if (fp := fingerprint(key, path, value)) is not None]
    known = KnownValues(prints, key)
    text = (b'DB_URL="postgres://app:Xk9mQ2vL7pR4@db:5432/app"\nKEY=c2VjcmV0LXZhbHVlLTEyMw==\n'
            b"near miss: Xk9mQ2vL7pR45 xXk9mQ2vL7pR4\n")  # fmt: skip
    found = sorted((text[s:e], where) for s, e, where in known.find(text))
    assert found == [(b"Xk9mQ2vL7pR4", "team/db"), (b"c2VjcmV0LXZhbHVlLTEyMw==", "team/b64")]
    assert fingerprint(key, "x", b"short") is None  # under MIN_LENGTH: not fingerprinted
    assert "Xk9m" not in repr(prints)


def test_the_vault_answers_only_fingerprints_of_what_scan_allows(tmp_path: Path) -> None:
    vault, _ = keyfile_vault(tmp_path)
    root = vault.session(Caller.local_operator())
    root.put("team/app/db", _password().encode())
    root.put("team/app/kv", {"user": b"svc-payments", "pass": _password(16).encode()}, content_type="Opaque")
    root.put("other/x", _password().encode())
    key = secrets.token_bytes(KEY_BYTES)
    paths = sorted(f.path for f in root.scan_fingerprints("team", key))
    assert paths == ["team/app/db", "team/app/kv#pass", "team/app/kv#user"]
    root.write_policy({"name": "scanner", "rules": [{"path": "team/*", "capabilities": ["scan"]}]})
    token, _ = root.create_token(policies=["scanner"])
    scanner = vault.session(vault.authenticate(token))
    assert {f.path for f in scanner.scan_fingerprints("team", key)} == set(paths)
    with pytest.raises(PermissionDenied):
        scanner.scan_fingerprints("other", key)
    with pytest.raises(PermissionDenied):
        scanner.get("team/app/db")  # `scan` is not `read`
    with pytest.raises(InvalidInput):
        root.scan_fingerprints("team", b"too short")
    vault.kv.write(Caller.local_operator(), "secret", "team/kv2", {"token": _password()}, None)
    vault.kv.destroy(Caller.local_operator(), "team/kv2", [1])  # its current version destroyed: skipped
    assert sorted(f.path for f in root.scan_fingerprints("team", key)) == paths
    vault.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(["--dev"], tmp_path_factory.mktemp("known-server"))
    yield srv
    stop_server(srv.proc)


def _scan(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KINKO_")} | env
    return subprocess.run([str(KINKO), "scan", *args], capture_output=True, text=True, env=full, timeout=120,
                          check=False)  # fmt: skip


def test_scan_dir_through_a_server_with_a_scan_only_token(server: Server, tmp_path: Path) -> None:
    admin = RemoteVault.connect(server.addr, server.token)
    password = _password()
    admin.put("payments/db-password", password.encode())
    admin.put("payments/unrelated", _password().encode())
    admin.write_policy({"name": "ci-scan", "rules": [{"path": "payments/*", "capabilities": ["scan"]}]})
    token, _ = admin.create_token(policies=["ci-scan"])
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "config.ini").write_text(f"[db]\nhost = db\npass = {password}\n")
    env = {"KINKO_ADDR": server.addr, "KINKO_TOKEN": token, "HOME": str(tmp_path)}
    done = _scan(["dir", str(tmp_path / "app"), "-o", "json", "--known-from-vault", "--vault-prefix", "payments"],
                 env)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert password not in done.stdout + done.stderr and "2 stored value(s)" in done.stderr
    hits = json.loads(done.stdout)["findings"]
    assert [(f["rule_id"], f["severity"], f["location"]["line"]) for f in hits] == [
        ("vault-secret:payments/db-password", "critical", 3)]
    # without the flag nothing matches: a random 12-character password has no pattern
    assert _scan(["dir", str(tmp_path / "app")], env).returncode == 0
    # a token without `scan` on the prefix: the scan fails (exit 3), it does not pass as clean
    reader, _ = admin.create_token(policies=["secrets-reader"])
    refused = _scan(["dir", str(tmp_path / "app"), "--known-from-vault", "--vault-prefix", "payments"],
                    {**env, "KINKO_TOKEN": reader})  # fmt: skip
    assert refused.returncode == 3 and "permission_denied" in refused.stderr
    admin.close()


def test_scan_image_with_the_local_vault(tmp_path: Path) -> None:
    from tests.scan.imagebuild import build_docker_archive

    vault, _ = keyfile_vault(tmp_path)
    password = _password(14)
    vault.session(Caller.local_operator()).put("svc/api-key", password.encode())
    vault.close()
    layers = [{"etc/app.yaml": f"key: {password}\n".encode()}, {"etc/app.yaml": None}]
    archive = build_docker_archive(tmp_path / "img.tar", layers, ["COPY app.yaml /etc/", "RUN rm /etc/app.yaml"])
    env = {"KINKO_VAULT": str(tmp_path / "vault.db"), "HOME": str(tmp_path)}
    done = _scan(["image", str(archive), "-o", "json", "--workers", "1", "--known-from-vault"], env)
    assert done.returncode == 1, done.stderr
    hit = json.loads(done.stdout)["findings"][0]
    assert hit["rule_id"] == "vault-secret:svc/api-key" and hit["location"]["status"] == "deleted"
    assert password not in done.stdout
