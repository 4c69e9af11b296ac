"""`kinko scan --known-from-vault`: exact occurrences of stored values, by keyed fingerprints, locally and through a
real `kinko server`; the `scan` capability decides which values count; no value leaves the vault."""

from __future__ import annotations

import base64
import hashlib
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
from kinko.core.fingerprints import BLAKE2B, HMAC_SHA256, KEY_BYTES, fingerprint
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


def test_values_with_spaces_or_encoded_are_found_where_such_values_are_written() -> None:
    key = secrets.token_bytes(KEY_BYTES)
    stored = {"ops/passphrase": b"correct horse battery staple", "ops/quoted": b"it's \"7 words\" long",
              "app/api": b"Qm7tZ2vX9kLp4Rw8", "app/db": b"p@ss/w0rd:Xq7"}  # fmt: skip
    prints = [fp for path, value in stored.items() if (fp := fingerprint(key, path, value)) is not None]
    known = KnownValues(prints, key)
    api_b64 = base64.b64encode(stored["app/api"])
    text = (b'BACKUP_PASSPHRASE="correct horse battery staple"\n'
            b"passphrase: correct horse battery staple\n"
            b"correct horse battery staple\n"
            b"NOTE=it's \"7 words\" long\n"
            b"data:\n  api: " + api_b64 + b"\n"
            b"DB=postgres://app:p%40ss%2Fw0rd%3AXq7@db/app\n"
            b"near: correct horse battery staples and " + base64.b64encode(b"Qm7tZ2vX9kLp4Rw9") + b"\n")  # fmt: skip
    found = sorted((text[s:e], where) for s, e, where in known.find(text))
    assert found == sorted(
        [(b"correct horse battery staple", "ops/passphrase")] * 3
        + [(b"it's \"7 words\" long", "ops/quoted"), (api_b64, "app/api"), (b"p%40ss%2Fw0rd%3AXq7", "app/db")]
    )


def test_a_value_is_found_as_a_printable_run_inside_a_binary_and_as_a_secret_file() -> None:
    key = secrets.token_bytes(KEY_BYTES)
    value = _password(20).encode()
    known = KnownValues([fingerprint(key, "svc/key", value)], key)  # type: ignore[list-item]
    blob = secrets.token_bytes(4096).replace(value[:1], b"\x00") + b"\x00\x01" + value + b"\xff\x7f" + bytes(99)
    assert [(blob[s:e], where) for s, e, where in known.find(blob)] == [(value, "svc/key")]
    spaced = b"open sesame for the builds"
    known = KnownValues([fingerprint(key, "ci/passphrase", spaced)], key)  # type: ignore[list-item]
    assert [w for _, _, w in known.find(b"  " + spaced + b"\n")] == ["ci/passphrase"]  # /run/secrets/<name>


def test_fingerprints_are_blake2b_on_request_and_hmac_for_old_clients(tmp_path: Path) -> None:
    vault, _ = keyfile_vault(tmp_path)
    root = vault.session(Caller.local_operator())
    root.put("team/db", b"Xk9mQ2vL7pR4")
    key = secrets.token_bytes(KEY_BYTES)
    (new,) = root.scan_fingerprints("team", key, BLAKE2B)
    (old,) = root.scan_fingerprints("team", key)
    assert (new.algorithm, old.algorithm) == (BLAKE2B, HMAC_SHA256) and new.digest != old.digest
    assert new.digest == hashlib.blake2b(b"Xk9mQ2vL7pR4", key=key, digest_size=16).digest()
    with pytest.raises(InvalidInput, match="algorithm"):
        root.scan_fingerprints("team", key, "md5")
    with pytest.raises(InvalidInput, match="different algorithms"):
        KnownValues([new, old], key)
    vault.close()


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
    # over HTTP: the algorithm asked for is the one answered; a client that names none gets HMAC-SHA256
    key = secrets.token_bytes(KEY_BYTES)
    scanner = RemoteVault.connect(server.addr, token)
    assert {f.algorithm for f in scanner.scan_fingerprints("payments", key, BLAKE2B)} == {BLAKE2B}
    assert {f.algorithm for f in scanner.scan_fingerprints("payments", key)} == {HMAC_SHA256}
    scanner.close()
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
