"""The AEAD barrier: a ciphertext is bound to its record (vault, path, version, field) and its key term."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.crypto.barrier import HEADER_BYTES, Barrier, term_of
from kinko.crypto.keyring import Keyring
from kinko.errors import IntegrityError
from kinko.vault import Vault
from tests.conftest import FixedClock, new_keyfile_vault

RECORD: list[str | int] = ["vault-1", "team/app/db", 3, "value"]


@pytest.fixture
def barrier() -> Barrier:
    return Barrier(Keyring.new())


def test_round_trip_and_frame(barrier: Barrier) -> None:
    blob = barrier.seal(b"plaintext", RECORD)
    assert blob[:2] == b"k1" and term_of(blob) == 1
    assert b"plaintext" not in blob
    assert barrier.open(blob, RECORD) == b"plaintext"
    assert barrier.seal(b"plaintext", RECORD) != blob  # fresh random nonce every time


@pytest.mark.parametrize(("index", "other"), [
    (0, "vault-2"),  # another vault
    (1, "team/app/db2"),  # another path
    (2, 4),  # another version
    (3, "meta"),  # another field
])
def test_ciphertext_moved_to_another_record_fails(barrier: Barrier, index: int, other: str | int) -> None:
    blob = barrier.seal(b"plaintext", RECORD)
    moved = list(RECORD)
    moved[index] = other
    with pytest.raises(IntegrityError, match="failed authentication"):
        barrier.open(blob, moved)


def test_aad_parts_are_unambiguous(barrier: Barrier) -> None:
    """Length prefixes: ["ab", "c"] and ["a", "bc"] are different records."""
    blob = barrier.seal(b"x", ["ab", "c"])
    with pytest.raises(IntegrityError):
        barrier.open(blob, ["a", "bc"])


@pytest.mark.parametrize("position", [0, 3, HEADER_BYTES - 1, HEADER_BYTES, -1])
def test_flipped_bit_fails(barrier: Barrier, position: int) -> None:
    blob = bytearray(barrier.seal(b"plaintext", RECORD))
    blob[position] ^= 0x01
    with pytest.raises(IntegrityError):
        barrier.open(bytes(blob), RECORD)


@pytest.mark.parametrize("blob", [b"", b"k1", b"k1\x00\x00\x00\x01" + b"\x00" * 20, b"zz" + b"\x00" * 40])
def test_malformed_ciphertext_fails(barrier: Barrier, blob: bytes) -> None:
    with pytest.raises(IntegrityError):
        barrier.open(blob, RECORD)


def test_unknown_term_fails_and_old_terms_stay_readable() -> None:
    ring = Keyring.new()
    barrier = Barrier(ring)
    old = barrier.seal(b"old", RECORD)
    ring.add_term()
    new = barrier.seal(b"new", RECORD)
    assert (term_of(old), term_of(new)) == (1, 2)
    assert barrier.open(old, RECORD) == b"old"
    fresh = Barrier(Keyring.new())  # knows only its own term 1
    with pytest.raises(IntegrityError, match="unknown key term 2"):
        fresh.open(new, RECORD)
    with pytest.raises(IntegrityError, match="failed authentication"):
        fresh.open(old, RECORD)  # same term number, different key


def test_keyring_wipe_and_repr_hold_no_key() -> None:
    ring = Keyring.new()
    key = ring.key(1)
    assert key.hex() not in repr(ring) and repr(key) not in repr(ring)
    held = ring.terms[1]
    ring.wipe()
    assert held == bytearray(32) and ring.terms == {}


# -- through the vault: a ciphertext copied onto another stored record does not open ----------------------------


def _copy_ciphertext(db: Path, source: tuple[str, int], target: tuple[str, int]) -> None:
    conn = sqlite3.connect(db)
    with conn:
        (blob,) = conn.execute("SELECT value_ct FROM versions WHERE path = ? AND version = ?", source).fetchone()
        conn.execute("UPDATE versions SET value_ct = ? WHERE path = ? AND version = ?", (blob, *target))
    conn.close()


@pytest.mark.parametrize(("source", "target"), [
    (("a/one", 1), ("a/two", 1)),  # another path
    (("a/one", 1), ("a/one", 2)),  # another version of the same secret
])
def test_stored_ciphertext_swapped_between_records_fails_to_read(
    vault: Vault, caller: Caller, vault_path: Path, source: tuple[str, int], target: tuple[str, int]
) -> None:
    vault.put(caller, "a/one", b"first")
    vault.put(caller, "a/one", b"second")
    vault.put(caller, "a/two", b"other")
    _copy_ciphertext(vault_path, source, target)
    with pytest.raises(IntegrityError) as err:
        vault.get(caller, target[0], target[1])
    assert err.value.code == "integrity_error"
    assert vault.get(caller, *source).value in (b"first", b"second")  # the original still reads


def test_ciphertext_from_another_vault_fails_to_read(
    vault: Vault, caller: Caller, vault_path: Path, tmp_path: Path
) -> None:
    other = new_keyfile_vault(tmp_path, FixedClock(), name="other.db")
    other.put(caller, "a/one", b"theirs")
    other.close()
    vault.put(caller, "a/one", b"mine")
    src = sqlite3.connect(tmp_path / "other.db")
    (blob,) = src.execute("SELECT value_ct FROM versions WHERE path = 'a/one'").fetchone()
    src.close()
    dst = sqlite3.connect(vault_path)
    with dst:
        dst.execute("UPDATE versions SET value_ct = ? WHERE path = 'a/one'", (blob,))
    dst.close()
    with pytest.raises(IntegrityError):
        vault.get(caller, "a/one")
