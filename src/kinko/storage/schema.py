"""The vault's tables: the schema's migrations (SQLite's dialect, PostgreSQL's spelling) and every table's columns."""

from __future__ import annotations

import re

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


#: The versions table's columns but its tag, in VersionRow's order (which has the secret's incarnation before it).
VERSION_COLUMNS = (
    "path, version, value_ct, key_term, enabled, not_before, expires, content_type, tags_json, created, updated"
)
#: The secrets table's columns, in SecretRow's order.
SECRET_COLUMNS = (
    "path, current_version, max_versions, created, updated, deleted, scheduled_purge, incarnation, mac"
)
#: The tokens table's columns, in TokenRow's order.
TOKEN_COLUMNS = (
    "accessor, token_hash, parent, policies_json, display_name, meta_json, created, expires, max_expires, ttl, "
    "renewable, num_uses, uses_left, mac"
)
#: Every table a vault keeps, with its columns in a fixed order and the key it is listed by (`Store.dump`).
TABLES: dict[str, tuple[str, str]] = {
    "meta": ("key, value", "key"),
    "secrets": (SECRET_COLUMNS, "path"),
    "versions": (VERSION_COLUMNS + ", mac", "path, version"),
    "tokens": (TOKEN_COLUMNS, "accessor"),
    "policies": ("name, document, updated, mac", "name"),
    "policy_revision": ("revision", "revision"),
}
#: The tables whose rows are the vault's content: a store with none is empty (`Store.load` refuses otherwise).
CONTENT_TABLES = ("meta", "secrets", "versions", "tokens", "policies")
