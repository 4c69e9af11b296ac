"""SQLite storage: the embedded default. WAL, synchronous=FULL, one transaction per operation."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kinko.errors import (
    AlreadyExists,
    AlreadyInitialized,
    CorruptVault,
    InvalidInput,
    KinkoError,
    NotFound,
    StorageBusy,
    StorageError,
    StorageFull,
    VersionConflict,
)
from kinko.storage.interface import LiveVersion, PolicyEntry, SecretRow, Store, TokenRow, VersionRow

#: Each entry migrates the schema from version i to i+1. Never edit a shipped entry; append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE secrets (
        path TEXT PRIMARY KEY,
        current_version INTEGER NOT NULL,
        max_versions INTEGER NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        deleted REAL,
        scheduled_purge REAL
    ) WITHOUT ROWID;
    CREATE TABLE versions (
        path TEXT NOT NULL REFERENCES secrets(path) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        value_ct BLOB NOT NULL,
        key_term INTEGER NOT NULL,
        enabled INTEGER NOT NULL,
        not_before REAL,
        expires REAL,
        content_type TEXT NOT NULL,
        tags_json TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (path, version)
    );
    CREATE INDEX versions_by_term ON versions(key_term);
    """,
    # 1 -> 2: access control (tokens are stored only as SHA-256 hashes; policies are plain YAML documents).
    """
    CREATE TABLE tokens (
        accessor TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        parent TEXT,
        policies_json TEXT NOT NULL,
        display_name TEXT NOT NULL,
        meta_json TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL,
        max_expires REAL,
        ttl REAL,
        renewable INTEGER NOT NULL,
        num_uses INTEGER NOT NULL,
        uses_left INTEGER NOT NULL
    );
    CREATE INDEX tokens_by_parent ON tokens(parent);
    CREATE TABLE policies (name TEXT PRIMARY KEY, document TEXT NOT NULL, updated REAL NOT NULL);
    CREATE TABLE policy_revision (revision INTEGER NOT NULL);
    INSERT INTO policy_revision (revision) VALUES (0);
    """,
    # 2 -> 3: integrity. Tokens and policies carry an HMAC tag (kinko.access.integrity; NULL = written before:
    # refused on read). Secrets get a random incarnation id bound into value AAD ('' = created before).
    """
    ALTER TABLE tokens ADD COLUMN mac TEXT;
    ALTER TABLE policies ADD COLUMN mac TEXT;
    ALTER TABLE secrets ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
    """,
    # 3 -> 4: secret and version rows carry an integrity tag too (lifecycle state: enabled, validity window,
    # current version, soft delete). NULL = written before; the vault tags those once, when it is next unsealed.
    """
    ALTER TABLE secrets ADD COLUMN mac TEXT;
    ALTER TABLE versions ADD COLUMN mac TEXT;
    """,
]

_VERSION_COLUMNS = (
    "path, version, value_ct, key_term, enabled, not_before, expires, content_type, tags_json, "
    "created, updated"
)
_V_COLUMNS = ", ".join("v." + c.strip() for c in _VERSION_COLUMNS.split(","))
#: A version row as VersionRow reads it: its columns plus the owning secret's incarnation, then its tag.
_VERSION_SELECT = _V_COLUMNS + ", s.incarnation, v.mac FROM versions v JOIN secrets s ON s.path = v.path"
#: The hot read selects exactly LiveVersion's fields, in its order (the incarnation and tag are the secret's).
_LIVE_COLUMNS = {"incarnation": "s.incarnation", "secret_mac": "s.mac"}
_LIVE_SQL = (
    "SELECT " + ", ".join(_LIVE_COLUMNS.get(f, "v." + f) for f in LiveVersion._fields)
    + " FROM secrets s JOIN versions v ON v.path = s.path AND v.version = {match}"
    " WHERE s.path = ? AND s.deleted IS NULL"
)
_LIVE_CURRENT_SQL = _LIVE_SQL.format(match="s.current_version")
_LIVE_VERSION_SQL = _LIVE_SQL.format(match="?")
#: The same row's two integrity tags, concatenated in SQL: one short column, the cheapest "has it changed?".
_TAGS_SQL = ("SELECT s.mac || v.mac FROM secrets s JOIN versions v ON v.path = s.path AND v.version = {match}"
             " WHERE s.path = ? AND s.deleted IS NULL")
