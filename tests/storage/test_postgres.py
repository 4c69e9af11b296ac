"""The PostgreSQL engine on a real server: URLs and passwords, schema migrations, errors as kinko's, a server
restart under a live store."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from kinko.errors import CorruptVault, InvalidInput, StorageError, StorageUnavailable
from kinko.storage.postgres import PG_MIGRATIONS, PostgresStore, connection_string
from kinko.storage.sql import MIGRATIONS
from tests.pg import USER, PgCluster, free_port


def _schema_version(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
    assert row is not None
    return int(row[0])


def test_the_schema_is_sqlites_in_postgresql_types() -> None:
    assert len(PG_MIGRATIONS) == len(MIGRATIONS)
    text = "\n".join(PG_MIGRATIONS)
    assert "BLOB" not in text and " REAL" not in text and "ROWID" not in text
    assert "BYTEA" in text and "DOUBLE PRECISION" in text and 'TEXT COLLATE "C"' in text


def test_a_new_database_gets_the_latest_schema_and_reopens(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.put_meta("k", b"v")
    store.close()
    assert _schema_version(pg_url) == len(PG_MIGRATIONS)
    again = PostgresStore(pg_url)
    assert again.get_meta("k") == b"v"
    again.close()


@pytest.mark.parametrize("start", range(1, len(PG_MIGRATIONS)))
def test_an_older_schema_is_migrated_forward(pg_url: str, start: int) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (%s)", (start,))
        for script in PG_MIGRATIONS[:start]:
            conn.execute(script.encode())
        conn.execute("INSERT INTO meta (key, value) VALUES ('marker', '\\x01'::bytea)")
    store = PostgresStore(pg_url)
    assert store.get_meta("marker") == b"\x01"
    store.close()
    assert _schema_version(pg_url) == len(PG_MIGRATIONS)


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (len(PG_MIGRATIONS) + 1,))
    with pytest.raises(CorruptVault, match="newer"):
        PostgresStore(pg_url)


def test_servers_starting_together_migrate_once(pg_url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[Exception] = []

    def open_one() -> None:
        try:
            stores.append(PostgresStore(pg_url))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 6 and _schema_version(pg_url) == len(PG_MIGRATIONS)
    for store in stores:
        store.close()


def test_the_password_comes_from_a_passfile_and_is_never_shown(pg_cluster: PgCluster, pg_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = PostgresStore(pg_url)  # ?passfile=
    assert store.describe() == pg_url.split("?")[0] and pg_cluster.password not in store.describe()
    store.close()
    monkeypatch.setenv("PGPASSFILE", str(pg_cluster.passfile))
    bare = pg_url.split("?")[0]
    store = PostgresStore(bare)  # PGPASSFILE, as libpq reads it
    assert store.get_meta("x") is None
    store.close()
    with_password = bare.replace(f"{USER}@", f"{USER}:{pg_cluster.password}@")
    store = PostgresStore(with_password)  # accepted (config file, KINKO_STORAGE), but never shown
    assert pg_cluster.password not in store.describe()
    store.close()
    assert "connect_timeout=5" in connection_string(bare) and "application_name=kinko" in connection_string(bare)


def test_a_wrong_password_a_missing_database_and_no_server_are_clear_errors(pg_cluster: PgCluster, tmp_path,
                                                                           pg_url: str) -> None:
    wrong = tmp_path / "pgpass"
    wrong.write_text(f"*:*:*:{USER}:not-the-password\n")
    wrong.chmod(0o600)
    with pytest.raises(StorageError, match="refused the login") as err:
        PostgresStore(pg_url.split("?")[0] + f"?passfile={wrong}")
    assert "not-the-password" not in str(err.value)
    with pytest.raises(StorageError, match="does not exist"):
        PostgresStore(pg_cluster.url("no_such_database"))
    with pytest.raises(StorageUnavailable, match="cannot be reached"):
        PostgresStore(f"postgresql://{USER}@127.0.0.1:{free_port()}/x?connect_timeout=2")


def test_text_postgresql_cannot_hold_is_invalid_input(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    with pytest.raises(InvalidInput):
        store.put_policy("p", "a\x00b", 1.0)
    store.close()


def test_a_restarted_server_is_unavailable_then_used_again(pg_url: str, pg_cluster: PgCluster) -> None:
    store = PostgresStore(pg_url, pool_wait=1.0)
    store.put_meta("k", b"1")
    pg_cluster.stop()
    try:
        with pytest.raises(StorageUnavailable):
            store.get_meta("k")
        with pytest.raises(StorageUnavailable):
            store.put_meta("k", b"2")
    finally:
        pg_cluster.start()
    started, deadline = time.monotonic(), time.monotonic() + 15
    while True:  # the pool reconnects by itself (backing off while the server was down)
        try:
            assert store.get_meta("k") == b"1"
            break
        except StorageUnavailable:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    print(f"recovered {time.monotonic() - started:.2f}s after the server was back")
    store.put_meta("k", b"3")
    assert store.get_meta("k") == b"3"
    store.close()
