"""Remote mode against a real `kinko server`: path safety, `operator` through the server, TLS errors, agent denials."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from kinko.client import Client
from kinko.errors import PermissionDenied
from tests.api.conftest import KINKO, Server, start_server, stop_server


def kinko(addr: str, *args: str, token: str = "", home: Path | None = None, stdin: bytes | None = None,
          **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KINKO_ADDR": addr, "KINKO_TOKEN": token, **extra_env}
    env.pop("KINKO_VAULT", None)
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run([*KINKO, *args], env=env, capture_output=True, input=stdin.decode() if stdin else "",
                          timeout=30, text=True)


def error_line(done: subprocess.CompletedProcess[str], code: str, exit_code: int = 1) -> str:
    assert done.returncode == exit_code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), done.stderr
    return lines[0].removeprefix(f"error: {code}: ")


# -- a path is never re-routed to another secret -----------------------------------------------------------------
def test_remote_paths_cannot_reach_another_secret(server: Server) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return kinko(server.addr, *args, token=server.token)

    assert run("secret", "put", "team/tmp/victim", "--value", "keep-me").returncode == 0
    assert run("secret", "put", "team/app/x", "--value", "original").returncode == 0
    error_line(run("secret", "delete", "team/tmp/victim#x"), "invalid_path")
    error_line(run("secret", "put", "team/app/x?version=2", "--value", "overwritten"), "invalid_path")
    error_line(run("secret", "put", "team/./y", "--value", "v"), "invalid_path")
    error_line(run("secret", "put", "team/app/../x", "--value", "v"), "invalid_path")
    assert run("secret", "get", "team/tmp/victim").stdout == "keep-me"
    assert run("secret", "get", "team/app/x").stdout == "original"
    assert json.loads(run("secret", "versions", "team/app/x", "-o", "json").stdout)[0]["version"] == 1
    error_line(run("secret", "get", "team/y"), "not_found")
    error_line(run("secret", "get", "team/x"), "not_found")
    # Every character a valid path may hold still round-trips.
    assert run("secret", "put", "team/A.b_c-9/x.y", "--value", "ok").returncode == 0
    assert run("secret", "get", "team/A.b_c-9/x.y").stdout == "ok"
    assert run("secret", "list", "team/A.b_c-9").stdout.split() == ["x.y"]


@pytest.mark.parametrize("raw", ["team/%2e%2e/x", "team/%2E%2e", "team/%2e/x", "team/a%23b", "team/a%3Fversion%3D2",
                                 "team/a%20b", "sys/x"])
def test_server_rejects_encoded_bad_segments(server: Server, raw: str) -> None:
    with httpx.Client(base_url=server.addr, headers=server.auth) as http:
        for method in ("PUT", "GET", "DELETE"):
            body = {"value": "v"} if method == "PUT" else None
            answer = http.request(method, f"/v1/secrets/{raw}", json=body)
            assert answer.status_code == 400, (method, raw, answer.text)
            assert answer.json()["error"]["code"] == "invalid_path"


# -- operator commands go to the server --------------------------------------------------------------------------
def test_operator_init_unseal_rotate_seal_through_the_server(tmp_path: Path) -> None:
    srv = start_server(["--vault", str(tmp_path / "server.db")], tmp_path, expect_token=False)
    home = tmp_path / "home"
    home.mkdir()
    try:
        error_line(kinko(srv.addr, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"),
                         home=home), "usage", exit_code=2)
        done = kinko(srv.addr, "operator", "init", "--shares", "3", "--threshold", "2", "-o", "json", home=home)
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        shares, token = doc["unseal_shares"], doc["root_token"]
        assert len(shares) == 3 and doc["threshold"] == 2 and token.startswith("kinko_root_")
        assert not (home / ".kinko").exists()  # no local vault was created
        status = json.loads(kinko(srv.addr, "operator", "status", "-o", "json", home=home).stdout)
        assert status["initialized"] is True and status["sealed"] is True and status["vault_id"] == doc["vault_id"]
        # A second init is refused as Vault refuses it, sealed or not, with or without a token.
        error_line(kinko(srv.addr, "operator", "init", token=token, home=home), "already_initialized")
        error_line(kinko(srv.addr, "operator", "init", home=home), "already_initialized")

        partial = kinko(srv.addr, "operator", "unseal", shares[0], home=home)
        assert partial.returncode == 0 and partial.stdout.strip() == "unseal progress 1/2", partial.stderr
        done = kinko(srv.addr, "operator", "unseal", "-o", "json", home=home, stdin=f"{shares[2]}\n".encode())
        assert done.returncode == 0 and json.loads(done.stdout)["sealed"] is False, done.stderr
        assert "sealed: false" in kinko(srv.addr, "operator", "status", home=home).stdout
        error_line(kinko(srv.addr, "operator", "init", token=token, home=home), "already_initialized")

        assert kinko(srv.addr, "secret", "put", "a/b", "--value", "v", token=token, home=home).returncode == 0
        rotated = kinko(srv.addr, "operator", "rotate", "-o", "json", token=token, home=home)
        assert json.loads(rotated.stdout) == {"key_term": 2, "rewrapped": 1}, rotated.stderr
        assert kinko(srv.addr, "operator", "seal", token=token, home=home).returncode == 0
        error_line(kinko(srv.addr, "secret", "get", "a/b", token=token, home=home), "sealed")
        assert json.loads(kinko(srv.addr, "operator", "status", "-o", "json", home=home).stdout)["sealed"] is True
    finally:
        stop_server(srv.proc)


# -- TLS failures name their cause -------------------------------------------------------------------------------
def _certificate(tmp: Path, dns_name: str) -> tuple[Path, Path]:
    """A self-signed CA certificate valid only for `dns_name` (not for 127.0.0.1)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_tls_errors_say_why(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path, "kinko.example")
    srv = start_server(["--vault", str(tmp_path / "v.db"), "--tls-cert", str(cert), "--tls-key", str(key)],
                       tmp_path, expect_token=False)
    try:
        deadline = time.monotonic() + 15
        while True:  # wait until the TLS listener answers (it is trusted for kinko.example only)
            try:
                httpx.get(srv.addr + "/v1/sys/health", verify=False, timeout=1)  # probe only
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "TLS server did not answer"
                time.sleep(0.1)
        untrusted = error_line(kinko(srv.addr, "secret", "list"), "tls_error")
        assert "certificate verify failed" in untrusted and "self-signed" in untrusted
        assert "KINKO_CACERT" in untrusted and "--ca-file" in untrusted
        mismatch = error_line(kinko(srv.addr, "secret", "list", KINKO_CACERT=str(cert)), "tls_error")
        assert "certificate verify failed" in mismatch and "mismatch" in mismatch and "127.0.0.1" in mismatch
        plain = error_line(kinko(srv.addr.replace("https://", "http://"), "secret", "list"), "unreachable")
        assert "https://" in plain
    finally:
        stop_server(srv.proc)


# -- the agent names the path it was refused ----------------------------------------------------------------------
def test_agent_denial_names_the_path(server: Server, tmp_path: Path) -> None:
    from kinko.deliver.agent import Fetcher, load_config

    admin = Client(server.addr, server.token)
    try:
        admin.request("PUT", "sys/policies/f1-app", json={"rules": [{"path": "f1app/*", "capabilities": ["read"]}]})
        admin.request("PUT", "secrets/f1other/x", json={"value": "CANARY-f1-denied"})
        token = str(admin.request("POST", "auth/token/create", json={"policies": ["f1-app"]})["token"])
    finally:
        admin.close()
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump({
        "address": server.addr, "token_file": "token",
        "files": [{"path": "f1other/x", "destination": "out", "name": "x"}]}))
    fetcher = Fetcher(load_config(tmp_path / "agent.yaml", env={}))
    try:
        with pytest.raises(PermissionDenied) as caught:
            fetcher.fetch(["f1other/x"])
    finally:
        fetcher.close()
    assert "'f1other/x'" in str(caught.value) and "CANARY" not in str(caught.value)
