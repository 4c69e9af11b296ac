"""Fixtures: an in-process app over a real vault file, and a real `kinko server` subprocess on a free port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from kinko.api.app import create_app
from kinko.api.auth import FailureLimiter
from kinko.crypto.seal import SealType
from kinko.vault import Vault, open_vault

KINKO = [str(Path(sys.executable).parent / "kinko")]


@dataclass
class Local:
    vault: Vault
    token: str
    client: TestClient

    @property
    def auth(self) -> dict[str, str]:
        return {"X-Kinko-Token": self.token}


def keyfile_vault(tmp: Path) -> tuple[Vault, str]:
    vault = open_vault(tmp / "vault.db", create=True)
    result = vault.init(seal=SealType.KEY_FILE, key_file=tmp / "unseal.key", retention_days=7)
    vault.auto_unseal()
    return vault, result.root_token


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    vault, token = keyfile_vault(tmp_path)
    with TestClient(create_app(vault, limiter=FailureLimiter(limit=10_000)), raise_server_exceptions=False) as c:
        yield Local(vault, token, c)
    vault.close()


@dataclass
class Server:
    addr: str
    token: str
    stderr: Path
    proc: subprocess.Popen[bytes]

    @property
    def auth(self) -> dict[str, str]:
        return {"X-Kinko-Token": self.token}


def start_server(args: list[str], workdir: Path, env: dict[str, str] | None = None,
                 expect_token: bool = True) -> Server:
    """Run `kinko server ARGS --listen 127.0.0.1:0`; the server prints its real address once bound."""
    stdout, stderr = workdir / "server.out", workdir / "server.err"
    proc = subprocess.Popen(
        [*KINKO, "server", "--listen", "127.0.0.1:0", *args], stdout=stdout.open("wb"), stderr=stderr.open("wb"),
        env={**os.environ, **(env or {})}, cwd=workdir, start_new_session=True,
    )
    deadline = time.monotonic() + 20
    addr = token = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"listening on (https?://[0-9.]+:\d+)", stderr.read_text())
        addr = found.group(1) if found else None
        match = re.search(r"Root token: (\S+)", stdout.read_text())
        token = match.group(1) if match else None
        if addr and (token or not expect_token):
            try:
                if "https" in addr or httpx.get(addr + "/v1/sys/health", timeout=1).status_code in (200, 501, 503):
                    return Server(addr, token or "", stderr, proc)
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    stop_server(proc)
    raise RuntimeError("server did not start: " + stderr.read_text()[-2000:])


def stop_server(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("server")
    args = ["--dev", "--log-level", "info", "--audit-file", str(work / "audit.log")]
    srv = start_server(args, work, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    yield srv
    stop_server(srv.proc)
