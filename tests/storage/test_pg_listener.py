"""PostgreSQL's change marker (kinko.storage.pg_listener) on a real server: every write notifies, another store's
marker moves within milliseconds, a store's own write moves its marker at once, and while the listener is down
(terminated backend, restarted server, fork, close) the marker is None — then a new generation."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from kinko.errors import VersionConflict
from kinko.storage import pg_listener
from kinko.storage.interface import SecretRow, TokenRow, VersionRow
from kinko.storage.pg_listener import CHANNEL
from kinko.storage.postgres import PostgresStore
from tests.pg import USER, PgCluster

#: Generous for a shared, loaded machine; what is typical is printed (and measured in bench/ha.py).
WAIT = 5.0


def wait_for(condition: Callable[[], bool], seconds: float = WAIT) -> float:
    """Seconds until `condition()` held; fails after `seconds`."""
    started = time.perf_counter()
    while not condition():
        assert time.perf_counter() - started < seconds, "condition not met in time"
        time.sleep(0.0005)
    return time.perf_counter() - started


def live(store: PostgresStore) -> PostgresStore:
    wait_for(lambda: store.change_marker() is not None)
    return store


def generation(marker: int | None) -> int:
    assert marker is not None
    return marker >> 64


@pytest.fixture
def two(pg_url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two servers hold it."""
    first, second = PostgresStore(pg_url), PostgresStore(pg_url)
    yield live(first), live(second)
    second.close()
    first.close()


def _secret(path: str, current: int = 1) -> SecretRow:
    return SecretRow(path, current, 10, 1.0, 1.0, None, None, "inc", "tag")


def _version(path: str, version: int = 1) -> VersionRow:
    return VersionRow(path, version, b"ct", 1, True, None, None, "text/plain", "{}", 1.0, 1.0, "inc", "tag")


def _token(accessor: str) -> TokenRow:
    return TokenRow(accessor, "h-" + accessor, None, "[]", "t", "{}", 1.0, None, None, None, False, 0, 0, "m")


def test_a_write_through_another_store_moves_the_marker_within_milliseconds(
        two: tuple[PostgresStore, PostgresStore]) -> None:
    first, second = two
    assert second.change_marker() == second.change_marker()  # nothing changed: stable (heartbeats move nothing)
    time.sleep(pg_listener.HEARTBEAT * 2)
    delays = []
    for n in range(30):
        before = second.change_marker()
        first.put_meta("k", str(n).encode())
        delays.append(wait_for(lambda before=before: second.change_marker() != before))  # type: ignore[misc]
    delays.sort()
    print(f"marker moved after another store's write: p50 {delays[15] * 1000:.2f} ms, max {delays[-1] * 1000:.2f} ms")
    assert generation(second.change_marker()) == generation(before)


def test_an_own_write_moves_the_marker_before_it_returns(pg_url: str) -> None:
    store = live(PostgresStore(pg_url))
    try:
        seen = {store.change_marker()}
        for n in range(20):
            store.put_meta("k", str(n).encode())
            marker = store.change_marker()
            assert marker is not None and marker not in seen
            seen.add(marker)
    finally:
        store.close()


