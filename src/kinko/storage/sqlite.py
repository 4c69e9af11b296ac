"""SQLite storage: the embedded default. WAL, synchronous=FULL, one transaction per operation."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kinko.errors import CorruptVault, InvalidInput, KinkoError, NotFound, StorageBusy, StorageError, StorageFull
from kinko.storage.interface import LiveVersion
from kinko.storage.sql import (
    LIVE_CURRENT_SQL,
    LIVE_VERSION_SQL,
    MIGRATIONS,
    TAGS_CURRENT_SQL,
    TAGS_VERSION_SQL,
    SqlStore,
    T,
    Tx,
)

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


class _SqliteTx:
    """A transaction on one sqlite3 connection (Tx)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def one(self, sql: str, args: Sequence[object] = ()) -> tuple[Any, ...] | None:
        return self.conn.execute(sql, args).fetchone()  # type: ignore[no-any-return]

    def all(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, args).fetchall()

    def run(self, sql: str, args: Sequence[object] = ()) -> int:
        before = self.conn.total_changes  # rowcount is not reliable for a statement starting with WITH
        self.conn.execute(sql, args)
        return self.conn.total_changes - before

    def many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self.conn.executemany(sql, rows)


class SqliteStore(SqlStore):
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
        self._write(lambda tx: self._migrate(tx, MIGRATIONS))

    def describe(self) -> str:
        return f"sqlite:{self.path}"

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

    def _write(self, body: Callable[[Tx], T]) -> T:
        with self._guard():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(_SqliteTx(conn))
                conn.execute("COMMIT")
            except BaseException:
                # After a failed COMMIT (a full disk) SQLite may already have rolled back: never mask the cause.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            return result

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        conn = getattr(self._local, "conn", None) or self._conn()
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError:
            with self._guard():
                raise

    # -- the hot reads ----------------------------------------------------------------------------------------
    def get_live_version(self, path: str, version: int | None) -> LiveVersion | None:
        row = self._live_row(LIVE_CURRENT_SQL, LIVE_VERSION_SQL, path, version)
        return None if row is None else _new_row(LiveVersion, row)

    def get_live_tags(self, path: str, version: int | None) -> str | None:
        row = self._live_row(TAGS_CURRENT_SQL, TAGS_VERSION_SQL, path, version)
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