_TAGS_CURRENT_SQL = _TAGS_SQL.format(match="s.current_version")
_TAGS_VERSION_SQL = _TAGS_SQL.format(match="?")
_SECRET_COLUMNS = (
    "path, current_version, max_versions, created, updated, deleted, scheduled_purge, incarnation, mac"
)
_TOKEN_COLUMNS = (
    "accessor, token_hash, parent, policies_json, display_name, meta_json, created, expires, max_expires, ttl, "
    "renewable, num_uses, uses_left, mac"
)


def _secret(row: tuple[Any, ...]) -> SecretRow:
    return SecretRow(*row)


def _token(row: tuple[Any, ...]) -> TokenRow:
    values = list(row)
    values[10] = bool(values[10])
    return TokenRow(*values)


def _version(row: tuple[Any, ...]) -> VersionRow:
    return VersionRow._make(row)


#: A NamedTuple from a fetched row without `_make`'s length check (the SELECT lists exactly its fields).
_new_row = tuple.__new__


def _create_private(path: Path, *, create: bool = True) -> None:
    """Create the database file 0600 before SQLite does (SQLite gives its WAL/SHM the same mode), or tighten an
    existing one to 0600. A symlink is refused: SQLite would follow it, so its target's mode (or a file created
    through a dangling link with the umask's mode) would decide who can read the vault.
    """
    if path.is_symlink():
        raise InvalidInput(f"vault path {str(path)!r} is a symbolic link; give the path of the file itself")
    # O_NONBLOCK: a FIFO at the path must not hang us (SQLite then refuses it as not a database).
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | (os.O_CREAT if create else 0), 0o600)
    except FileNotFoundError:
        if create:
            raise
        raise NotFound(f"no vault at {str(path)!r}") from None
    try:
        _tighten(fd)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):  # written by an older kinko with the database's old mode
        side = path.with_name(path.name + suffix)
        with contextlib.suppress(OSError):
            fd = os.open(side, flags)
            try:
                _tighten(fd)
            finally:
                os.close(fd)


def _tighten(fd: int) -> None:
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
        # Best effort: a file we do not own (or on a read-only mount) still opens as before.
        with contextlib.suppress(OSError):
            os.fchmod(fd, stat.S_IMODE(info.st_mode) & 0o600)


#: SQLite result codes (the primary code is the low byte of the extended one).
_FULL, _BUSY, _LOCKED, _READONLY, _IOERR, _CANTOPEN = 13, 5, 6, 8, 10, 14


def _storage_error(exc: sqlite3.DatabaseError, path: Path, busy_timeout: float) -> KinkoError:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    where = f"vault file {str(path)!r}"
    if primary == _FULL:
        return StorageFull(f"the disk holding the {where} is full; nothing was written (free space, then retry)")
    if primary in (_BUSY, _LOCKED):
        return StorageBusy(f"the {where} is locked by another process (waited {busy_timeout:g}s); retry")
    if primary == _READONLY:
        return StorageError(f"the {where} cannot be written (read-only file or filesystem)")
    if primary in (_IOERR, _CANTOPEN):
        return StorageError(f"the {where} cannot be read or written (I/O error)")
    return CorruptVault(f"{where} is not a readable kinko vault")


