"""The KV v2 engine over kinko paths: versions and their states, cas, patch, settings, and what reaches the disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    PurgeProtected,
    VersionConflict,
    VersionDestroyed,
)
from kinko.vault import Vault
from tests.conftest import FixedClock, new_keyfile_vault

CANARY = "kinko-kv-canary-3b1d"
MOUNT = "secret"


def test_json_round_trips_and_kv_pairs_read_the_same_through_the_native_api(vault: Vault, caller: Caller) -> None:
    kv = vault.kv
    kv.write(caller, MOUNT, "app/db", {"user": "app", "password": "pw"}, None)
    kv.write(caller, MOUNT, "app/conf", {"port": 5432, "tls": {"on": True}, "hosts": ["a", "b"]}, None)
    assert kv.read(caller, "app/db").data == {"user": "app", "password": "pw"}
    assert kv.read(caller, "app/conf").data == {"port": 5432, "tls": {"on": True}, "hosts": ["a", "b"]}
    native = vault.get(caller, "app/db")  # all-string values: kinko's own key/value map, readable natively
    assert native.info.attributes.content_type != "json"
    assert vault.get(caller, "app/conf").info.attributes.content_type == "json"


def test_cas_zero_only_creates_and_a_stale_cas_is_refused(vault: Vault, caller: Caller) -> None:
    kv = vault.kv
    assert kv.write(caller, MOUNT, "a", {"v": "1"}, 0).version == 1
    with pytest.raises(VersionConflict, match="check-and-set parameter did not match"):
        kv.write(caller, MOUNT, "a", {"v": "2"}, 0)
    assert kv.write(caller, MOUNT, "a", {"v": "2"}, 1).version == 2
    with pytest.raises(VersionConflict):
        kv.write(caller, MOUNT, "a", {"v": "3"}, 1)
    assert kv.read(caller, "a").data == {"v": "2"}


def test_cas_required_by_secret_or_by_mount(vault: Vault, caller: Caller) -> None:
    kv = vault.kv
    kv.write(caller, MOUNT, "a", {"v": "1"}, None)
    kv.write_metadata(caller, "secret", "a", cas_required=True)
    with pytest.raises(InvalidInput, match="check-and-set parameter required"):
        kv.write(caller, MOUNT, "a", {"v": "2"}, None)
    kv.write_config(caller, MOUNT, cas_required=True)
    with pytest.raises(InvalidInput, match="check-and-set parameter required"):
        kv.write(caller, MOUNT, "b", {"v": "1"}, None)
    assert kv.write(caller, MOUNT, "b", {"v": "1"}, 0).version == 1
    assert kv.read_config(caller, MOUNT).cas_required


def test_patch_merges_into_a_new_version_and_null_removes_a_key(vault: Vault, caller: Caller) -> None:
    kv = vault.kv
    kv.write(caller, MOUNT, "a", {"user": "u", "password": "p", "tls": {"on": "yes", "ca": "x"}}, None)
    assert kv.patch(caller, MOUNT, "a", {"password": "q", "user": None, "tls": {"ca": None}}, None).version == 2
    assert kv.read(caller, "a").data == {"password": "q", "tls": {"on": "yes"}}
    assert kv.read(caller, "a", 1).data == {"user": "u", "password": "p", "tls": {"on": "yes", "ca": "x"}}
    with pytest.raises(VersionConflict):
        kv.patch(caller, MOUNT, "a", {"password": "r"}, 1)
    with pytest.raises(NotFound):
        kv.patch(caller, MOUNT, "missing", {"x": "y"}, None)


def test_delete_undelete_destroy_move_a_version_through_its_states(vault: Vault, caller: Caller,
                                                                   clock: FixedClock) -> None:
    kv = vault.kv
    for n in range(3):
        kv.write(caller, MOUNT, "a", {"v": str(n + 1)}, None)
    kv.delete_latest(caller, "a")
    entry = kv.read(caller, "a")
    assert entry.data is None and entry.version.version == 3 and entry.version.deletion_time == clock.now
    kv.delete_versions(caller, "a", [1])
    kv.undelete(caller, "a", [1, 3])
    assert kv.read(caller, "a").data == {"v": "3"} and kv.read(caller, "a", 1).data == {"v": "1"}
    kv.destroy(caller, "a", [2])
    destroyed = kv.read(caller, "a", 2)
    assert destroyed.data is None and destroyed.version.destroyed
    kv.undelete(caller, "a", [2])  # a destroyed version cannot come back
    assert kv.read(caller, "a", 2).data is None
    with pytest.raises(VersionDestroyed):
        vault.get(caller, "a", 2)
    states = {v.version: (v.destroyed, v.deletion_time) for v in kv.metadata(caller, "a").versions}
    assert states == {1: (False, None), 2: (True, None), 3: (False, None)}


def test_version_operations_on_a_missing_secret_change_nothing(vault: Vault, caller: Caller) -> None:
    kv = vault.kv
    kv.delete_latest(caller, "nothing/here")  # Vault answers 204 for these
    kv.delete_versions(caller, "nothing/here", [1])
    kv.destroy(caller, "nothing/here", [1])
    with pytest.raises(NotFound):
        kv.read(caller, "nothing/here")
    with pytest.raises(InvalidInput):
        kv.destroy(caller, "nothing/here", [])


def test_destroy_removes_the_ciphertext_from_the_database(tmp_path: Path, clock: FixedClock, caller: Caller) -> None:
    vault = new_keyfile_vault(tmp_path, clock)
    try:
        vault.kv.write(caller, MOUNT, "a", {"password": CANARY}, None)
        vault.kv.write(caller, MOUNT, "a", {"password": "other"}, None)
        before = _ciphertext(tmp_path / "vault.db", "a", 1)
        vault.kv.destroy(caller, "a", [1])
        assert before and _ciphertext(tmp_path / "vault.db", "a", 1) == b""
        assert vault.kv.read(caller, "a").data == {"password": "other"}
    finally:
        vault.close()


def test_max_versions_keeps_only_the_newest(vault: Vault, caller: Caller) -> None:
    kv = vault.kv
    kv.write_metadata(caller, "secret", "a", max_versions=2)
    for n in range(4):
        kv.write(caller, MOUNT, "a", {"v": str(n)}, None)
    meta = kv.metadata(caller, "a")
    assert [v.version for v in meta.versions] == [3, 4] and meta.oldest_version == 3
    with pytest.raises(InvalidInput):
        kv.write_metadata(caller, "secret", "a", max_versions=-1)


def test_custom_metadata_is_sealed_and_limited(tmp_path: Path, clock: FixedClock, caller: Caller) -> None:
    vault = new_keyfile_vault(tmp_path, clock)
    try:
        vault.kv.write(caller, MOUNT, "a", {"v": "1"}, None)
        vault.kv.write_metadata(caller, "secret", "a", custom_metadata={"owner": CANARY})
        assert vault.kv.read(caller, "a").custom_metadata == {"owner": CANARY}
        with pytest.raises(InvalidInput):
            vault.kv.write_metadata(caller, "secret", "a", custom_metadata={"k": "v" * 1000})
        with pytest.raises(InvalidInput):
            vault.kv.write_metadata(caller, "secret", "a", custom_metadata={f"k{n}": "v" for n in range(65)})
    finally:
        vault.close()
    assert CANARY.encode() not in (tmp_path / "vault.db").read_bytes()
    assert not any(CANARY.encode() in p.read_bytes() for p in tmp_path.glob("vault.db*"))


def test_metadata_delete_needs_delete_and_purge_and_removes_everything(vault: Vault, caller: Caller) -> None:
    root = caller
    vault.write_policy(root, "name: deleter\nrules:\n  - {path: 'a', capabilities: [read, delete, list]}\n")
    deleter = vault.authenticate(vault.create_token(root, policies=["deleter"])[0])
    vault.kv.write(root, MOUNT, "a", {"v": "1"}, None)
    vault.kv.write_metadata(root, "secret", "a", custom_metadata={"o": "x"})
    with pytest.raises(PermissionDenied):
        vault.kv.delete_metadata(deleter, "a")
    assert vault.kv.read(root, "a").data == {"v": "1"}  # nothing half done
    vault.kv.delete_metadata(root, "a")
    with pytest.raises(NotFound):
        vault.kv.metadata(root, "a")
    vault.kv.write(root, MOUNT, "a", {"v": "new"}, 0)  # the path starts again at version 1
    assert vault.kv.read(root, "a").version.version == 1 and vault.kv.read(root, "a").custom_metadata is None


def test_metadata_delete_is_refused_under_purge_protection(tmp_path: Path, clock: FixedClock,
                                                            caller: Caller) -> None:
    vault = new_keyfile_vault(tmp_path, clock, purge_protection=True)
    try:
        vault.kv.write(caller, MOUNT, "a", {"v": "1"}, None)
        with pytest.raises(PurgeProtected):
            vault.kv.delete_metadata(caller, "a")
        assert vault.kv.read(caller, "a").data == {"v": "1"}
    finally:
        vault.close()


def test_a_token_without_rights_gets_nothing_and_learns_nothing(vault: Vault, caller: Caller) -> None:
    vault.write_policy(caller, "name: other\nrules:\n  - {path: 'other/*', capabilities: [read, create, update]}\n")
    other = vault.authenticate(vault.create_token(caller, policies=["other"])[0])
    vault.kv.write(caller, MOUNT, "a", {"v": "1"}, None)
    vault.kv.write_metadata(caller, "secret", "a", cas_required=True)
    for action in (lambda: vault.kv.read(other, "a"), lambda: vault.kv.metadata(other, "a"),
                   lambda: vault.kv.write(other, MOUNT, "a", {"v": "2"}, None),  # not "cas required"
                   lambda: vault.kv.destroy(other, "a", [1]), lambda: vault.kv.undelete(other, "a", [1]),
                   lambda: vault.kv.patch(other, MOUNT, "a", {"v": "3"}, 1),
                   lambda: vault.kv.read_config(other, MOUNT)):
        with pytest.raises(PermissionDenied):
            action()


def test_delete_version_after_expires_new_versions(vault: Vault, caller: Caller, clock: FixedClock) -> None:
    vault.kv.write_metadata(caller, "secret", "a", delete_version_after=60)
    vault.kv.write(caller, MOUNT, "a", {"v": "1"}, None)
    assert vault.kv.read(caller, "a").data == {"v": "1"}
    clock.advance(61)
    entry = vault.kv.read(caller, "a")
    assert entry.data is None and entry.version.deletion_time is not None


def _ciphertext(db: Path, path: str, version: int) -> bytes:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT value_ct FROM versions WHERE path = ? AND version = ?", (path, version)).fetchone()
        return bytes(row[0])
    finally:
        conn.close()


def test_writing_the_data_does_not_let_a_token_change_the_settings_that_guard_it(vault: Vault, caller: Caller) -> None:
    vault.write_policy(caller, "name: writer\nrules:\n  - {path: 'app/*', capabilities: [read, create, update]}\n")
    vault.write_policy(caller, "name: settings\nrules:\n"
                               "  - {path: 'sys/kv/secret/metadata/app/*', capabilities: [update]}\n")
    writer = vault.authenticate(vault.create_token(caller, policies=["writer"])[0])
    admin = vault.authenticate(vault.create_token(caller, policies=["settings"])[0])
    vault.kv.write(caller, MOUNT, "app/db", {"v": "1"}, None)
    vault.kv.write_metadata(caller, MOUNT, "app/db", cas_required=True)
    for change in ({"cas_required": False}, {"max_versions": 1}, {"delete_version_after": 1.0},
                   {"custom_metadata": {"owner": "me"}}):
        with pytest.raises(PermissionDenied):
            vault.kv.write_metadata(writer, MOUNT, "app/db", **change)  # type: ignore[arg-type]
    assert vault.kv.metadata(caller, "app/db").settings.cas_required
    vault.kv.write_metadata(admin, MOUNT, "app/db", max_versions=3)  # its own grant, on its own path
    assert vault.kv.metadata(caller, "app/db").settings.max_versions == 3
    assert vault.kv.write(writer, MOUNT, "app/db", {"v": "2"}, 1).version == 2  # and writing still works
