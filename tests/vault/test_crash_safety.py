"""kill -9 in the middle of many writes: the vault opens, passes integrity_check and holds every acknowledged write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kinko.core.model import Caller
from kinko.vault import open_vault
from tests.conftest import FixedClock, integrity_problems, new_keyfile_vault

# The writer prints "path version" only AFTER put returned (the write is acknowledged), then flushes.
WRITER = """
import sys
from kinko.core.model import Caller
from kinko.vault import open_vault

vault = open_vault(sys.argv[1])
caller = Caller.local_operator()
i = 0
while True:
    path = f"crash/s{i % 40}"
    info = vault.put(caller, path, f"value-{i}".encode() * 20)
    print(path, info.version, i, flush=True)
    i += 1
"""

ACKS_BEFORE_KILL = 120


def _run_and_kill(db: Path, script: Path) -> dict[tuple[str, int], int]:
    """Start the writer, SIGKILL it after some acknowledgements; return {(path, version): i} acknowledged."""
    proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True)
    acked: dict[tuple[str, int], int] = {}
    deadline = time.monotonic() + 12
    assert proc.stdout is not None
    try:
        while len(acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            path, version, i = line.split()
            acked[(path, int(version))] = int(i)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-write: the writer never stops on its own
        proc.wait(timeout=10)
        # lines already in the pipe were acknowledged before the kill, so they must be durable too
        for line in proc.stdout.read().splitlines():
            parts = line.split()
            if len(parts) == 3:
                acked[(parts[0], int(parts[1]))] = int(parts[2])
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return acked


def test_kill_9_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    new_keyfile_vault(tmp_path, FixedClock()).close()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "vault.db"
    acked = _run_and_kill(db, script)
    assert len(acked) >= 40, "the writer did not get far enough to make the test meaningful"

    assert integrity_problems(db) == []  # PRAGMA integrity_check: ok
    vault = open_vault(db)  # opens (key file auto-unseal) after the crash
    caller = Caller.local_operator()
    for (path, version), i in acked.items():
        assert vault.get(caller, path, version).value == f"value-{i}".encode() * 20, (path, version)
    # the vault is still writable and consistent after recovery
    assert vault.put(caller, "crash/after", b"ok").version == 1
    vault.close()