def test_every_kind_of_write_notifies_and_a_failed_one_does_not(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    writes: list[tuple[str, Callable[[], object]]] = [
        ("meta", lambda: store.put_meta("a", b"1")),
        ("secret version", lambda: store.write_version(_secret("p"), _version("p"), None)),
        ("version update", lambda: store.update_version(_version("p"))),
        ("soft delete", lambda: store.set_deleted("p", 2.0, None, "tag")),
        ("token", lambda: store.insert_token(_token("acc"))),
        ("token revoke", lambda: store.revoke_token_tree("acc")),
        ("policy", lambda: store.put_policy("pol", "name: pol\n", 1.0, "m")),
        ("policy delete", lambda: store.delete_policy("pol")),
        ("purge", lambda: store.purge("p")),
    ]
    try:
        with psycopg.connect(pg_url, autocommit=True) as watcher:
            watcher.execute(f"LISTEN {CHANNEL}")
            for name, write in writes:
                write()
                assert len(list(watcher.notifies(timeout=WAIT, stop_after=1))) == 1, name
            with pytest.raises(VersionConflict):  # rolled back: nothing to tell anyone
                store.write_version(_secret("q", 2), _version("q", 2), 1)
            assert list(watcher.notifies(timeout=0.3)) == []
            PostgresStore(pg_url).close()  # opening runs the (here: empty) migration transaction
            assert len(list(watcher.notifies(timeout=WAIT, stop_after=1))) == 1
    finally:
        store.close()


def test_migrations_notify(pg_cluster: PgCluster) -> None:
    url = pg_cluster.create_database()
    with psycopg.connect(url, autocommit=True) as watcher:
        watcher.execute(f"LISTEN {CHANNEL}")
        PostgresStore(url).close()  # a new database: the schema is created in one notifying transaction
        assert len(list(watcher.notifies(timeout=WAIT, stop_after=1))) == 1


def test_sql_run_around_kinko_moves_the_marker_too(two: tuple[PostgresStore, PostgresStore], pg_url: str) -> None:
    """Statement triggers on every table: an operator's UPDATE, DELETE or TRUNCATE notifies like kinko's writes."""
    first, _second = two
    first.put_meta("k", b"1")
    for statement in ("UPDATE meta SET value = 'x'::bytea WHERE key = 'k'", "DELETE FROM tokens",
                      "UPDATE policy_revision SET revision = revision + 1", "TRUNCATE versions CASCADE"):
        before = first.change_marker()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(statement.encode())
        wait_for(lambda before=before: first.change_marker() != before)  # type: ignore[misc]


def test_a_terminated_listener_means_no_marker_then_a_new_generation(
        two: tuple[PostgresStore, PostgresStore], pg_cluster: PgCluster) -> None:
    first, second = two
    before = second.change_marker()
    pid = second.changes.backend_pid
    pg_cluster.admin(f"SELECT pg_terminate_backend({pid})")
    wait_for(lambda: second.change_marker() is None)
    first.put_meta("k", b"missed")  # committed while nobody listened for second
    print(f"listener back after {wait_for(lambda: second.change_marker() is not None) * 1000:.0f} ms")
    after = second.change_marker()
    assert generation(after) > generation(before) and after != before
    assert second.changes.backend_pid not in (None, pid)
    moved = second.change_marker()
    first.put_meta("k", b"seen")
    wait_for(lambda: second.change_marker() != moved)


def test_a_restarted_server_means_no_marker_until_the_listener_is_back(pg_url: str, pg_cluster: PgCluster) -> None:
    store = live(PostgresStore(pg_url, pool_wait=1.0))
    before = store.change_marker()
    pg_cluster.stop()
    try:
        wait_for(lambda: store.change_marker() is None)
        time.sleep(0.3)
        assert store.change_marker() is None  # still down: never a marker from before
    finally:
        pg_cluster.start()
    took = wait_for(lambda: store.change_marker() is not None, seconds=15)
    print(f"marker back {took:.2f}s after the server was")
    assert generation(store.change_marker()) > generation(before)
    store.close()


def test_a_listener_that_stops_answering_is_not_trusted(two: tuple[PostgresStore, PostgresStore],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _first, second = two
    marker = second.change_marker()
    assert marker is not None
    # As if the last round trip that came back was sent longer ago than STALE_AFTER (a silent network).
    monkeypatch.setattr(second.changes, "_alive_at", time.monotonic() - pg_listener.STALE_AFTER - 0.01)
    assert second.change_marker() is None


def test_close_ends_the_thread_at_once_and_the_marker(pg_url: str) -> None:
    store = live(PostgresStore(pg_url))
    thread = store.changes._thread
    started = time.perf_counter()
    store.close()
    assert not thread.is_alive() and time.perf_counter() - started < 1.0
    assert store.change_marker() is None and thread.daemon


def test_close_with_the_server_gone_does_not_hang(pg_url: str, pg_cluster: PgCluster) -> None:
    store = live(PostgresStore(pg_url, pool_wait=1.0))
    pg_cluster.stop("immediate")
    try:
        wait_for(lambda: store.change_marker() is None)
        started = time.perf_counter()
        store.close()
        assert time.perf_counter() - started < 3.0
    finally:
        pg_cluster.start()


def test_concurrent_own_writes_each_move_the_marker(pg_url: str) -> None:
    store = live(PostgresStore(pg_url))
    errors: list[AssertionError] = []

    def writer(n: int) -> None:
        for i in range(10):
            before = store.change_marker()
            store.put_meta(f"k{n}", str(i).encode())
            try:
                assert store.change_marker() != before
            except AssertionError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert errors == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_trusts_the_parents_listener(pg_url: str) -> None:
    store = live(PostgresStore(pg_url))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, b"none" if store.change_marker() is None else b"some")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    answer = os.read(read, 8)
    os.close(read)
    assert answer == b"none" and store.change_marker() is not None
    store.close()


def test_a_user_with_data_rights_only_opens_the_store_and_its_own_writes_notify(
        pg_url: str, pg_cluster: PgCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    PostgresStore(pg_url).close()  # the owner creates the schema and the triggers
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(b"DROP TRIGGER kinko_notify ON tokens")
        role = f"dml_{os.getpid()}_{time.monotonic_ns()}"
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'".encode())
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}".encode())
        # no CREATE on the schema: data rights only, the schema is its owner's to migrate
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{pg_cluster.port}:*:{role}:pw-{role}\n")
    passfile.chmod(0o600)
    url = pg_url.split("?")[0].replace(f"{USER}@", f"{role}@") + f"?passfile={passfile}"
    store = live(PostgresStore(url))
    try:
        assert "cannot create the change-notifying triggers (tokens)" in caplog.text
        before = store.change_marker()
        store.insert_token(_token("t1"))
        assert store.change_marker() != before
    finally:
        store.close()
