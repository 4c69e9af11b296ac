"""Where a vault is stored: a SQLite file (a path, or `sqlite:PATH`) or a PostgreSQL URL, and opening it."""

from __future__ import annotations

from pathlib import Path

from kinko.storage.interface import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_PREFIX = "sqlite:"


def is_postgres(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def sqlite_path(location: str | Path) -> Path:
    """The file of a SQLite location: a Path as it is, `sqlite:PATH` or a plain path string, `~` expanded."""
    if isinstance(location, Path):
        return location
    return Path(location.removeprefix(SQLITE_PREFIX)).expanduser()


def open_store(location: str | Path, *, create: bool = True) -> Store:
    """The store at `location`. A PostgreSQL database must exist; its tables are created (or migrated) on open,
    whatever `create` says. A SQLite file is created only with `create`."""
    if is_postgres(location):
        from kinko.storage.postgres import PostgresStore  # psycopg is loaded only for a PostgreSQL vault

        return PostgresStore(str(location))
    from kinko.storage.sqlite import SqliteStore

    return SqliteStore(sqlite_path(location), create=create)
