"""Commands kinko starts (`kinko run`, the agent's exec hook) never inherit kinko's own credentials."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.deliver.agent import Agent, AgentConfig
from tests.conftest import new_keyfile_vault

KINKO = str(Path(sys.executable).with_name("kinko"))
CREDS = {"KINKO_TOKEN": "tok-canary-77", "KINKO_PASSPHRASE": "pass-canary-77", "KINKO_UNSEAL_SHARES": "share-canary",
         "KINKO_BASELINE_KEY": "ab" * 32}
DUMP = "import os, sys; print(' '.join(os.environ.get(n, '<unset>') for n in sys.argv[1:]))"


@pytest.fixture(scope="module")
def vault_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vault")
    vault = new_keyfile_vault(directory, time.time)
    vault.put(Caller.local_operator(), "app/db", b"db-url")
    vault.close()
    return directory / "vault.db"


def run(vault: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINKO_")}
    env.update(CREDS, HOME=str(vault.parent), OTHER_VAR="kept")
    return subprocess.run([KINKO, "run", "-q", "--vault", str(vault), *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_kinko_run_child_does_not_inherit_credentials(vault_file: Path) -> None:
    result = run(vault_file, "--env", "DB=app/db", "--", sys.executable, "-c", DUMP, *CREDS, "OTHER_VAR", "DB")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["<unset>"] * len(CREDS) + ["kept", "db-url"]


def test_an_explicit_env_mapping_of_a_credential_name_is_delivered(vault_file: Path) -> None:
    result = run(vault_file, "--env", "KINKO_TOKEN=app/db", "--", sys.executable, "-c", DUMP, *CREDS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["db-url"] + ["<unset>"] * (len(CREDS) - 1)


def test_agent_hook_does_not_inherit_credentials(tmp_path: Path) -> None:
    environ = {**os.environ, **CREDS, "OTHER_VAR": "kept"}  # the agent process's environment
    out = tmp_path / "hook.out"
    code = f"import os, sys; open({str(out)!r}, 'w').write(' '.join(os.environ.get(n, '-') for n in sys.argv[1:]))"
    config = AgentConfig("http://127.0.0.1:1", (), exec_command=(sys.executable, "-c", code, *CREDS, "OTHER_VAR"))
    Agent(config, environ=environ).run_hook()
    assert out.read_text().split() == ["-"] * len(CREDS) + ["kept"]
