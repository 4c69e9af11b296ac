"""Shared fixtures: a fixed clock, an initialised + unsealed vault on a tmp SQLite file, and a database dump."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.crypto.seal import SealType
from kinko.vault import Vault, open_vault
from tests import pg
from tests.pg import PgCluster

#: 2030-01-01T00:00:00Z: far enough from "now" that a test relying on the real clock would show.
T0 = 1_893_456_000.0
DAY = 86_400.0

Dump = dict[str, list[tuple[object, ...]]]


class FixedClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def dump_db(path: Path) -> Dump:
    """Every row of every table, read through a separate connection (sees committed WAL content too)."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def dump_storage(location: Path | str) -> Dump:
    """Every row of every table of a vault on either engine, read through a store of its own."""
    from kinko.storage.location import open_store

    store = open_store(location, create=False)
    try:
        return {table: sorted(rows, key=repr) for table, rows in store.dump().items()}
    finally:
        store.close()


def raw_sql(location: Path | str, statement: str, args: tuple[object, ...] = ()) -> None:
    """What someone with write access to the database does: plain SQL (with `?` placeholders), no kinko."""
    if isinstance(location, Path):
        with contextlib.closing(sqlite3.connect(location)) as conn, conn:
            conn.execute(statement, args)
        return
    import psycopg

    with psycopg.connect(location, autocommit=True) as pg_conn:
        pg_conn.execute(statement.replace("?", "%s").encode(), args)


def integrity_problems(path: Path) -> list[str]:
    """SQLite's own `PRAGMA integrity_check` of a database file: [] when healthy."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return [] if rows == [("ok",)] else [str(r[0]) for r in rows]


def first_bad_line(path: Path | str, key: bytes | None = None) -> int | None:
    """The line of an audit file's first deleted/edited record (None: intact), as `kinko audit verify` finds it."""
    from kinko.access.audit_chain import check_chain

    return check_chain(path, key).first_bad_line


def last_hash(path: Path) -> str:
    """The link the next audit record would chain to: the last record's `hash` (GENESIS for an empty file)."""
    import json

    from kinko.access.audit import GENESIS

    records = path.read_text().splitlines()
    return str(json.loads(records[-1])["hash"]) if records else GENESIS


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` (e.g. "512k") mounted at `where`, for disk-full faults. Needs root (CI runs as root);
    skips the test otherwise, saying why."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root?'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def resize_filesystem(where: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True, capture_output=True)


def new_keyfile_vault(directory: Path, clock: Callable[[], float], *, name: str = "vault.db",
                      storage: Path | str | None = None, **init: object) -> Vault:
    """An initialised, unsealed key-file vault in `directory` (or stored at `storage`, its key file still there)."""
    vault = open_vault(storage or directory / name, create=True, clock=clock)
    vault.init(seal=SealType.KEY_FILE, key_file=directory / (name + ".key"), **init)
    vault.unseal(key_file=directory / (name + ".key"))
    return vault


#: The user's kinko settings: a test must never pick up a developer's server, token or vault.
_USER_ENV = ("KINKO_ADDR", "KINKO_TOKEN", "KINKO_VAULT", "KINKO_CACERT", "KINKO_PASSPHRASE", "KINKO_UNSEAL_SHARES",
             "KINKO_BASELINE_KEY", "KINKO_SCAN_CACHE", "KINKO_SCAN_ENGINE", "KINKO_STORAGE", "KINKO_DEBUG")


@pytest.fixture(scope="session")
def _shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir per test process (the compiled scanner rules are worth keeping between tests)."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, _shared_cache: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own HOME (~/.kinko/token, ~/.kinko/vault.db) and no KINKO_* settings from the shell,
    so tests write only under their temp dirs and run in any order, in parallel."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(_shared_cache))
    for name in _USER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def caller() -> Caller:
    return Caller.local_operator()


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "vault.db"


@pytest.fixture
def vault_storage(vault_path: Path) -> Path | str:
    """Where the `vault` fixture stores its vault: a SQLite file. A module that runs on both engines overrides
    this with `each_engine` (see below)."""
    return vault_path


@pytest.fixture
def vault(tmp_path: Path, clock: FixedClock, vault_storage: Path | str) -> Iterator[Vault]:
    v = new_keyfile_vault(tmp_path, clock, storage=vault_storage)
    yield v
    v.close()


@pytest.fixture
def snapshot(vault_storage: Path | str) -> Callable[[], Dump]:
    """Call before and after an operation; equal dumps mean nothing changed on disk."""
    return lambda: dump_db(vault_storage) if isinstance(vault_storage, Path) else dump_storage(vault_storage)


# -- PostgreSQL: one real, throwaway cluster per test process ------------------------------------------------------
ENGINES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """initdb + pg_ctl in a temp dir on a free port (as an unprivileged user when root), removed at the end.
    Without PostgreSQL's programs the tests that need it skip — or fail, with KINKO_REQUIRE_POSTGRES=1 (CI)."""
    reason = pg.missing()
    if reason is not None:
        if os.environ.get(pg.REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {pg.REQUIRE_ENV}=1 requires it")
        pytest.skip(reason)
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database in the session's cluster (URL with a passfile: no password anywhere else)."""
    return pg_cluster.create_database()


def storage_for(request: pytest.FixtureRequest) -> Path | str:
    """A fresh vault location on the engine `request.param` names: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        return Path(request.getfixturevalue("tmp_path")) / "vault.db"
    return str(request.getfixturevalue("pg_url"))
