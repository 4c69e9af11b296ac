"""Helpers for the CLI tests: `run` through click's CliRunner, `kinko` as a real process, error-line checks, and
environments that keep a command local (KINKO_ADDR cleared, HOME private) or point it at a closed port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kinko.cli import cli

KINKO = str(Path(sys.executable).with_name("kinko"))


def run(env: dict[str, str], *args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def kinko(env: dict[str, str], *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, **env}
    return subprocess.run([KINKO, *args], input=stdin, capture_output=True, env=full, timeout=30, check=False)


def one_error_line(result: Result, code: str) -> None:
    """A failure: exit 1 and exactly one line `error: <code>: <message>` on stderr."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), result.stderr


def error_line(result: Result, code: str, exit_code: int = 1) -> str:
    """Exactly one line `error: <code>: <message>` on stderr and the given exit status; returns the message."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), result.stderr
    assert not lines[0].startswith("error: error:")
    return lines[0].removeprefix(f"error: {code}: ")


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    """A local vault path (not created yet); KINKO_ADDR is cleared and HOME is private, so no server or stored
    token from the surrounding environment is used."""
    return {"KINKO_VAULT": str(tmp_path / "v.db"), "KINKO_ADDR": "", "HOME": str(tmp_path)}


@pytest.fixture
def keyfile_env(local_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """`local_env` with a key-file vault initialised in it (auto-unsealed by every command)."""
    assert run(local_env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k")).exit_code == 0
    return local_env


@pytest.fixture
def closed_addr() -> str:
    """An address nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
