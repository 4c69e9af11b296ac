"""A real `kinko server` process: remote CLI, canary, several workers sharing unseal state, TLS, schemathesis."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from kinko.client import Client, RemoteVault
from kinko.errors import NotFound, PermissionDenied
from tests.api.conftest import KINKO, Server, start_server, stop_server

CANARY = "CANARY-4b7d2e9f-server-must-not-leak"


def kinko(server: Server, *args: str, token: str | None = None, home: Path | None = None,
          stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "KINKO_ADDR": server.addr, "KINKO_TOKEN": server.token if token is None else token}
    if home is not None:
        env["HOME"] = str(home)
    if token == "":
        env.pop("KINKO_TOKEN")
    return subprocess.run([*KINKO, *args], env=env, capture_output=True, input=stdin, timeout=30)


def test_remote_cli_works_like_the_local_one(server: Server) -> None:
    assert kinko(server, "secret", "put", "cli/db", "--value", "hunter2").returncode == 0
    got = kinko(server, "secret", "get", "cli/db")
    assert got.returncode == 0 and got.stdout == b"hunter2"
    assert kinko(server, "secret", "list", "cli").stdout.decode().split() == ["db"]
    versions = json.loads(kinko(server, "secret", "versions", "cli/db", "-o", "json").stdout)
    assert [v["version"] for v in versions] == [1]
    assert kinko(server, "secret", "delete", "cli/db").returncode == 0
    missing = kinko(server, "secret", "get", "cli/db")
    assert missing.returncode == 1 and b"not_found" in missing.stderr
    assert kinko(server, "secret", "recover", "cli/db").returncode == 0
    status = json.loads(kinko(server, "operator", "status", "-o", "json").stdout)
    assert status["initialized"] is True and status["sealed"] is False
    denied = kinko(server, "secret", "get", "cli/db", token="kinko_root_wrong")
    assert denied.returncode == 1 and b"permission denied" in denied.stderr


def test_login_stores_token_0600_and_later_commands_use_it(server: Server, tmp_path: Path) -> None:
    result = kinko(server, "login", "-", token="", home=tmp_path, stdin=server.token.encode() + b"\n")
    assert result.returncode == 0, result.stderr
    token_file = tmp_path / ".kinko" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text()) == {"addr": server.addr, "token": server.token}
    kinko(server, "secret", "put", "login/x", "--value", "v")
    assert kinko(server, "secret", "get", "login/x", token="", home=tmp_path).stdout == b"v"
    printed = kinko(server, "login", "--print", token=server.token, home=tmp_path / "other")
    assert printed.stdout.decode().strip() == f"export KINKO_TOKEN={server.token}"
    assert not (tmp_path / "other" / ".kinko").exists()
    refused = kinko(server, "login", "kinko_root_nope", home=tmp_path / "third")
    assert refused.returncode == 1 and not (tmp_path / "third" / ".kinko" / "token").exists()


def test_login_reads_a_piped_token_without_a_dash(server: Server, tmp_path: Path) -> None:
    result = kinko(server, "login", token="", home=tmp_path, stdin=server.token.encode() + b"\n")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / ".kinko" / "token").read_text())["token"] == server.token
    assert server.token.encode() not in result.stdout + result.stderr


def test_remote_vault_matches_vault_types(server: Server) -> None:
    remote = RemoteVault.connect(server.addr, server.token)
    info = remote.put("rv/kv", {"user": b"u", "blob": b"\xff\x00"}, content_type="Opaque", tags={"a": "b"})
    secret = remote.get("rv/kv")
    assert secret.value == {"user": b"u", "blob": b"\xff\x00"} and secret.info.version == info.version
    assert remote.list("rv").keys == ("kv",)
    updated = remote.update_attributes("rv/kv", expires=4102444800.0)
    assert updated.attributes.expires == 4102444800.0
    blob = remote.backup("rv/kv")
    remote.delete("rv/kv")
    assert [i.path for i in remote.list_deleted("rv")] == ["rv/kv"]
    remote.purge("rv/kv")
    assert remote.restore(blob).path == "rv/kv"
    with pytest.raises(NotFound):
        remote.get("rv/none")
    with pytest.raises(PermissionDenied):
        RemoteVault.connect(server.addr, "kinko_root_bad").get("rv/kv")
    remote.close()


def test_canary_never_reaches_logs_errors_or_stderr(server: Server) -> None:
    h, c = server.auth, httpx.Client(base_url=server.addr, timeout=10)
    assert c.put("/v1/secrets/canary/one", json={"value": CANARY}, headers=h).status_code == 200
    assert c.get("/v1/secrets/canary/one", headers=h).json()["value"] == CANARY  # the one place it may appear
    errors = [
        c.put("/v1/secrets/canary/bad", json={"value": CANARY, "content_type": "kubernetes.io/tls"}, headers=h),
        c.put("/v1/secrets/canary/bad", json={"value": CANARY, "cas": "x"}, headers=h),
        c.put("/v1/secrets/canary/bad", content=b'{"value": "' + CANARY.encode(), headers=h),
        c.put("/v1/secrets/canary/big", json={"value": CANARY * 80_000}, headers=h),
        c.get("/v1/secrets/canary/one", headers={"X-Kinko-Token": CANARY}),
        c.post("/v1/restore", json={"backup": CANARY}, headers=h),
    ]
    for response in errors:
        assert 400 <= response.status_code < 500 and CANARY not in response.text
    assert CANARY not in c.post("/v1/sys/unseal", json={"passphrase": CANARY}).text  # unsealed: a no-op
    log, audit = server.stderr.read_text(), (server.stderr.parent / "audit.log").read_text()
    assert CANARY not in log and server.token not in log
    assert CANARY not in audit and server.token not in audit
    assert any(json.loads(line)["path"] == "canary/one" for line in audit.splitlines())
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert {"request_id", "method", "path", "status", "duration_ms", "client"} <= set(lines[-1])
    assert any(line["path"] == "/v1/secrets/canary/one" and line["status"] == 200 for line in lines)


def test_workers_share_unseal_and_seal(tmp_path: Path) -> None:
    srv = start_server(["--workers", "2", "--vault", str(tmp_path / "v.db")], tmp_path, expect_token=False)
    try:
        c = httpx.Client(base_url=srv.addr, timeout=10)
        init = c.post("/v1/sys/init", json={"shares": 3, "threshold": 2, "retention_days": 7}).json()
        h = {"X-Kinko-Token": init["root_token"]}
        for share in init["shares"][:2]:
            c.post("/v1/sys/unseal", json={"share": share}, headers={"connection": "close"})
        c.put("/v1/secrets/w/s", json={"value": "v"}, headers=h)
        codes = [httpx.get(srv.addr + "/v1/secrets/w/s", headers=h).status_code for _ in range(40)]
        assert codes == [200] * 40
        pids = {json.loads(x)["pid"] for x in srv.stderr.read_text().splitlines() if x.startswith('{"time"')}
        assert len(pids) == 2  # both workers answered, so both were unsealed
        os.kill(min(pids), signal.SIGKILL)  # a crashed worker is replaced, and the new one catches up on unseal
        time.sleep(1.0)
        codes = [httpx.get(srv.addr + "/v1/secrets/w/s", headers=h).status_code for _ in range(40)]
        assert codes == [200] * 40
        later = {json.loads(x)["pid"] for x in srv.stderr.read_text().splitlines() if x.startswith('{"time"')}
        assert len(later - pids) == 1
        assert c.post("/v1/sys/seal", headers=h).status_code == 204
        assert {httpx.get(srv.addr + "/v1/secrets/w/s", headers=h).status_code for _ in range(30)} == {503}
    finally:
        assert stop_server(srv.proc) == 0  # graceful: every worker exited cleanly


def test_tls_server_with_ca_file(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    srv = start_server(["--vault", str(tmp_path / "v.db"), "--tls-cert", str(tmp_path / "cert.pem"),
                        "--tls-key", str(tmp_path / "key.pem")], tmp_path, expect_token=False)
    try:
        assert srv.addr.startswith("https://")
        client = Client(srv.addr, ca_file=str(tmp_path / "cert.pem"))
        for _ in range(50):
            try:
                assert client.health() == 501
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("TLS server did not answer")
        with pytest.raises(httpx.HTTPError):
            httpx.get(srv.addr + "/v1/sys/health")  # not trusted without the CA file
    finally:
        stop_server(srv.proc)


def test_remote_token_and_policy_commands(server: Server) -> None:
    kinko(server, "secret", "put", "tok/x", "--value", "readable")
    created = kinko(server, "token", "create", "-p", "secrets-reader", "--ttl", "1h", "-o", "json")
    assert created.returncode == 0, created.stderr
    reader = json.loads(created.stdout)["token"]
    assert kinko(server, "secret", "get", "tok/x", token=reader).stdout == b"readable"
    refused = kinko(server, "secret", "put", "tok/x", "--value", "nope", token=reader)
    assert refused.returncode == 1 and b"permission denied" in refused.stderr
    looked = json.loads(kinko(server, "token", "lookup", "-o", "json", token=reader).stdout)
    assert looked["policies"] == ["secrets-reader"] and reader not in json.dumps(looked)
    assert b"secrets-officer" in kinko(server, "policy", "list").stdout
    assert kinko(server, "token", "revoke", reader).returncode == 0
    assert kinko(server, "secret", "get", "tok/x", token=reader).returncode == 1
