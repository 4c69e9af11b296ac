"""PostgreSQL storage: several kinko servers on one database. A connection pool, one serializable transaction per
write (re-run on a serialization conflict), single-statement reads in autocommit. Every write transaction notifies
the others on commit; a listener per store turns that into the change marker (kinko.storage.pg_listener)."""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from kinko.storage.interface import LiveVersion
from kinko.storage.pg_errors import RETRYABLE, describe, storage_error
from kinko.storage.pg_listener import NOTIFY_AND_COMMIT, ChangeListener, install_triggers
from kinko.storage.sql import (
    LIVE_CURRENT_SQL,
    LIVE_VERSION_SQL,
    MIGRATIONS,
    TAGS_CURRENT_SQL,
    TAGS_VERSION_SQL,
    SqlStore,
    T,
    Tx,
    postgres_ddl,
)

log = logging.getLogger("kinko.storage")

#: The same schema, version for version, in PostgreSQL's types (kinko.storage.schema.postgres_ddl).
PG_MIGRATIONS = [postgres_ddl(script) for script in MIGRATIONS]
#: pg_advisory_lock key that serialises schema migrations between servers starting together ("kinko").
_MIGRATION_LOCK = 0x6B696E6B6F
#: Connections per process; each waits at most POOL_WAIT seconds for one before StorageUnavailable (503) — only
#: DOWN_WAIT while the last attempt found the server unreachable, so an outage answers 503 at once.
POOL_MAX, POOL_WAIT, DOWN_WAIT = 16, 3.0, 0.2
#: The pool reconnects with a doubling delay (1 s, 2 s, ...) for this long, then starts again from 1 s on the next
#: request: after an outage of any length a server is back within a few seconds of the database.
RECONNECT_WINDOW = 5.0
#: How often a write transaction runs again after a serialization conflict or deadlock before StorageBusy.
WRITE_ATTEMPTS = 12
_DEFAULTS = {"connect_timeout": "5", "application_name": "kinko"}


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """The shared statements' `?` placeholders as psycopg's `%s` (no statement holds a literal ? or %)."""
    return sql.replace("?", "%s")


#: The hot reads' statements by "is it the current version?".
_LIVE_ROW = {True: _pg(LIVE_CURRENT_SQL), False: _pg(LIVE_VERSION_SQL)}
_LIVE_TAGS = {True: _pg(TAGS_CURRENT_SQL), False: _pg(TAGS_VERSION_SQL)}
_new_row = tuple.__new__


