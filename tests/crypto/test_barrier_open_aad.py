"""Barrier.open_aad (pre-encoded associated data, ciphers looked up by frame header) and the AAD encoding."""

from __future__ import annotations

import pytest

from kinko.crypto.barrier import Barrier, UnknownTerm, aad_part, associated_data
from kinko.crypto.keyring import Keyring
from kinko.errors import IntegrityError

RECORD: list[str | int] = ["vault-1", "team/app/db", 3, "value"]


@pytest.fixture
def barrier() -> Barrier:
    return Barrier(Keyring.new())


def test_open_aad_matches_open(barrier: Barrier) -> None:
    blob = barrier.seal(b"plaintext", RECORD)
    assert barrier.open_aad(blob, associated_data(RECORD)) == b"plaintext"
    with pytest.raises(IntegrityError, match="failed authentication"):
        barrier.open_aad(blob, associated_data(["vault-1", "team/app/db", 4, "value"]))


def test_open_aad_on_a_fresh_barrier_and_after_forget(barrier: Barrier) -> None:
    blob = barrier.seal(b"plaintext", RECORD)
    fresh = Barrier(barrier.keyring)  # nothing cached yet: the header lookup misses and falls back
    assert fresh.open_aad(blob, associated_data(RECORD)) == b"plaintext"
    barrier.forget()
    assert barrier.open_aad(blob, associated_data(RECORD)) == b"plaintext"


def test_old_terms_open_after_a_rotation(barrier: Barrier) -> None:
    old = barrier.seal(b"old", RECORD)
    barrier.keyring.add_term()
    new = barrier.seal(b"new", RECORD)
    assert (old[:6], new[:6]) == (b"k1\x00\x00\x00\x01", b"k1\x00\x00\x00\x02")
    assert barrier.open_aad(old, associated_data(RECORD)) == b"old"
    assert barrier.open_aad(new, associated_data(RECORD)) == b"new"


@pytest.mark.parametrize("mangle", [
    lambda b: b"k2" + b[2:],  # wrong magic, known term
    lambda b: b"\x00" + b[1:],
    lambda b: b[:30],  # shorter than header + tag
    lambda b: b"",
], ids=["magic", "magic-byte", "short", "empty"])
def test_malformed_frames_are_refused(barrier: Barrier, mangle: object) -> None:
    blob = barrier.seal(b"plaintext", RECORD)
    assert callable(mangle)
    with pytest.raises(IntegrityError, match="malformed"):
        barrier.open_aad(mangle(blob), associated_data(RECORD))


def test_unknown_term_is_reported(barrier: Barrier) -> None:
    blob = barrier.seal(b"plaintext", RECORD)
    with pytest.raises(UnknownTerm, match="unknown key term 9"):
        barrier.open_aad(blob[:2] + (9).to_bytes(4, "big") + blob[6:], associated_data(RECORD))


def test_associated_data_encoding_is_unchanged() -> None:
    # Stored ciphertexts are bound to these exact bytes: changing the encoding would orphan every vault.
    assert associated_data(["ab", 3, b"\x00", "é"]) == (
        b"\x00\x00\x00\x02ab" b"\x00\x00\x00\x013" b"\x00\x00\x00\x01\x00" b"\x00\x00\x00\x02\xc3\xa9"
    )
    assert aad_part(12) == b"\x00\x00\x00\x0212"
