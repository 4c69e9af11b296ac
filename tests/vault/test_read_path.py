"""Vault.get's fast path keeps every check: paths, seal, readability, deletion, audit, AAD binding, lazy info."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinko.core.model import Caller
from kinko.crypto.barrier import associated_data
from kinko.errors import (
    IntegrityError,
    InvalidPath,
    NotFound,
    Sealed,
    SecretDisabled,
    SecretExpired,
    SecretNotYetValid,
    VersionConflict,
)
from kinko.vault import Vault, open_vault
from kinko.vault.records import _VALID_PATHS_MAX
from tests.conftest import DAY, T0, FixedClock, new_keyfile_vault


def test_lazy_info_matches_the_stored_version(vault: Vault, caller: Caller, clock: FixedClock) -> None:
    vault.put(caller, "team/app/db", b"v1", tags={"env": "prod"}, expires=T0 + DAY)
    clock.advance(5)
    vault.put(caller, "team/app/db", b"v2", content_type="text")
    first, current = vault.get(caller, "team/app/db", 1), vault.get(caller, "team/app/db")
    assert (first.value, current.value) == (b"v1", b"v2")
    assert [first.info, current.info] == vault.versions(caller, "team/app/db")
    assert first.info.attributes.tags == {"env": "prod"} and first.info.attributes.expires == T0 + DAY
    assert (current.info.version, current.info.created, current.info.key_term) == (2, T0 + 5, 1)


def test_a_live_read_that_keeps_missing_an_existing_secret_is_retried_then_refused(
    vault: Vault, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A live read that misses while the secret exists (a write raced it) is read again; a row is never served
    # from another, unverified read.
    vault.put(caller, "team/app/db", b"v1", tags={"env": "prod"})
    reads: list[str] = []
    monkeypatch.setattr(vault._store, "get_live_version", lambda path, version: reads.append(path))
    with pytest.raises(VersionConflict, match="retry"):
        vault.get(caller, "team/app/db")
    assert len(reads) == 3


def test_invalid_paths_are_refused_every_time(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "team/app/db", b"v")
    for _ in range(2):
        for bad in ("", "team//db", "team/app/db/", "../x", "sys/seal", "a b"):
            with pytest.raises(InvalidPath):
                vault.get(caller, bad)


def test_str_subclass_paths_are_validated_not_looked_up(vault: Vault, caller: Caller) -> None:
    class Sly(str):
        def __hash__(self) -> int:
            return hash("team/app/db")  # collides with the remembered path...

        def __eq__(self, other: object) -> bool:
            return True  # ...and claims to equal it

    vault.put(caller, "team/app/db", b"v")
    vault.get(caller, "team/app/db")
    with pytest.raises(InvalidPath):
        vault.get(caller, Sly("bad//path"))


def test_remembered_paths_stay_bounded(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "team/app/db", b"v")
    for index in range(_VALID_PATHS_MAX + 10):
        with pytest.raises(NotFound):
            vault.get(caller, f"missing/p{index}")
    assert len(vault._records._valid_paths) <= _VALID_PATHS_MAX
    assert vault.get(caller, "team/app/db").value == b"v"


def test_sealed_vault_refuses_a_path_read_before(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "team/app/db", b"v")
    assert vault.get(caller, "team/app/db").value == b"v"
    vault.seal(caller)
    with pytest.raises(Sealed):
        vault.get(caller, "team/app/db")


def test_readability_checks_name_the_reason(vault: Vault, caller: Caller, clock: FixedClock) -> None:
    vault.put(caller, "a/disabled", b"v", enabled=False)
    vault.put(caller, "a/later", b"v", not_before=T0 + DAY)
    vault.put(caller, "a/old", b"v", expires=T0 + DAY)
    with pytest.raises(SecretDisabled, match="'a/disabled' version 1 is disabled"):
        vault.get(caller, "a/disabled")
    with pytest.raises(SecretNotYetValid, match="'a/later' version 1 is not valid before"):
        vault.get(caller, "a/later")
    assert vault.get(caller, "a/old").value == b"v"
    clock.advance(DAY)
    assert vault.get(caller, "a/later").value == b"v"  # not_before is inclusive
    with pytest.raises(SecretExpired, match="'a/old' version 1 expired at"):
        vault.get(caller, "a/old")  # expires is exclusive


def test_deleted_and_missing(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "team/app/db", b"v")
    with pytest.raises(NotFound, match="has no version 7"):
        vault.get(caller, "team/app/db", 7)
    vault.delete(caller, "team/app/db")
    with pytest.raises(NotFound, match="no secret at 'team/app/db'"):
        vault.get(caller, "team/app/db")
    vault.recover(caller, "team/app/db")
    assert vault.get(caller, "team/app/db").value == b"v"


def test_every_get_is_audited_with_its_response(tmp_path: Path, caller: Caller) -> None:
    records: list[tuple[str, str, str]] = []

    def sink(who: Caller, operation: str, path: str, outcome: str, data: Mapping[str, Any] | None = None) -> None:
        records.append((operation, path, outcome))

    vault = new_keyfile_vault(tmp_path, FixedClock())
    vault.put(caller, "team/app/db", b"v")
    audited = open_vault(tmp_path / "vault.db", audit=sink)
    for _ in range(2):
        assert audited.get(caller, "team/app/db").value == b"v"
    assert records == [("secret.get", "team/app/db", "allowed"), ("secret.get.response", "team/app/db", "ok")] * 2
    audited.close()
    vault.close()


def test_ciphertext_swapped_between_records_fails(vault: Vault, caller: Caller, vault_path: Path) -> None:
    vault.put(caller, "team/app/one", b"first")
    vault.put(caller, "team/app/two", b"second")
    conn = sqlite3.connect(vault_path)
    with conn:
        conn.execute("UPDATE versions SET value_ct = (SELECT value_ct FROM versions WHERE path = 'team/app/one') "
                     "WHERE path = 'team/app/two'")
    conn.close()
    with pytest.raises(IntegrityError, match="failed authentication"):
        vault.get(caller, "team/app/two")
    assert vault.get(caller, "team/app/one").value == b"first"


def test_a_remembered_aad_still_binds_the_read(vault: Vault, caller: Caller, vault_path: Path) -> None:
    # Both paths read first, so their AADs are remembered; a swapped or stale ciphertext must still fail.
    vault.put(caller, "team/app/one", b"first")
    vault.put(caller, "team/app/two", b"second")
    assert [vault.get(caller, p).value for p in ("team/app/one", "team/app/two")] == [b"first", b"second"]
    conn = sqlite3.connect(vault_path)
    with conn:
        conn.execute("UPDATE versions SET value_ct = (SELECT value_ct FROM versions WHERE path = 'team/app/one') "
                     "WHERE path = 'team/app/two'")
    conn.close()
    # This process keeps serving the copy it verified (the edit changed no integrity tag, so it is not kinko's);
    # a process without that copy opens the swapped ciphertext, and the AEAD refuses it.
    assert vault.get(caller, "team/app/two").value == b"second"
    fresh = open_vault(vault_path, clock=vault._records._clock)
    with pytest.raises(IntegrityError, match="failed authentication"):
        fresh.get(caller, "team/app/two")
    fresh.close()
    vault.put(caller, "team/app/one", b"newer")  # a new version is a new identity: a new AAD
    assert vault.get(caller, "team/app/one").value == b"newer"
    assert vault.get(caller, "team/app/one", 1).value == b"first"


def test_a_remembered_aad_is_not_reused_for_a_recreated_secret(
    vault: Vault, caller: Caller, vault_path: Path
) -> None:
    vault.put(caller, "team/app/db", b"old-password")
    assert vault.get(caller, "team/app/db").value == b"old-password"
    old_ct = vault._store.get_version("team/app/db", 1).value_ct  # type: ignore[union-attr]
    vault.delete(caller, "team/app/db")
    vault.purge(caller, "team/app/db")
    vault.put(caller, "team/app/db", b"new-password")  # same path and version, new incarnation
    assert vault.get(caller, "team/app/db").value == b"new-password"
    conn = sqlite3.connect(vault_path)
    with conn:
        conn.execute("UPDATE versions SET value_ct = ? WHERE path = 'team/app/db'", (old_ct,))
    conn.close()
    assert vault.get(caller, "team/app/db").value == b"new-password"  # the verified copy, never the planted one
    fresh = open_vault(vault_path, clock=vault._records._clock)
    with pytest.raises(IntegrityError):
        fresh.get(caller, "team/app/db")
    fresh.close()


def test_readability_is_checked_after_a_read_was_remembered(
    vault: Vault, caller: Caller, clock: FixedClock
) -> None:
    vault.put(caller, "a/b", b"v")
    assert vault.get(caller, "a/b").value == b"v"
    vault.update_attributes(caller, "a/b", enabled=False)
    with pytest.raises(SecretDisabled):
        vault.get(caller, "a/b")
    vault.update_attributes(caller, "a/b", enabled=True, expires=T0 + DAY)
    assert vault.get(caller, "a/b").value == b"v"
    clock.advance(DAY)
    with pytest.raises(SecretExpired):
        vault.get(caller, "a/b")


def test_verified_rows_stay_bounded_and_exact_str(vault: Vault, caller: Caller,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kinko.vault.records._VALID_PATHS_MAX", 3)
    for index in range(5):
        vault.put(caller, f"many/p{index}", b"v")
        vault.get(caller, f"many/p{index}")
    assert len(vault._records._verified) <= 3

    class Path2(str):
        pass

    vault._records._verified.clear()
    assert vault.get(caller, Path2("many/p1")).value == b"v"
    assert vault._records._verified == {}  # only exact str keys are remembered
    assert vault.get(caller, "many/p1").value == b"v"
    assert list(vault._records._verified) == ["many/p1"]


def test_the_hot_read_leaves_no_read_transaction_open(vault: Vault, caller: Caller, vault_path: Path) -> None:
    # The live read reuses one cursor per thread; the single-row fetch must finish its statement, or a reader
    # would pin the WAL (a TRUNCATE checkpoint from another connection reports busy = 1).
    vault.put(caller, "team/app/db", b"v")
    other = sqlite3.connect(vault_path, isolation_level=None, timeout=0)
    try:
        for path in ("team/app/db", "team/app/missing"):
            with pytest.raises(NotFound) if path.endswith("missing") else contextlib.nullcontext():
                vault.get(caller, path)
            vault.put(caller, "team/app/other", b"w")  # something for the checkpoint to move
            assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    finally:
        other.close()


_SEGMENT = st.text("abcXYZ019._-", min_size=1, max_size=8)


# The vault fixture is shared across examples on purpose: the test only reads it.
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join),
       version=st.integers(min_value=1, max_value=2**63 - 1), field=st.sampled_from(["value", "meta", "é"]))
def test_record_aad_is_the_generic_encoding(vault: Vault, path: str, version: int, field: str) -> None:
    # The cached-prefix AAD must equal what the barrier seals with, or existing vaults stop opening.
    expected = associated_data([vault._seal_state.vault_id(), path, version, field])
    assert vault._records._record_aad(path, version, field) == expected
