"""SQLite store: WAL + synchronous=FULL, schema migrations, private file modes, corrupt files (the operations both
engines share are in test_store.py)."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.errors import CorruptVault, NotFound
from kinko.storage.interface import SecretRow, VersionRow
from kinko.storage.sql import MIGRATIONS
from kinko.storage.sqlite import SqliteStore
from kinko.vault import open_vault
from tests.conftest import FixedClock, new_keyfile_vault


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store.db")
    yield s
    s.close()


def _version(path: str, version: int, ct: bytes = b"ct") -> VersionRow:
    return VersionRow(path=path, version=version, value_ct=ct, key_term=1, enabled=True, not_before=None,
                      expires=None, content_type="text", tags_json="{}", created=1.0, updated=1.0)


def _write(store: SqliteStore, path: str, version: int, expected: int | None, keep: int = 0) -> None:
    store.write_version(SecretRow(path, version, keep, 1.0, 1.0), _version(path, version), expected)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- durability settings -----------------------------------------------------------------------------------------


def test_wal_and_synchronous_full(store: SqliteStore) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    conn.close()
    # synchronous is per connection, so ask the store's own connection (private, but it is the thing under test)
    assert store._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # 2 = FULL


def test_db_wal_and_shm_are_created_0600_even_with_open_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        vault = new_keyfile_vault(tmp_path, FixedClock())
        vault.put(Caller.local_operator(), "a/b", b"v")
        files = [tmp_path / name for name in ("vault.db", "vault.db-wal", "vault.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert _mode(tmp_path / "vault.db.key") == 0o400
        vault.close()
    finally:
        os.umask(old)


# -- schema versions ----------------------------------------------------------------------------------------------


def _schema_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
    finally:
        conn.close()


def test_new_file_is_at_latest_schema_and_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    _write(store, "a/b", 1, 0)
    store.close()
    assert _schema_version(path) == len(MIGRATIONS)
    again = SqliteStore(path, create=False)
    assert again.get_secret("a/b") is not None and _schema_version(path) == len(MIGRATIONS)
    again.close()


@pytest.mark.parametrize("start", range(1, len(MIGRATIONS) + 1))
def test_older_schema_is_migrated_forward(tmp_path: Path, start: int) -> None:
    """A file written by an older kinko (first `start` migrations applied) opens and reaches the latest schema."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (start,))
    for script in MIGRATIONS[:start]:
        conn.executescript(script)
    conn.execute("INSERT INTO meta (key, value) VALUES ('marker', x'01')")
    conn.close()
    store = SqliteStore(path, create=False)
    assert store.get_meta("marker") == b"\x01"
    store.close()
    assert _schema_version(path) == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    conn.close()
    with pytest.raises(CorruptVault, match="newer"):
        SqliteStore(path, create=False)


def test_missing_file_without_create_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        SqliteStore(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


# -- bad files ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [
    b"this is a text file, not a database\n",
    os.urandom(8192),
    b"SQLite format 3\x00" + b"\xff" * 4080,
])
def test_file_that_is_not_sqlite_gives_clear_error_and_is_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(CorruptVault) as err:
        open_vault(path)
    assert err.value.code == "corrupt_vault" and "not a readable kinko vault" in err.value.message
    assert path.read_bytes() == content


def _filled_vault(tmp_path: Path) -> Path:
    vault = new_keyfile_vault(tmp_path, FixedClock())
    caller = Caller.local_operator()
    for i in range(150):
        vault.put(caller, f"p/s{i}", os.urandom(200))
    vault.close()
    return tmp_path / "vault.db"


@pytest.mark.parametrize("damage", ["header", "pages", "truncate"])
def test_corrupt_vault_file_raises_corrupt_vault(tmp_path: Path, damage: str) -> None:
    path = _filled_vault(tmp_path)
    size = path.stat().st_size
    with path.open("r+b") as handle:
        if damage == "header":
            handle.write(b"\x00" * 100)
        elif damage == "pages":
            handle.seek(4096)
            handle.write(b"\xa5" * (size - 4096))
        else:
            handle.truncate(size // 2)
    caller = Caller.local_operator()
    with pytest.raises(CorruptVault):
        vault = open_vault(path)
        for i in range(150):
            vault.get(caller, f"p/s{i}")
