"""A real `kinko server` stops cleanly: signals exit 0, dev vaults are deleted, start-up failures are one line."""

from __future__ import annotations

import datetime
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import KINKO, start_server, stop_server


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A private TMPDIR for the server, so every `kinko-dev-*` dir it makes (or leaves) is visible here."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    yield tmp, {"TMPDIR": str(tmp)}


def run_server(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([*KINKO, "server", *args], env={**os.environ, **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_dev_server_with_0_and_deletes_its_vault(
        tmp_path: Path, tmpdir_env: tuple[Path, dict[str, str]], signum: int, workers: str) -> None:
    tmp, env = tmpdir_env
    srv = start_server(["--dev", "--workers", workers], tmp_path, env=env)
    (dev_dir,) = tmp.glob("kinko-dev-*")
    assert (dev_dir / "unseal.key").is_file() and (dev_dir / "vault.db").is_file()
    assert httpx.get(srv.addr + "/v1/sys/health", timeout=5).status_code == 200
    srv.proc.send_signal(signum)
    try:
        code = srv.proc.wait(timeout=15)
    finally:
        stop_server(srv.proc)
    err = srv.stderr.read_text()
    assert code == 0, err
    assert "Aborted!" not in err and "Traceback" not in err
    assert list(tmp.iterdir()) == []  # the key file and the vault are gone with the server


def test_second_server_on_a_busy_port_fails_with_one_line_and_leaves_nothing(
        tmp_path: Path, tmpdir_env: tuple[Path, dict[str, str]]) -> None:
    tmp, env = tmpdir_env
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_server(["--dev", "--listen", f"127.0.0.1:{port}"], env, tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "already in use" in lines[0].lower()
    assert str(port) in lines[0]
    assert "Root token" not in result.stdout and "listening" not in result.stderr
    assert list(tmp.iterdir()) == []


def write_tls(tmp: Path) -> tuple[Path, Path, Path]:
    """A self-signed cert, its key, and an unrelated key, generated now (no key material in the repo)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
    paths = tmp / "tls.crt", tmp / "tls.key", tmp / "other.key"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(pem_key(key))
    paths[2].write_bytes(pem_key(other))
    return paths


@pytest.mark.parametrize(("flags", "message"), [
    (["--tls-cert", "tls.key", "--tls-key", "tls.crt"], "--tls-cert tls.key is not a PEM certificate"),
    (["--tls-cert", "tls.crt", "--tls-key", "tls.crt"], "--tls-key tls.crt is not a PEM private key"),
    (["--tls-cert", "tls.crt", "--tls-key", "other.key"], "--tls-key does not match --tls-cert"),
])
def test_bad_tls_files_fail_before_listening_naming_the_file(
        tmp_path: Path, tmpdir_env: tuple[Path, dict[str, str]], flags: list[str], message: str) -> None:
    tmp, env = tmpdir_env
    write_tls(tmp_path)
    with socket.socket() as probe:  # a free port, so a bind that happened would be visible as "listening"
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_server(["--dev", "--listen", f"127.0.0.1:{port}", *flags], env, tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: invalid_input: {message}"]
    assert "BEGIN" not in result.stderr and "listening" not in result.stderr
    assert list(tmp.iterdir()) == []


def test_missing_audit_directory_fails_before_listening(tmp_path: Path) -> None:
    done = subprocess.run([*KINKO, "server", "--dev", "--listen", "127.0.0.1:0", "--audit-file",
                           str(tmp_path / "missing" / "dir" / "audit.log")], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: audit_failed: ") and "missing/dir" in lines[0]
    assert "listening" not in done.stderr + done.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_an_in_flight_request_finish(
        tmp_path: Path, tmpdir_env: tuple[Path, dict[str, str]], workers: str) -> None:
    tmp, env = tmpdir_env
    srv = start_server(["--dev", "--workers", workers], tmp_path, env=env)
    host, port = srv.addr.removeprefix("http://").split(":")
    body = b'{"value": "still-written"}'
    try:
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(f"PUT /v1/secrets/inflight/x HTTP/1.1\r\nHost: {host}\r\nX-Kinko-Token: {srv.token}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            conn.sendall(body[:5])  # the request is now in flight: headers read, body incomplete
            time.sleep(0.3)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert srv.proc.poll() is None  # still waiting for the request
            conn.sendall(body[5:])
            response = conn.recv(4096)
        assert response.startswith(b"HTTP/1.1 200"), response[:100]
        assert srv.proc.wait(timeout=15) == 0
    finally:
        stop_server(srv.proc)
    assert list(tmp.iterdir()) == []


def test_stop_signal_while_starting_still_deletes_the_dev_vault(
        tmp_path: Path, tmpdir_env: tuple[Path, dict[str, str]]) -> None:
    import os

    tmp, env = tmpdir_env
    proc = subprocess.Popen([*KINKO, "server", "--dev", "--listen", "127.0.0.1:0"], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not any(tmp.glob("kinko-dev-*")) and time.monotonic() < deadline:  # handler is in place by now
        time.sleep(0.001)
    proc.send_signal(signal.SIGTERM)  # lands while the vault is created or the server is starting
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert list(tmp.iterdir()) == []
