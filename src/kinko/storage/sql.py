"""The SQL both engines run: the schema's migrations, the column lists, and every operation's transaction body."""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from kinko.errors import AlreadyExists, AlreadyInitialized, CorruptVault, NotFound, VersionConflict
from kinko.storage.interface import LiveVersion, PolicyEntry, SecretRow, Store, TokenRow, VersionRow

#: Each entry migrates the schema from version i to i+1. Never edit a shipped entry; append. Written in SQLite's
#: dialect; PostgreSQL runs the same text through `postgres_ddl` (types and collation only), so schema version N
#: means the same tables and columns on both engines.
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

#: SQLite's types as PostgreSQL spells them. Text compares byte-wise ("C") as in SQLite, so listings sort alike.
_PG_TYPES = {"BLOB": "BYTEA", "REAL": "DOUBLE PRECISION", "TEXT": 'TEXT COLLATE "C"', "WITHOUT ROWID": ""}
_PG_WORDS = re.compile(r"\b(" + "|".join(_PG_TYPES) + r")\b")


def postgres_ddl(script: str) -> str:
    return _PG_WORDS.sub(lambda m: _PG_TYPES[m.group(1)], script)


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


_VERSION_COLUMNS = (
    "path, version, value_ct, key_term, enabled, not_before, expires, content_type, tags_json, created, updated"
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
LIVE_CURRENT_SQL = _LIVE_SQL.format(match="s.current_version")
LIVE_VERSION_SQL = _LIVE_SQL.format(match="?")
#: The same row's two integrity tags, concatenated in SQL: one short column, the cheapest "has it changed?".
_TAGS_SQL = ("SELECT s.mac || v.mac FROM secrets s JOIN versions v ON v.path = s.path AND v.version = {match}"
             " WHERE s.path = ? AND s.deleted IS NULL")
TAGS_CURRENT_SQL = _TAGS_SQL.format(match="s.current_version")
TAGS_VERSION_SQL = _TAGS_SQL.format(match="?")
_SECRET_COLUMNS = (
    "path, current_version, max_versions, created, updated, deleted, scheduled_purge, incarnation, mac"
)
_TOKEN_COLUMNS = (
    "accessor, token_hash, parent, policies_json, display_name, meta_json, created, expires, max_expires, ttl, "
    "renewable, num_uses, uses_left, mac"
)
#: Every table a vault keeps, with its columns in a fixed order and the key it is listed by (`Store.dump`).
TABLES: dict[str, tuple[str, str]] = {
    "meta": ("key, value", "key"),
    "secrets": (_SECRET_COLUMNS, "path"),
    "versions": (_VERSION_COLUMNS + ", mac", "path, version"),
    "tokens": (_TOKEN_COLUMNS, "accessor"),
    "policies": ("name, document, updated, mac", "name"),
    "policy_revision": ("revision", "revision"),
}
#: The tables whose rows are the vault's content: a store with none is empty (`Store.load` refuses otherwise).
CONTENT_TABLES = ("meta", "secrets", "versions", "tokens", "policies")


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
    UPSERT_POLICY = "INSERT OR REPLACE INTO policies (name, document, updated, mac) VALUES (?, ?, ?, ?)"

    @abstractmethod
    def _write(self, body: Callable[[Tx], T]) -> T:
        """Run `body` in one write transaction (committed when it returns, rolled back when it raises)."""

    @abstractmethod
    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    @staticmethod
    def _migrate(tx: Tx, migrations: Sequence[str]) -> None:
        tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
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
        rows = self._read(f"SELECT {_SECRET_COLUMNS} FROM secrets WHERE path = ?", (path,))
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
            sql = (f"SELECT {_SECRET_COLUMNS} FROM secrets WHERE {where} AND "
                   "(path = ? OR substr(path, 1, ?) = ?) ORDER BY path")
            rows = self._read(sql, (prefix, len(prefix) + 1, prefix + "/"))
        else:
            rows = self._read(f"SELECT {_SECRET_COLUMNS} FROM secrets WHERE {where} ORDER BY path")
        return [_secret(r) for r in rows]

    def set_deleted(self, path: str, deleted: float | None, scheduled_purge: float | None, mac: str) -> None:
        def body(tx: Tx) -> None:
            sql = "UPDATE secrets SET deleted = ?, scheduled_purge = ?, mac = ? WHERE path = ?"
            if tx.run(sql, (deleted, scheduled_purge, mac, path)) != 1:
                raise NotFound(f"no secret at {path!r}")
        self._write(body)

    def untagged(self) -> tuple[list[SecretRow], list[VersionRow]]:
        secrets = self._read(f"SELECT {_SECRET_COLUMNS} FROM secrets WHERE mac IS NULL")
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
        rows = self._read(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE accessor = ?", (accessor,))
        return _token(rows[0]) if rows else None

    def get_token_by_hash(self, token_hash: str) -> TokenRow | None:
        rows = self._read(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?", (token_hash,))
        return _token(rows[0]) if rows else None

    def list_tokens(self) -> list[TokenRow]:
        return [_token(r) for r in self._read(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created, accessor")]

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
    tx.run(f"INSERT INTO secrets ({_SECRET_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
           (s.path, current, s.max_versions, s.created, s.updated, incarnation, s.mac))


def _insert_version(tx: Tx, v: VersionRow) -> None:
    tx.run(f"INSERT INTO versions ({_VERSION_COLUMNS}, mac) VALUES ({_marks(_VERSION_COLUMNS)}, ?)",
           (v.path, v.version, v.value_ct, v.key_term, int(bool(v.enabled)), v.not_before, v.expires,
            v.content_type, v.tags_json, v.created, v.updated, v.mac))


def _insert_token(tx: Tx, r: TokenRow) -> None:
    tx.run(f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES ({_marks(_TOKEN_COLUMNS)})",
           (r.accessor, r.token_hash, r.parent, r.policies_json, r.display_name, r.meta_json, r.created,
            r.expires, r.max_expires, r.ttl, int(r.renewable), r.num_uses, r.uses_left, r.mac))