class _PgTx:
    """A transaction on one psycopg cursor (Tx)."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.cursor = cursor

    def one(self, sql: str, args: Sequence[object] = ()) -> tuple[Any, ...] | None:
        return self.cursor.execute(_pg(sql), args).fetchone()

    def all(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.cursor.execute(_pg(sql), args).fetchall()

    def run(self, sql: str, args: Sequence[object] = ()) -> int:
        return self.cursor.execute(_pg(sql), args).rowcount

    def many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            self.cursor.executemany(_pg(sql), rows)


def connection_string(url: str) -> str:
    """The URL with kinko's defaults for what it leaves out (connect_timeout, application_name). A password may
    come from `?passfile=` or PGPASSFILE (libpq reads both); kinko never logs or shows it."""
    given = conninfo_to_dict(url)
    return make_conninfo(url, **{k: v for k, v in _DEFAULTS.items() if k not in given})


class PostgresStore(SqlStore):
    UPSERT_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
    TABLE_EXISTS = "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?"
    UPSERT_POLICY = ("INSERT INTO policies (name, document, updated, mac) VALUES (?, ?, ?, ?) ON CONFLICT (name) "
                     "DO UPDATE SET document = EXCLUDED.document, updated = EXCLUDED.updated, mac = EXCLUDED.mac")

    def __init__(self, url: str, *, pool_max: int = POOL_MAX, pool_wait: float = POOL_WAIT) -> None:
        """Connect (the first connection is made now, so a wrong URL, password or database fails here with its
        reason), bring the schema up to date and start listening for changes."""
        self._conninfo = connection_string(url)
        self.where = describe(self._conninfo)
        self._pool_wait = pool_wait
        self._down = False  # the last operation could not reach the server
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                # Servers starting together take turns (the lock ends with this connection), and each one's
                # transaction starts after it has the lock, so it sees what the one before it did.
                conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                self._finish(conn, self._schema)
        except _Committing as lost:
            raise storage_error(lost.cause, self.where) from None
        except psycopg.Error as exc:
            raise storage_error(exc, self.where) from None
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._conninfo, min_size=1, max_size=pool_max, timeout=pool_wait, open=False, name="kinko",
            kwargs={"autocommit": True}, reconnect_timeout=RECONNECT_WINDOW,
        )
        self._pool.open(wait=False)
        self.changes = ChangeListener(self._conninfo)

    def describe(self) -> str:
        return self.where

    def _schema(self, tx: Tx) -> None:
        self._migrate(tx, PG_MIGRATIONS)
        install_triggers(tx)

    # -- transactions -------------------------------------------------------------------------------------------
    def _write(self, body: Callable[[Tx], T]) -> T:
        """Run `body` in a serializable transaction; run it again (bounded, with jitter) when PostgreSQL reports
        a conflict with a concurrent transaction, so every write behaves as if writes ran one at a time. A
        connection found dead before anything was sent is replaced once (the server restarted meanwhile)."""
        replaced = False
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self._connection() as conn:
                    try:
                        conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                    except psycopg.OperationalError:
                        if replaced:
                            raise
                        replaced, self._down = True, True  # the next connection is waited for only briefly
                        self._pool.check()
                        continue
                    result = self._finish(conn, body)
                self.changes.bump()  # at once: this process's next read never trusts a cache from before it
                self._down = False
                return result
            except RETRYABLE as exc:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise storage_error(exc, self.where) from None
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter, not a secret
            except _Committing as lost:
                self.changes.bump()  # it may have committed
                self._down = True
                raise storage_error(lost.cause, self.where, during_commit=True) from None
            except psycopg.Error as exc:
                self._down = isinstance(exc, psycopg.OperationalError)
                raise storage_error(exc, self.where) from None
        raise storage_error(psycopg.OperationalError("connection lost"), self.where)

    def _connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        return self._pool.connection(timeout=DOWN_WAIT if self._down else self._pool_wait)

    @staticmethod
    def _finish(conn: psycopg.Connection[Any], body: Callable[[Tx], T]) -> T:
        """Run `body` in the open transaction and commit it with a NOTIFY (every write, migrations included,
        goes through here; the notification reaches the listeners only if the transaction commits)."""
        try:
            result = body(_PgTx(conn.cursor()))
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute(NOTIFY_AND_COMMIT)
        except RETRYABLE:
            raise
        except psycopg.OperationalError as exc:
            raise _Committing(exc) from None
        except psycopg.Error:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            raise
        return result

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._fetch(_pg(sql), args, all_rows=True)  # type: ignore[no-any-return]

    def _fetch(self, sql: str, args: Sequence[object], *, all_rows: bool = False) -> Any:
        """One statement in autocommit (its own snapshot). Read twice at most: a pooled connection that died
        with a restarted server is dropped and the read runs on a fresh one (reads change nothing)."""
        for attempt in (0, 1):
            try:
                with self._connection() as conn:
                    cursor = conn.execute(sql, args)
                    rows = cursor.fetchall() if all_rows else cursor.fetchone()
                self._down = False
                return rows
            except PoolTimeout as exc:
                self._down = True
                raise storage_error(exc, self.where) from None
            except psycopg.OperationalError as exc:
                self._down = True  # the fresh connection is waited for only briefly
                if attempt:
                    raise storage_error(exc, self.where) from None
                self._pool.check()
            except psycopg.Error as exc:
                raise storage_error(exc, self.where) from None
        raise AssertionError("unreachable")

    # -- the hot reads ------------------------------------------------------------------------------------------
    def get_live_version(self, path: str, version: int | None) -> LiveVersion | None:
        args = (path,) if version is None else (version, path)
        row = self._fetch(_LIVE_ROW[version is None], args)
        return None if row is None else _new_row(LiveVersion, row)

    def get_live_tags(self, path: str, version: int | None) -> str | None:
        args = (path,) if version is None else (version, path)
        row = self._fetch(_LIVE_TAGS[version is None], args)
        return None if row is None else row[0]

    def change_marker(self) -> int | None:
        """(generation, notifications counted) as one int; None while the listener is not LISTENing or not
        answering (kinko.storage.pg_listener says when, and the bound this gives). No I/O."""
        return self.changes.marker()

    def close(self) -> None:
        self.changes.close()
        self._pool.close()


class _Committing(Exception):
    """The connection failed while COMMIT was in flight: whether the write landed is unknown."""

    def __init__(self, cause: psycopg.OperationalError) -> None:
        super().__init__()
        self.cause = cause
