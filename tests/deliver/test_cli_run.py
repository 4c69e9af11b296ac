"""`kinko run` through real subprocesses of the installed `kinko` against a real key-file vault."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinko.core.model import Caller
from tests.conftest import new_keyfile_vault

KINKO = str(Path(sys.executable).with_name("kinko"))
CANARY = "canary-3b8e51f0a7"
PRINT_HASHES = ("import hashlib, os, sys; "
                "print(' '.join(hashlib.sha256(os.environ.get(n, '<unset>').encode()).hexdigest()[:16] "
                "for n in sys.argv[1:]))")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def vault_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vault")
    vault = new_keyfile_vault(directory, time.time)
    caller = Caller.local_operator()
    vault.put(caller, "app/db", f"postgres://app:{CANARY}@db/app".encode())
    vault.put(caller, "app/kv", {"user": b"bob", "pass": CANARY.encode()}, content_type="Opaque")
    vault.put(caller, "app/blob", b"\xff" + CANARY.encode())
    vault.close()
    return directory / "vault.db"


def kinko(vault: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINKO_")}
    env["HOME"] = str(vault.parent)
    result = subprocess.run([KINKO, "run", "--vault", str(vault), *args], capture_output=True, text=True,
                            env=env, cwd=cwd, timeout=60)
    assert CANARY not in result.stderr  # kinko itself never prints a value, whatever happens
    return result


def test_child_exit_code_is_kinkos(vault_file: Path) -> None:
    assert kinko(vault_file, "-q", "--env", "DB=app/db", "--", "sh", "-c", "exit 7").returncode == 7
    assert kinko(vault_file, "-q", "--env", "DB=app/db", "--", "true").returncode == 0


def test_child_gets_the_values_and_kinko_prints_none(vault_file: Path) -> None:
    result = kinko(vault_file, "--env", "DB=app/db", "--env", "PW=app/kv#pass", "--env", "U=app/kv#user",
                   "--", sys.executable, "-c", PRINT_HASHES, "DB", "PW", "U")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [digest(f"postgres://app:{CANARY}@db/app"), digest(CANARY), digest("bob")]
    assert CANARY not in result.stdout
    # the warning, exactly once
    assert result.stderr.count("/proc/<pid>/environ") == 1 and "ps e" in result.stderr


def test_quiet_silences_the_warning(vault_file: Path) -> None:
    result = kinko(vault_file, "--quiet", "--env", "DB=app/db", "--", "true")
    assert result.returncode == 0 and result.stderr == ""


def test_child_keeps_the_rest_of_the_environment(vault_file: Path) -> None:
    result = kinko(vault_file, "-q", "--env", "DB=app/db", "--", "sh", "-c", 'echo "$HOME"')
    assert result.stdout.strip() == str(vault_file.parent)


def test_env_file_and_env_options_together(vault_file: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "map.yaml"
    mapping.write_text('DB_URL: "app/db"\nDB_USER: app/kv#user\n')
    result = kinko(vault_file, "-q", "--env-file", str(mapping), "--env", "PW=app/kv#pass",
                   "--", sys.executable, "-c", PRINT_HASHES, "DB_URL", "DB_USER", "PW")
    assert result.stdout.split() == [digest(f"postgres://app:{CANARY}@db/app"), digest("bob"), digest(CANARY)]


def test_command_options_are_not_kinkos(vault_file: Path) -> None:
    # without `--`, everything from the command on belongs to the command, including things that look like options
    result = kinko(vault_file, "-q", "--env", "DB=app/db", "sh", "-c", 'echo "$1"', "sh", "--env")
    assert result.returncode == 0 and result.stdout.strip() == "--env"


@pytest.mark.parametrize(("spec", "words"), [
    ("X=app/kv#nope", "no key 'nope'"),
    ("X=app/kv", "has keys"),
    ("X=app/db#user", "single value"),
    ("X=app/blob", "binary"),
    ("X=app/missing", "app/missing"),
])
def test_any_failure_means_the_child_never_runs(vault_file: Path, tmp_path: Path, spec: str, words: str) -> None:
    marker = tmp_path / "ran"
    result = kinko(vault_file, "--env", "DB=app/db", "--env", spec, "--", "touch", str(marker))
    assert result.returncode == 1
    assert not marker.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert "/proc/" not in result.stderr  # no warning when nothing is injected
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["--env", "1X=app/db"], ["--env", "X"], [], ["--env", "A=app/db", "--env", "A=x"]])
def test_usage_errors_exit_2_without_running(vault_file: Path, tmp_path: Path, args: list[str]) -> None:
    marker = tmp_path / "ran"
    result = kinko(vault_file, *args, "--", "touch", str(marker))
    assert result.returncode == 2 and not marker.exists()


def test_no_vault_is_a_clear_error(tmp_path: Path) -> None:
    result = kinko(tmp_path / "none.db", "--env", "A=app/db", "--", "true")
    assert result.returncode == 1 and "no vault" in result.stderr


def test_missing_command_exits_127(vault_file: Path) -> None:
    result = kinko(vault_file, "-q", "--env", "DB=app/db", "--", "kinko-no-such-command-xyz")
    assert result.returncode == 127 and "command not found" in result.stderr
