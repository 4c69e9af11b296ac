"""A real OCI registry on loopback for tests: Debian's `docker-registry` (distribution 2.8) started per test, in
one of three modes — anonymous, htpasswd (Basic) or token auth (Bearer, with a token service run here that signs
JWTs the registry verifies against our own CA) — and images pushed into it with `skopeo copy`, as a user would."""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import secrets
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Mode = Literal["anonymous", "basic", "bearer"]
SERVICE, ISSUER = "kinko-test-registry", "kinko-test-issuer"


def tools() -> tuple[str, str]:
    """The registry and skopeo binaries, or skip naming what to install."""
    registry, skopeo = shutil.which("docker-registry"), shutil.which("skopeo")
    if registry is None or skopeo is None:
        pytest.skip("needs Debian's docker-registry and skopeo (apt-get install docker-registry skopeo)")
    return registry, skopeo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    user: str = ""
    password: str = ""

    def push(self, archive: Path, name: str, *, fmt: str = "docker-archive", extra: tuple[str, ...] = ()) -> str:
        """`skopeo copy` the archive to host/name; returns the pushed manifest's digest."""
        _, skopeo = tools()
        cmd = [skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "--digestfile", str(archive) + ".d"]
        cmd += extra
        if self.user:
            cmd += ["--dest-creds", f"{self.user}:{self.password}"]
        subprocess.run([*cmd, f"{fmt}:{archive}", f"docker://{self.host}/{name}"], check=True, capture_output=True)
        return Path(str(archive) + ".d").read_text().strip()

    def docker_config(self, folder: Path, password: str | None = None) -> Path:
        """A Docker client config.json holding this registry's login (as `docker login` writes it)."""
        folder.mkdir(parents=True, exist_ok=True)
        pair = f"{self.user}:{self.password if password is None else password}".encode()
        auths = {self.host: {"auth": base64.b64encode(pair).decode()}}
        (folder / "config.json").write_text(json.dumps({"auths": auths}))
        return folder


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # glibc's crypt(3) makes the $2b$ hashes the registry's htpasswd wants

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def _signing_cert(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kinko test token issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))  # fmt: skip
    (folder / "issuer.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@contextmanager
def _token_service(key: ec.EllipticCurvePrivateKey, x5c: str, user: str, password: str) -> Iterator[str]:
    """The token endpoint of the distribution auth spec: Basic login in, an ES256 JWT granting the scope out."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {pair}":
                self.send_response(401)
                self.end_headers()
                return
            query = httpx.URL(self.path).params
            access = []
            for scope in query.get_list("scope"):
                kind, name, actions = scope.split(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
            now = int(time.time())
            claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "iat": now, "nbf": now - 60, "exp": now + 600,
                      "jti": secrets.token_hex(8), "access": access}  # fmt: skip
            token = jwt.encode(claims, key, algorithm="ES256", headers={"x5c": [x5c]})
            body = json.dumps({"token": token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running_registry(folder: Path, mode: Mode = "anonymous") -> Iterator[Registry]:
    """Start docker-registry on a free loopback port (storage under `folder`); stop it on exit."""
    binary, _ = tools()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    registry = Registry(f"127.0.0.1:{port}")
    lines = ["version: 0.1", "log:", "  level: error", "storage:", "  filesystem:",
             f"    rootdirectory: {folder / 'data'}", "http:", f"  addr: 127.0.0.1:{port}"]  # fmt: skip
    with _auth_config(folder, mode, registry) as auth:
        (folder / "config.yml").write_text("\n".join(lines + auth) + "\n")
        log = (folder / "registry.log").open("wb")
        proc = subprocess.Popen([binary, "serve", str(folder / "config.yml")], stdout=log, stderr=log)
        try:
            _wait_ready(registry.host, proc, folder / "registry.log")
            yield registry
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


@contextmanager
def _auth_config(folder: Path, mode: Mode, registry: Registry) -> Iterator[list[str]]:
    if mode == "anonymous":
        yield []
        return
    registry.user, registry.password = "ci-bot", secrets.token_urlsafe(12)
    if mode == "basic":
        (folder / "htpasswd").write_text(f"{registry.user}:{_bcrypt(registry.password)}\n")
        yield ["auth:", "  htpasswd:", "    realm: kinko-test", f"    path: {folder / 'htpasswd'}"]
        return
    key, x5c = _signing_cert(folder)
    with _token_service(key, x5c, registry.user, registry.password) as realm:
        yield ["auth:", "  token:", f"    realm: {realm}", f"    service: {SERVICE}", f"    issuer: {ISSUER}",
               f"    rootcertbundle: {folder / 'issuer.pem'}"]  # fmt: skip


def _wait_ready(host: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://{host}/v2/", timeout=1).status_code in (200, 401):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("docker-registry did not start in 20 s")
