"""PostgreSQL's errors as kinko's: unreachable, busy, full, refused — each naming the database, never a value."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolTimeout

from kinko.errors import (
    CorruptVault,
    InvalidInput,
    KinkoError,
    StorageBusy,
    StorageError,
    StorageFull,
    StorageUnavailable,
)

#: SQLSTATEs after which the whole transaction may simply run again (serializable conflicts, deadlocks).
RETRYABLE = (pg.SerializationFailure, pg.DeadlockDetected)


def describe(conninfo: str) -> str:
    """`postgresql://user@host:port/dbname` for messages: never the password."""
    params = conninfo_to_dict(conninfo)
    user = f"{params['user']}@" if params.get("user") else ""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{host}{port}/{params.get('dbname') or params.get('user') or ''}"


def storage_error(exc: Exception, where: str, *, during_commit: bool = False) -> KinkoError:
    """The kinko error for a driver or pool error. Messages carry the SQLSTATE and the database, never the
    server's own text (it can quote a parameter)."""
    database = f"the PostgreSQL database {where}"
    if isinstance(exc, PoolTimeout):
        return StorageUnavailable(f"no connection to {database} could be had in time (is it up?); retry")
    if isinstance(exc, RETRYABLE):
        return StorageBusy(f"{database} kept refusing this write for conflicting with others; retry")
    if isinstance(exc, pg.DiskFull):
        return StorageFull(f"the disk holding {database} is full; nothing was written (free space, then retry)")
    if isinstance(exc, pg.InsufficientResources | pg.LockNotAvailable | pg.QueryCanceled):
        return StorageBusy(f"{database} is too busy ({exc.sqlstate}); retry")
    if isinstance(exc, pg.ReadOnlySqlTransaction):
        return StorageError(f"{database} is read-only (a standby?); point kinko at the primary")
    if isinstance(exc, pg.InvalidAuthorizationSpecification | pg.InvalidPassword):
        return StorageError(f"{database} refused the login (check the user and its password or passfile)")
    if isinstance(exc, pg.InvalidCatalogName):
        return StorageError(f"{database} does not exist; create it first (createdb)")
    if isinstance(exc, pg.UndefinedTable | pg.UndefinedColumn):
        return CorruptVault(f"{database} does not hold a complete kinko vault schema")
    if isinstance(exc, psycopg.DataError):
        return InvalidInput("a text field holds a character PostgreSQL cannot store (such as NUL)")
    if isinstance(exc, psycopg.OperationalError):
        refused = _refused_connection(exc, database)
        if refused is not None:
            return refused
        if during_commit:
            return StorageUnavailable(f"the connection to {database} was lost while committing: the write may or "
                                      "may not have been saved; check, then retry")
        return StorageUnavailable(f"{database} cannot be reached ({_reason(exc)}); retry when it is back")
    state = getattr(exc, "sqlstate", None) or "no SQLSTATE"
    return StorageError(f"{database} refused the operation ({state}: {type(exc).__name__})")


def _refused_connection(exc: psycopg.OperationalError, database: str) -> KinkoError | None:
    """A connection the server refused for good (login, missing database): libpq gives no SQLSTATE for these,
    only its text, which is read here and never shown (it names the passfile)."""
    text = str(exc).lower()
    if any(n in text for n in ("password authentication failed", "no password supplied", "pg_hba.conf",
                               "authentication failed")):
        return StorageError(f"{database} refused the login (check the user and its password or passfile)")
    if "database" in text and "does not exist" in text:
        return StorageError(f"{database} does not exist; create it first (createdb)")
    return None


def _reason(exc: psycopg.OperationalError) -> str:
    """A short cause of a connection failure without the server's text: refused, closed, shutting down..."""
    if isinstance(exc, pg.AdminShutdown | pg.CrashShutdown):
        return "the server is shutting down"
    if isinstance(exc, pg.CannotConnectNow):
        return "the server is starting up"
    if isinstance(exc, pg.TooManyConnections):
        return "too many connections"
    text = str(exc).lower()
    for needle, reason in (("refused", "connection refused"), ("timeout", "timed out"),
                           ("closed", "the server closed the connection"), ("terminat", "the connection was ended"),
                           ("could not translate host", "unknown host"), ("no such file", "no server socket")):
        if needle in text:
            return reason
    return "connection failed"
