"""What the hot read path caches is never stale: a change committed through another connection or process (here:
a second Vault on the same file, a raw SQLite UPDATE, a subprocess) is seen by the very next call."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.errors import IntegrityError, PermissionDenied
from kinko.storage.fresh import FreshCache
from kinko.storage.sqlite import SqliteStore
from kinko.vault import Vault, open_vault
from tests.conftest import FixedClock, new_keyfile_vault

READER = "name: reader\nrules:\n  - {path: 'app/*', capabilities: [read]}\n"


@pytest.fixture
def two(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[Vault, Vault]]:
    """Two Vaults on one file, as two server processes would hold it."""
    first = new_keyfile_vault(tmp_path, clock)
    second = open_vault(tmp_path / "vault.db", clock=clock)
    second.unseal(key_file=tmp_path / "vault.db.key")
    yield first, second
    second.close()
    first.close()


def test_a_token_revoked_elsewhere_is_refused_by_the_next_request(two: tuple[Vault, Vault], caller: Caller) -> None:
    first, second = two
    first.write_policy(caller, READER)
    first.put(caller, "app/db", b"v1")
    token, _info = first.create_token(caller, policies=["reader"])
    for _ in range(3):  # warm every cache on the first vault
        assert first.get(first.authenticate(token), "app/db").value == b"v1"
    second.revoke_token(caller, token)
    with pytest.raises(PermissionDenied):
        first.authenticate(token)


def test_a_policy_narrowed_elsewhere_applies_at_once(two: tuple[Vault, Vault], caller: Caller) -> None:
    first, second = two
    first.write_policy(caller, READER)
    first.put(caller, "app/db", b"v1")
    reader = first.authenticate(first.create_token(caller, policies=["reader"])[0])
    assert first.get(reader, "app/db").value == b"v1"
    second.write_policy(caller, READER.replace("app/*", "other/*"))
    with pytest.raises(PermissionDenied):
        first.get(reader, "app/db")


def test_a_value_and_kv_settings_written_elsewhere_are_read_at_once(two: tuple[Vault, Vault], caller: Caller) -> None:
    first, second = two
    first.kv.write(caller, "secret", "app/db", {"v": "1"}, None)
    assert first.kv.read(caller, "app/db").data == {"v": "1"}
    assert first.kv.read(caller, "app/db").custom_metadata is None
    second.kv.write(caller, "secret", "app/db", {"v": "2"}, None)
    second.kv.write_metadata(caller, "secret", "app/db", custom_metadata={"owner": "b"})
    entry = first.kv.read(caller, "app/db")
    assert entry.data == {"v": "2"} and entry.custom_metadata == {"owner": "b"}
    second.kv.delete_latest(caller, "app/db")
    assert first.kv.read(caller, "app/db").data is None


def test_a_write_by_another_process_is_read_at_once(tmp_path: Path, clock: FixedClock, caller: Caller) -> None:
    vault = new_keyfile_vault(tmp_path, clock)
    try:
        vault.put(caller, "app/db", b"v1")
        assert vault.get(caller, "app/db").value == b"v1"
        script = ("import sys; from pathlib import Path; from kinko.vault import open_vault;"
                  "from kinko.core.model import Caller;"
                  "v = open_vault(Path(sys.argv[1])); v.unseal(key_file=Path(sys.argv[2]));"
                  "v.put(Caller.local_operator(), 'app/db', b'v2'); v.close()")
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "vault.db"), str(tmp_path / "vault.db.key")],
                       check=True, timeout=60)
        assert vault.get(caller, "app/db").value == b"v2"
    finally:
        vault.close()


def test_a_row_edited_in_the_file_is_never_served(tmp_path: Path, clock: FixedClock, caller: Caller) -> None:
    vault = new_keyfile_vault(tmp_path, clock)
    try:
        vault.put(caller, "app/db", b"v1")
        vault.put(caller, "app/db", b"v2")
        assert vault.get(caller, "app/db").value == b"v2"
        conn = sqlite3.connect(tmp_path / "vault.db")
        with conn:  # a DBA swaps version 1's ciphertext into version 2's row
            old = conn.execute("SELECT value_ct FROM versions WHERE path='app/db' AND version=1").fetchone()[0]
            conn.execute("UPDATE versions SET value_ct=? WHERE path='app/db' AND version=2", (old,))
        conn.close()
        assert vault.get(caller, "app/db").value == b"v2"  # the copy verified before the edit, never version 1's
    finally:
        vault.close()
    fresh = open_vault(tmp_path / "vault.db", clock=clock)
    try:
        fresh.unseal(key_file=tmp_path / "vault.db.key")
        with pytest.raises(IntegrityError):  # a process that never saw the genuine row refuses the edited one
            fresh.get(caller, "app/db")
    finally:
        fresh.close()


def test_a_store_without_a_marker_is_never_served_from_the_cache(tmp_path: Path) -> None:
    class NoMarker(SqliteStore):
        def change_marker(self) -> int | None:
            return None

    store = NoMarker(tmp_path / "s.db")
    loads: list[int] = []
    cache: FreshCache[int] = FreshCache(store)
    try:
        for n in range(3):
            assert cache.get("k", lambda n=n: loads.append(n) or n) == n  # type: ignore[func-returns-value]
    finally:
        store.close()
    assert loads == [0, 1, 2]


def test_the_marker_moves_on_every_commit_from_any_connection(tmp_path: Path) -> None:
    store, other = SqliteStore(tmp_path / "s.db"), SqliteStore(tmp_path / "s.db")
    try:
        before = store.change_marker()
        assert store.change_marker() == before  # reads change nothing
        other.put_meta("k", b"1")
        after_other = store.change_marker()
        store.put_meta("k", b"2")  # this store's own write, on its own connection
        assert len({before, after_other, store.change_marker()}) == 3
    finally:
        store.close()
        other.close()


def test_a_pinned_marker_never_lets_a_use_limited_token_be_spent_twice(vault: Vault, caller: Caller) -> None:
    vault.write_policy(caller, READER)
    token, _ = vault.create_token(caller, policies=["reader"], num_uses=2)
    with vault.pinned_reads():  # both uses inside one pinned operation: the second must see the first's commit
        vault.authenticate(token)
        vault.authenticate(token)
        with pytest.raises(PermissionDenied):
            vault.authenticate(token)
    with pytest.raises(PermissionDenied):
        vault.authenticate(token)


def test_pinned_reads_see_what_was_committed_before_they_began(two: tuple[Vault, Vault], caller: Caller) -> None:
    first, second = two
    first.put(caller, "app/db", b"v1")
    with first.pinned_reads():
        assert first.get(caller, "app/db").value == b"v1"
    second.put(caller, "app/db", b"v2")
    with first.pinned_reads():
        assert first.get(caller, "app/db").value == b"v2"