class SqliteStore(Store):
    def __init__(self, path: str | Path, *, create: bool = True, busy_timeout: float = 10.0) -> None:
        """`busy_timeout`: how long a write waits for another process's write lock before StorageBusy."""
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        _create_private(self.path, create=create)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._marker_conn: sqlite3.Connection | None = None  # reads PRAGMA data_version only; never writes
        self._marker_cursor: sqlite3.Cursor | None = None
        self._marker_lock = threading.Lock()
        with self._guard():
            self._migrate(self._conn())

    # -- connection handling ------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def change_marker(self) -> int | None:
        # data_version changes whenever another connection (this process's other threads included) commits;
        # the marker connection itself never writes, so every commit anywhere changes what it reads.
        with self._marker_lock:
            try:
                cursor = self._marker_cursor or self._open_marker()
                return int(cursor.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.DatabaseError as exc:
                raise _storage_error(exc, self.path, self.busy_timeout) from None

    def _open_marker(self) -> sqlite3.Cursor:
        self._marker_conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._marker_cursor = self._marker_conn.cursor()  # reused: a statement per call, no cursor objects
        return self._marker_cursor

    def _live_cursor(self) -> sqlite3.Cursor:
        cursor: sqlite3.Cursor = self._conn().cursor()
        self._local.cursor = cursor
        return cursor

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's errors as kinko's: a full disk, a lock held too long and an I/O error are not a corrupt
        vault (each names the file and what to do); a transaction that failed was rolled back, nothing half-done."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self.path, self.busy_timeout) from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._guard():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # After a failed COMMIT (a full disk) SQLite may already have rolled back: never mask the cause.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        conn = getattr(self._local, "conn", None) or self._conn()
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError:
            with self._guard():
                raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (0)")
            if current > len(MIGRATIONS):
                raise CorruptVault(f"vault schema {current} is newer than this kinko understands")
            for index in range(current, len(MIGRATIONS)):
                for statement in MIGRATIONS[index].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (index + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- meta -----------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> bytes | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def init_meta(self, items: Mapping[str, bytes]) -> None:
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM meta LIMIT 1").fetchone():
                raise AlreadyInitialized("vault is already initialized")
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", list(items.items()))

    def put_meta(self, key: str, value: bytes) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def swap_meta(self, key: str, expected: bytes | None, value: bytes) -> bool:
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            current = bytes(row[0]) if row else None
            if current != expected:
                return False
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return True

    def delete_meta(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- secrets --------------------------------------------------------------------------------------------
    def get_secret(self, path: str) -> SecretRow | None:
        rows = self._read(f"SELECT {_SECRET_COLUMNS} FROM secrets WHERE path = ?", (path,))
        return _secret(rows[0]) if rows else None

    def get_version(self, path: str, version: int) -> VersionRow | None:
        sql = f"SELECT {_VERSION_SELECT} WHERE v.path = ? AND v.version = ?"
        rows = self._read(sql, (path, version))
        return _version(rows[0]) if rows else None

    def get_live_version(self, path: str, version: int | None) -> LiveVersion | None:
        row = self._live_row(_LIVE_CURRENT_SQL, _LIVE_VERSION_SQL, path, version)
        return None if row is None else _new_row(LiveVersion, row)

    def get_live_tags(self, path: str, version: int | None) -> str | None:
        row = self._live_row(_TAGS_CURRENT_SQL, _TAGS_VERSION_SQL, path, version)
        return None if row is None else row[0]

    def _live_row(self, current_sql: str, version_sql: str, path: str, version: int | None) -> tuple[Any, ...] | None:
        # The hot reads (every Vault.get): `_read` inlined, one statement, on this thread's own reused cursor
        # (`conn.execute` makes a new one, with a weak reference, per call); fetching the single row steps the
        # statement to its end, so no read transaction stays open.
        cursor = getattr(self._local, "cursor", None) or self._live_cursor()
        try:
            if version is None:
                return cursor.execute(current_sql, (path,)).fetchone()  # type: ignore[no-any-return]
            return cursor.execute(version_sql, (version, path)).fetchone()  # type: ignore[no-any-return]
        except sqlite3.DatabaseError:
            self._local.cursor = None  # dropped with any statement the error left unfinished
            with self._guard():
                raise

    def list_versions(self, path: str) -> list[VersionRow]:
        sql = f"SELECT {_VERSION_SELECT} WHERE v.path = ? ORDER BY v.version"
        return [_version(r) for r in self._read(sql, (path,))]

    def write_version(self, secret: SecretRow, version: VersionRow, expected_current: int | None) -> None:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT current_version, deleted, incarnation FROM secrets WHERE path = ?", (secret.path,)
            ).fetchone()
            current = row[0] if row else 0
            if row is not None and row[1] is not None:
                raise AlreadyExists(f"secret {secret.path!r} is deleted; recover or purge it before writing")
            if expected_current is not None and current != expected_current:
                raise VersionConflict(
                    f"secret {secret.path!r} is at version {current}, not the expected {expected_current}"
                )
            # The value was sealed for one incarnation: a purge + re-create in between makes it unreadable here.
            if version.version != current + 1 or (row is not None and row[2] != version.incarnation):
                raise VersionConflict(f"secret {secret.path!r} changed while writing; retry")
            if row is None:
                conn.execute(
                    f"INSERT INTO secrets ({_SECRET_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
                    (secret.path, version.version, secret.max_versions, secret.created, secret.updated,
                     version.incarnation, secret.mac),
                )
            else:
                conn.execute(
                    "UPDATE secrets SET current_version = ?, max_versions = ?, updated = ?, mac = ? WHERE path = ?",
                    (version.version, secret.max_versions, secret.updated, secret.mac, secret.path),
                )
            self._insert_version(conn, version)
            if secret.max_versions > 0:
                conn.execute(
                    "DELETE FROM versions WHERE path = ? AND version <= ?",
                    (secret.path, version.version - secret.max_versions),
                )

    @staticmethod
    def _insert_version(conn: sqlite3.Connection, v: VersionRow) -> None:
        conn.execute(
            f"INSERT INTO versions ({_VERSION_COLUMNS}, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (v.path, v.version, v.value_ct, v.key_term, int(bool(v.enabled)), v.not_before, v.expires,
             v.content_type, v.tags_json, v.created, v.updated, v.mac),
        )

    def update_version(self, row: VersionRow) -> None:
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE versions SET value_ct = ?, key_term = ?, enabled = ?, not_before = ?, "
                "expires = ?, content_type = ?, tags_json = ?, updated = ?, mac = ? WHERE path = ? AND version = ?",
                (row.value_ct, row.key_term, int(bool(row.enabled)), row.not_before, row.expires,
                 row.content_type, row.tags_json, row.updated, row.mac, row.path, row.version),
            )
            if cursor.rowcount != 1:
                raise NotFound(f"secret {row.path!r} has no version {row.version}")

    def list_secrets(self, prefix: str, *, deleted: bool) -> list[SecretRow]:
        where = "deleted IS NOT NULL" if deleted else "deleted IS NULL"
        if prefix:
            # substr keeps '%' and '_' in paths from acting as LIKE wildcards.
            sql = (f"SELECT {_SECRET_COLUMNS} FROM secrets WHERE {where} AND "
                   "(path = ? OR substr(path, 1, ?) = ?) ORDER BY path")
            rows = self._read(sql, (prefix, len(prefix) + 1, prefix + "/"))
        else:
            rows = self._read(f"SELECT {_SECRET_COLUMNS} FROM secrets WHERE {where} ORDER BY path")
        return [_secret(r) for r in rows]

    def set_deleted(self, path: str, deleted: float | None, scheduled_purge: float | None, mac: str) -> None:
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET deleted = ?, scheduled_purge = ?, mac = ? WHERE path = ?",
                (deleted, scheduled_purge, mac, path),
            )
            if cursor.rowcount != 1:
                raise NotFound(f"no secret at {path!r}")

    def untagged(self) -> tuple[list[SecretRow], list[VersionRow]]:
        secrets = self._read(f"SELECT {_SECRET_COLUMNS} FROM secrets WHERE mac IS NULL")
        versions = self._read(f"SELECT {_VERSION_SELECT} WHERE v.mac IS NULL")
        return [_secret(r) for r in secrets], [_version(r) for r in versions]

    def put_tags(self, secrets: list[tuple[str, str]], versions: list[tuple[str, int, str]]) -> None:
        with self._tx() as conn:
            conn.executemany("UPDATE secrets SET mac = ? WHERE path = ? AND mac IS NULL",
                             [(mac, path) for path, mac in secrets])
            conn.executemany("UPDATE versions SET mac = ? WHERE path = ? AND version = ? AND mac IS NULL",
                             [(mac, path, version) for path, version, mac in versions])

    def purge(self, path: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM versions WHERE path = ?", (path,))
            if conn.execute("DELETE FROM secrets WHERE path = ?", (path,)).rowcount != 1:
                raise NotFound(f"no secret at {path!r}")

    def restore(self, secret: SecretRow, versions: list[VersionRow]) -> None:
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM secrets WHERE path = ?", (secret.path,)).fetchone():
                raise AlreadyExists(f"secret {secret.path!r} already exists (live or deleted); purge it first")
            conn.execute(
                f"INSERT INTO secrets ({_SECRET_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
                (secret.path, secret.current_version, secret.max_versions, secret.created, secret.updated,
                 secret.incarnation, secret.mac),
            )
            for version in versions:
                self._insert_version(conn, version)

    def versions_below_term(self, term: int, limit: int) -> list[VersionRow]:
        sql = f"SELECT {_VERSION_SELECT} WHERE v.key_term < ? LIMIT ?"
        return [_version(r) for r in self._read(sql, (term, limit))]

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        with self._marker_lock:
            if self._marker_conn is not None:
                self._marker_conn.close()
                self._marker_conn = self._marker_cursor = None
        self._local = threading.local()

    # -- tokens (kinko.access) -------------------------------------------------------------------------------
    def insert_token(self, row: TokenRow) -> None:
        with self._tx() as conn:
            self._insert_token(conn, row)

    @staticmethod
    def _insert_token(conn: sqlite3.Connection, r: TokenRow) -> None:
        conn.execute(
            f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.accessor, r.token_hash, r.parent, r.policies_json, r.display_name, r.meta_json, r.created,
             r.expires, r.max_expires, r.ttl, int(r.renewable), r.num_uses, r.uses_left, r.mac),
        )

    def adopt_root_token(self, meta_key: str, row: TokenRow) -> bool:
        with self._tx() as conn:
            found = conn.execute("SELECT value FROM meta WHERE key = ?", (meta_key,)).fetchone()
            if found is None or bytes(found[0]) != row.token_hash.encode():
                return False
            self._insert_token(conn, row)
            conn.execute("DELETE FROM meta WHERE key = ?", (meta_key,))
            return True

    def get_token(self, accessor: str) -> TokenRow | None:
        rows = self._read(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE accessor = ?", (accessor,))
        return _token(rows[0]) if rows else None

    def get_token_by_hash(self, token_hash: str) -> TokenRow | None:
        rows = self._read(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?", (token_hash,))
        return _token(rows[0]) if rows else None

    def list_tokens(self) -> list[TokenRow]:
        return [_token(r) for r in self._read(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created, accessor")]

    def consume_token_use(self, accessor: str, uses_left: int, mac: str | None) -> bool:
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE tokens SET uses_left = uses_left - 1, mac = ? "
                "WHERE accessor = ? AND num_uses > 0 AND uses_left = ? AND uses_left > 0",
                (mac, accessor, uses_left),
            )
            conn.execute("DELETE FROM tokens WHERE accessor = ? AND num_uses > 0 AND uses_left <= 0", (accessor,))
            return cursor.rowcount == 1

    def set_token_expiry(self, accessor: str, expires: float | None, mac: str | None) -> None:
        with self._tx() as conn:
            sql = "UPDATE tokens SET expires = ?, mac = ? WHERE accessor = ?"
            if conn.execute(sql, (expires, mac, accessor)).rowcount != 1:
                raise NotFound("no such token")

    def revoke_token_tree(self, accessor: str) -> int:
        with self._tx() as conn:
            tree = (
                "WITH RECURSIVE tree(accessor) AS (SELECT accessor FROM tokens WHERE accessor = ? "
                "UNION SELECT t.accessor FROM tokens t JOIN tree ON t.parent = tree.accessor) "
            )
            before = conn.total_changes  # rowcount is not reliable for a statement starting with WITH
            conn.execute(tree + "DELETE FROM tokens WHERE accessor IN (SELECT accessor FROM tree)", (accessor,))
            return int(conn.total_changes - before)

    # -- policies (kinko.access) -----------------------------------------------------------------------------
    def put_policy(self, name: str, document: str, updated: float, mac: str | None = None) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO policies (name, document, updated, mac) VALUES (?, ?, ?, ?)",
                         (name, document, updated, mac))
            conn.execute("UPDATE policy_revision SET revision = revision + 1")

    def get_policy(self, name: str) -> str | None:
        rows = self._read("SELECT document FROM policies WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def get_policy_entry(self, name: str) -> PolicyEntry | None:
        rows = self._read("SELECT document, mac FROM policies WHERE name = ?", (name,))
        return PolicyEntry(str(rows[0][0]), rows[0][1]) if rows else None

    def list_policies(self) -> list[str]:
        return [str(r[0]) for r in self._read("SELECT name FROM policies ORDER BY name")]

    def delete_policy(self, name: str) -> bool:
        with self._tx() as conn:
            if conn.execute("DELETE FROM policies WHERE name = ?", (name,)).rowcount != 1:
                return False
            conn.execute("UPDATE policy_revision SET revision = revision + 1")
            return True

    def policy_revision(self) -> int:
        rows = self._read("SELECT revision FROM policy_revision")
        return int(rows[0][0]) if rows else 0
