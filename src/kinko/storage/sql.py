"""The SQL both engines run: the hot-read statements and every operation's transaction body (the schema and its
migrations are in kinko.storage.schema)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from kinko.errors import AlreadyExists, AlreadyInitialized, CorruptVault, NotFound, VersionConflict
from kinko.storage.interface import LiveVersion, PolicyEntry, SecretRow, Store, TokenRow, VersionRow
from kinko.storage.schema import (
    CONTENT_TABLES,
    MIGRATIONS,
    SECRET_COLUMNS,
    TABLES,
    TOKEN_COLUMNS,
    VERSION_COLUMNS,
    postgres_ddl,
    statements,
)

#: What other modules import from here (the schema's names are kinko.storage.schema's, re-exported).
__all__ = [
    "CONTENT_TABLES",
    "LIVE_CURRENT_SQL",
    "LIVE_VERSION_SQL",
    "MIGRATIONS",
    "TABLES",
    "TAGS_CURRENT_SQL",
    "TAGS_VERSION_SQL",
    "SqlStore",
    "T",
    "Tx",
    "postgres_ddl",
    "statements",
]

_V_COLUMNS = ", ".join("v." + c.strip() for c in VERSION_COLUMNS.split(","))
#: A version row as VersionRow reads it: its columns plus the owning secret's incarnation, then its tag.
_VERSION_SELECT = _V_COLUMNS + ", s.incarnation, v.mac FROM versions v JOIN secrets s ON s.path = v.path"
#: The hot read selects exactly LiveVersion's fields, in its order (the incarnation and tag are the secret's).
_LIVE_COLUMNS = {"incarnation": "s.incarnation", "secret_mac": "s.mac"}
_LIVE_SQL = (
    "SELECT " + ", ".join(_LIVE_COLUMNS.get(f, "v." + f) for f in LiveVersion._fields)
    + " FROM secrets s JOIN versions v ON v.path = s.path AND v.version = {match}"
    " WHERE s.path = ? AND s.deleted IS NULL"
)
LIVE_CURRENT_SQL = _LIVE_SQL.format(match="s.current_version")
LIVE_VERSION_SQL = _LIVE_SQL.format(match="?")
#: The same row's two integrity tags, concatenated in SQL: one short column, the cheapest "has it changed?".
_TAGS_SQL = ("SELECT s.mac || v.mac FROM secrets s JOIN versions v ON v.path = s.path AND v.version = {match}"
             " WHERE s.path = ? AND s.deleted IS NULL")
TAGS_CURRENT_SQL = _TAGS_SQL.format(match="s.current_version")
TAGS_VERSION_SQL = _TAGS_SQL.format(match="?")


def _secret(row: Sequence[Any]) -> SecretRow:
    return SecretRow(*row)


def _token(row: Sequence[Any]) -> TokenRow:
    values = list(row)
    values[10] = bool(values[10])
    return TokenRow(*values)


def _version(row: Sequence[Any]) -> VersionRow:
    return VersionRow._make(row)


def _marks(columns: str) -> str:
    return ", ".join("?" * len(columns.split(",")))


class Tx(Protocol):
    """One open transaction, as the operations below use it (each engine adapts its own driver)."""

    def one(self, sql: str, args: Sequence[object] = ()) -> tuple[Any, ...] | None: ...

    def all(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str, args: Sequence[object] = ()) -> int:
        """Execute; the number of rows it changed."""

    def many(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


T = TypeVar("T")


class SqlStore(Store):
    """Every `Store` operation but the hot reads, over `_write` (one transaction) and `_read` (one statement).

    Statements use `?` placeholders; an engine's Tx translates them. `UPSERT_META` is the one statement whose
    syntax differs (SQLite's INSERT OR REPLACE, PostgreSQL's ON CONFLICT)."""

    UPSERT_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
    TABLE_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    UPSERT_POLICY = "INSERT OR REPLACE INTO policies (name, document, updated, mac) VALUES (?, ?, ?, ?)"

    @abstractmethod
    def _write(self, body: Callable[[Tx], T]) -> T:
        """Run `body` in one write transaction (committed when it returns, rolled back when it raises)."""

    @abstractmethod
    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    @classmethod
    def _migrate(cls, tx: Tx, migrations: Sequence[str]) -> None:
        # Asked first, not `CREATE TABLE IF NOT EXISTS`: PostgreSQL checks the CREATE privilege before it looks,
        # and a database user with data rights only (the schema migrated by its owner) must still open the store.
        if tx.one(cls.TABLE_EXISTS, ("schema_version",)) is None:
            tx.run("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        row = tx.one("SELECT version FROM schema_version")
        current = row[0] if row else 0
        if row is None:
            tx.run("INSERT INTO schema_version (version) VALUES (0)")
        if current > len(migrations):
            raise CorruptVault(f"vault schema {current} is newer than this kinko understands")
        for index in range(current, len(migrations)):
            for statement in statements(migrations[index]):
                tx.run(statement)
            tx.run("UPDATE schema_version SET version = ?", (index + 1,))

    # -- meta -----------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> bytes | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def init_meta(self, items: Mapping[str, bytes]) -> None:
        def body(tx: Tx) -> None:
            if tx.one("SELECT 1 FROM meta LIMIT 1"):
                raise AlreadyInitialized("vault is already initialized")
            tx.many("INSERT INTO meta (key, value) VALUES (?, ?)", list(items.items()))
        self._write(body)

    def put_meta(self, key: str, value: bytes) -> None:
        self._write(lambda tx: tx.run(self.UPSERT_META, (key, value)))

    def swap_meta(self, key: str, expected: bytes | None, value: bytes) -> bool:
        def body(tx: Tx) -> bool:
            row = tx.one("SELECT value FROM meta WHERE key = ?", (key,))
            if (bytes(row[0]) if row else None) != expected:
                return False
            tx.run(self.UPSERT_META, (key, value))
            return True
        return self._write(body)

    def delete_meta(self, key: str) -> None:
        self._write(lambda tx: tx.run("DELETE FROM meta WHERE key = ?", (key,)))

    def list_meta_keys(self, prefix: str) -> list[str]:
        # substr rather than LIKE (no escaping of '_' and '%') or a range (PostgreSQL's collation orders text
        # differently): the same statement on both engines.
        rows = self._read("SELECT key FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
        return sorted(str(row[0]) for row in rows)

    # -- secrets --------------------------------------------------------------------------------------------
    def get_secret(self, path: str) -> SecretRow | None:
        rows = self._read(f"SELECT {SECRET_COLUMNS} FROM secrets WHERE path = ?", (path,))
        return _secret(rows[0]) if rows else None

    def get_version(self, path: str, version: int) -> VersionRow | None:
        rows = self._read(f"SELECT {_VERSION_SELECT} WHERE v.path = ? AND v.version = ?", (path, version))
        return _version(rows[0]) if rows else None

    def list_versions(self, path: str) -> list[VersionRow]:
        sql = f"SELECT {_VERSION_SELECT} WHERE v.path = ? ORDER BY v.version"
        return [_version(r) for r in self._read(sql, (path,))]

    def write_version(self, secret: SecretRow, version: VersionRow, expected_current: int | None) -> None:
        self._write(lambda tx: _write_version(tx, secret, version, expected_current))

    def update_version(self, row: VersionRow) -> None:
        def body(tx: Tx) -> None:
            changed = tx.run(
                "UPDATE versions SET value_ct = ?, key_term = ?, enabled = ?, not_before = ?, "
                "expires = ?, content_type = ?, tags_json = ?, updated = ?, mac = ? WHERE path = ? AND version = ?",
                (row.value_ct, row.key_term, int(bool(row.enabled)), row.not_before, row.expires,
                 row.content_type, row.tags_json, row.updated, row.mac, row.path, row.version),
            )
            if changed != 1:
                raise NotFound(f"secret {row.path!r} has no version {row.version}")
        self._write(body)

    def list_secrets(self, prefix: str, *, deleted: bool) -> list[SecretRow]:
        where = "deleted IS NOT NULL" if deleted else "deleted IS NULL"
        if prefix:
            # substr keeps '%' and '_' in paths from acting as LIKE wildcards.
            sql = (f"SELECT {SECRET_COLUMNS} FROM secrets WHERE {where} AND "
                   "(path = ? OR substr(path, 1, ?) = ?) ORDER BY path")
            rows = self._read(sql, (prefix, len(prefix) + 1, prefix + "/"))
        else:
            rows = self._read(f"SELECT {SECRET_COLUMNS} FROM secrets WHERE {where} ORDER BY path")
        return [_secret(r) for r in rows]

    def set_deleted(self, path: str, deleted: float | None, scheduled_purge: float | None, mac: str) -> None:
        def body(tx: Tx) -> None:
            sql = "UPDATE secrets SET deleted = ?, scheduled_purge = ?, mac = ? WHERE path = ?"
            if tx.run(sql, (deleted, scheduled_purge, mac, path)) != 1:
                raise NotFound(f"no secret at {path!r}")
        self._write(body)

    def untagged(self) -> tuple[list[SecretRow], list[VersionRow]]:
        secrets = self._read(f"SELECT {SECRET_COLUMNS} FROM secrets WHERE mac IS NULL")
        versions = self._read(f"SELECT {_VERSION_SELECT} WHERE v.mac IS NULL")
        return [_secret(r) for r in secrets], [_version(r) for r in versions]

    def put_tags(self, secrets: list[tuple[str, str]], versions: list[tuple[str, int, str]]) -> None:
        def body(tx: Tx) -> None:
            tx.many("UPDATE secrets SET mac = ? WHERE path = ? AND mac IS NULL",
                    [(mac, path) for path, mac in secrets])
            tx.many("UPDATE versions SET mac = ? WHERE path = ? AND version = ? AND mac IS NULL",
                    [(mac, path, version) for path, version, mac in versions])
        self._write(body)

    def purge(self, path: str) -> None:
        def body(tx: Tx) -> None:
            tx.run("DELETE FROM versions WHERE path = ?", (path,))
            if tx.run("DELETE FROM secrets WHERE path = ?", (path,)) != 1:
                raise NotFound(f"no secret at {path!r}")
        self._write(body)

    def restore(self, secret: SecretRow, versions: list[VersionRow]) -> None:
        def body(tx: Tx) -> None:
            if tx.one("SELECT 1 FROM secrets WHERE path = ?", (secret.path,)):
                raise AlreadyExists(f"secret {secret.path!r} already exists (live or deleted); purge it first")
            _insert_secret(tx, secret, secret.current_version, secret.incarnation)
            for version in versions:
                _insert_version(tx, version)
        self._write(body)

    def versions_below_term(self, term: int, limit: int) -> list[VersionRow]:
        sql = f"SELECT {_VERSION_SELECT} WHERE v.key_term < ? LIMIT ?"
        return [_version(r) for r in self._read(sql, (term, limit))]

    # -- tokens (kinko.access) -------------------------------------------------------------------------------
    def insert_token(self, row: TokenRow) -> None:
        self._write(lambda tx: _insert_token(tx, row))

    def adopt_root_token(self, meta_key: str, row: TokenRow) -> bool:
        def body(tx: Tx) -> bool:
            found = tx.one("SELECT value FROM meta WHERE key = ?", (meta_key,))
            if found is None or bytes(found[0]) != row.token_hash.encode():
                return False
            _insert_token(tx, row)
            tx.run("DELETE FROM meta WHERE key = ?", (meta_key,))
            return True
        return self._write(body)

    def get_token(self, accessor: str) -> TokenRow | None:
        rows = self._read(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE accessor = ?", (accessor,))
        return _token(rows[0]) if rows else None

    def get_token_by_hash(self, token_hash: str) -> TokenRow | None:
        rows = self._read(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?", (token_hash,))
        return _token(rows[0]) if rows else None

    def list_tokens(self) -> list[TokenRow]:
        return [_token(r) for r in self._read(f"SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created, accessor")]

    def consume_token_use(self, accessor: str, uses_left: int, mac: str | None) -> bool:
        def body(tx: Tx) -> bool:
            changed = tx.run(
                "UPDATE tokens SET uses_left = uses_left - 1, mac = ? "
                "WHERE accessor = ? AND num_uses > 0 AND uses_left = ? AND uses_left > 0",
                (mac, accessor, uses_left),
            )
            tx.run("DELETE FROM tokens WHERE accessor = ? AND num_uses > 0 AND uses_left <= 0", (accessor,))
            return changed == 1
        return self._write(body)

    def set_token_expiry(self, accessor: str, expires: float | None, mac: str | None) -> None:
        def body(tx: Tx) -> None:
            if tx.run("UPDATE tokens SET expires = ?, mac = ? WHERE accessor = ?", (expires, mac, accessor)) != 1:
                raise NotFound("no such token")
        self._write(body)

    def revoke_token_tree(self, accessor: str) -> int:
        tree = ("WITH RECURSIVE tree(accessor) AS (SELECT accessor FROM tokens WHERE accessor = ? "
                "UNION SELECT t.accessor FROM tokens t JOIN tree ON t.parent = tree.accessor) ")
        sql = tree + "DELETE FROM tokens WHERE accessor IN (SELECT accessor FROM tree)"
        return self._write(lambda tx: tx.run(sql, (accessor,)))

    # -- policies (kinko.access) -----------------------------------------------------------------------------
    def put_policy(self, name: str, document: str, updated: float, mac: str | None = None) -> None:
        def body(tx: Tx) -> None:
            tx.run(self.UPSERT_POLICY, (name, document, updated, mac))
            tx.run("UPDATE policy_revision SET revision = revision + 1")
        self._write(body)

    def get_policy(self, name: str) -> str | None:
        rows = self._read("SELECT document FROM policies WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def get_policy_entry(self, name: str) -> PolicyEntry | None:
        rows = self._read("SELECT document, mac FROM policies WHERE name = ?", (name,))
        return PolicyEntry(str(rows[0][0]), rows[0][1]) if rows else None

    def list_policies(self) -> list[str]:
        return [str(r[0]) for r in self._read("SELECT name FROM policies ORDER BY name")]

    def delete_policy(self, name: str) -> bool:
        def body(tx: Tx) -> bool:
            if tx.run("DELETE FROM policies WHERE name = ?", (name,)) != 1:
                return False
            tx.run("UPDATE policy_revision SET revision = revision + 1")
            return True
        return self._write(body)

    def policy_revision(self) -> int:
        rows = self._read("SELECT revision FROM policy_revision")
        return int(rows[0][0]) if rows else 0

    # -- the whole store, as stored (kinko operator migrate) -------------------------------------------------
    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        def body(tx: Tx) -> dict[str, list[tuple[Any, ...]]]:  # one transaction: a consistent copy
            return {table: [tuple(_plain(v) for v in row)
                            for row in tx.all(f"SELECT {columns} FROM {table} ORDER BY {key}")]
                    for table, (columns, key) in TABLES.items()}
        return self._write(body)

    def load(self, tables: Mapping[str, Sequence[Sequence[Any]]]) -> None:
        def body(tx: Tx) -> None:
            for table in CONTENT_TABLES:
                if tx.one(f"SELECT 1 FROM {table} LIMIT 1"):
                    raise AlreadyExists(f"the target store is not empty (table {table} has rows); refusing to copy")
            tx.run("DELETE FROM policy_revision")
            for table, (columns, _key) in TABLES.items():
                tx.many(f"INSERT INTO {table} ({columns}) VALUES ({_marks(columns)})", tables.get(table, []))
        self._write(body)


def _plain(value: Any) -> Any:
    """A driver's buffer types as bytes (sqlite3 and psycopg both give bytes, but memoryview is allowed)."""
    return bytes(value) if isinstance(value, memoryview) else value


