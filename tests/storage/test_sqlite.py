"""SQLite store: WAL + synchronous=FULL, schema migrations, CAS, pruning, private file modes, corrupt files."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.errors import AlreadyExists, AlreadyInitialized, CorruptVault, NotFound, VersionConflict
from kinko.storage.interface import SecretRow, VersionRow
from kinko.storage.sqlite import MIGRATIONS, SqliteStore
from kinko.vault import open_vault
from tests.conftest import FixedClock, dump_db, new_keyfile_vault


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


# -- operations ---------------------------------------------------------------------------------------------------


def test_meta_init_swap_delete(store: SqliteStore) -> None:
    store.init_meta({"a": b"1", "b": b"2"})
    with pytest.raises(AlreadyInitialized):
        store.init_meta({"c": b"3"})
    assert store.get_meta("c") is None
    assert not store.swap_meta("a", b"wrong", b"9") and store.get_meta("a") == b"1"
    assert store.swap_meta("a", b"1", b"9") and store.get_meta("a") == b"9"
    assert store.swap_meta("new", None, b"x") and store.get_meta("new") == b"x"
    store.delete_meta("new")
    assert store.get_meta("new") is None


def test_write_version_check_and_set(store: SqliteStore) -> None:
    _write(store, "a/b", 1, 0)
    before = dump_db(store.path)
    with pytest.raises(VersionConflict):
        _write(store, "a/b", 2, 0)  # must-not-exist, but it does
    with pytest.raises(VersionConflict):
        _write(store, "a/b", 2, 5)
    with pytest.raises(VersionConflict):
        _write(store, "a/b", 3, 1)  # a version number that skips one is a lost race, not a write
    assert dump_db(store.path) == before
    _write(store, "a/b", 2, 1)
    _write(store, "a/b", 3, None)
    secret = store.get_secret("a/b")
    assert secret is not None and secret.current_version == 3


def test_max_versions_pruning_in_same_write(store: SqliteStore) -> None:
    for v in range(1, 6):
        _write(store, "a/b", v, None, keep=2)
    assert [r.version for r in store.list_versions("a/b")] == [4, 5]
    assert store.get_version("a/b", 3) is None


def test_deleted_secret_refuses_writes_and_purge_removes_versions(store: SqliteStore) -> None:
    _write(store, "a/b", 1, None)
    store.set_deleted("a/b", 10.0, 20.0, "tag")
    with pytest.raises(AlreadyExists):
        _write(store, "a/b", 2, None)
    assert [s.path for s in store.list_secrets("", deleted=True)] == ["a/b"]
    assert store.list_secrets("", deleted=False) == []
    store.purge("a/b")
    assert store.get_secret("a/b") is None and store.list_versions("a/b") == []
    with pytest.raises(NotFound):
        store.purge("a/b")


def test_list_secrets_prefix_does_not_treat_like_wildcards(store: SqliteStore) -> None:
    for path in ("a_b/x", "axb/y", "a_b", "a_bc/z"):
        _write(store, path, 1, None)
    assert [s.path for s in store.list_secrets("a_b", deleted=False)] == ["a_b", "a_b/x"]


def test_restore_refuses_taken_path(store: SqliteStore) -> None:
    _write(store, "a/b", 1, None)
    with pytest.raises(AlreadyExists):
        store.restore(SecretRow("a/b", 1, 0, 1.0, 1.0), [_version("a/b", 1)])
    store.restore(SecretRow("c/d", 2, 0, 1.0, 1.0), [_version("c/d", 1), _version("c/d", 2)])
    assert [r.version for r in store.list_versions("c/d")] == [1, 2]


def test_versions_below_term(store: SqliteStore) -> None:
    _write(store, "a/b", 1, None)
    assert [r.version for r in store.versions_below_term(2, 10)] == [1]
    assert store.versions_below_term(1, 10) == []


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
