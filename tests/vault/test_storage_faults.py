"""Storage faults on real filesystems and real locks: a full disk, a lock held by another process. A failing write
is reported with a clear error, every earlier write is intact, and the vault works again once the cause is gone."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.errors import StorageBusy, StorageFull
from kinko.storage.sqlite import SqliteStore
from kinko.vault import SealType, Vault, open_vault
from tests.conftest import FixedClock, integrity_problems, resize_filesystem, small_filesystem

ROOT = Caller.local_operator()


def test_a_full_disk_fails_the_write_clearly_and_loses_nothing(tmp_path: Path, clock: FixedClock) -> None:
    with small_filesystem(tmp_path / "disk", "640k") as disk:
        vault = open_vault(disk / "vault.db", create=True, clock=clock)
        vault.init(seal=SealType.KEY_FILE, key_file=tmp_path / "key")  # the key lives elsewhere
        vault.unseal(key_file=tmp_path / "key")
        written: dict[str, bytes] = {}
        with pytest.raises(StorageFull, match="full") as caught:
            for index in range(400):
                value = os.urandom(8 * 1024)
                vault.put(ROOT, f"fill/s{index}", value)
                written[f"fill/s{index}"] = value  # acknowledged
        assert "not a readable kinko vault" not in caught.value.message and len(written) > 5
        for path, value in written.items():  # the same process still reads every acknowledged write
            assert vault.get(ROOT, path).value == value
        vault.close()
        again = open_vault(disk / "vault.db", clock=clock)  # reopens on the full disk (auto-unseal by key file)
        assert all(again.get(ROOT, path).value == value for path, value in written.items())
        assert integrity_problems(disk / "vault.db") == []
        resize_filesystem(disk, "4m")  # space returns: writes work again
        again.put(ROOT, "fill/after", b"room again")
        assert again.get(ROOT, "fill/after").value == b"room again"
        again.close()


LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # holds the write lock until killed
print("locked", flush=True)
time.sleep(60)
"""


def test_a_write_lock_held_elsewhere_is_a_bounded_clear_error_and_reads_go_on(tmp_path: Path,
                                                                              clock: FixedClock) -> None:
    db = tmp_path / "vault.db"
    vault = Vault(SqliteStore(db, busy_timeout=0.5), clock=clock)
    vault.init(seal=SealType.KEY_FILE, key_file=tmp_path / "key")
    vault.unseal(key_file=tmp_path / "key")
    vault.put(ROOT, "lock/a", b"before")
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(StorageBusy, match="locked by another process"):
            vault.put(ROOT, "lock/a", b"during")
        assert time.monotonic() - started < 5  # bounded: the busy timeout, never a hang
        assert vault.get(ROOT, "lock/a").value == b"before"  # readers are not blocked (WAL)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    vault.put(ROOT, "lock/a", b"after")  # the lock is gone: the write goes through
    assert vault.get(ROOT, "lock/a").value == b"after"
    vault.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM versions WHERE path = 'lock/a'").fetchone()[0] == 2
    conn.close()