def _write_version(tx: Tx, secret: SecretRow, version: VersionRow, expected_current: int | None) -> None:
    row = tx.one("SELECT current_version, deleted, incarnation FROM secrets WHERE path = ?", (secret.path,))
    current = row[0] if row else 0
    if row is not None and row[1] is not None:
        raise AlreadyExists(f"secret {secret.path!r} is deleted; recover or purge it before writing")
    if expected_current is not None and current != expected_current:
        raise VersionConflict(f"secret {secret.path!r} is at version {current}, not the expected {expected_current}")
    # The value was sealed for one incarnation: a purge + re-create in between makes it unreadable here.
    if version.version != current + 1 or (row is not None and row[2] != version.incarnation):
        raise VersionConflict(f"secret {secret.path!r} changed while writing; retry")
    if row is None:
        _insert_secret(tx, secret, version.version, version.incarnation)
    else:
        tx.run("UPDATE secrets SET current_version = ?, max_versions = ?, updated = ?, mac = ? WHERE path = ?",
               (version.version, secret.max_versions, secret.updated, secret.mac, secret.path))
    _insert_version(tx, version)
    if secret.max_versions > 0:
        tx.run("DELETE FROM versions WHERE path = ? AND version <= ?",
               (secret.path, version.version - secret.max_versions))


def _insert_secret(tx: Tx, s: SecretRow, current: int, incarnation: str) -> None:
    tx.run(f"INSERT INTO secrets ({SECRET_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
           (s.path, current, s.max_versions, s.created, s.updated, incarnation, s.mac))


def _insert_version(tx: Tx, v: VersionRow) -> None:
    tx.run(f"INSERT INTO versions ({VERSION_COLUMNS}, mac) VALUES ({_marks(VERSION_COLUMNS)}, ?)",
           (v.path, v.version, v.value_ct, v.key_term, int(bool(v.enabled)), v.not_before, v.expires,
            v.content_type, v.tags_json, v.created, v.updated, v.mac))


def _insert_token(tx: Tx, r: TokenRow) -> None:
    tx.run(f"INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES ({_marks(TOKEN_COLUMNS)})",
           (r.accessor, r.token_hash, r.parent, r.policies_json, r.display_name, r.meta_json, r.created,
            r.expires, r.max_expires, r.ttl, int(r.renewable), r.num_uses, r.uses_left, r.mac))
