"""A 1-of-1 Shamir vault always round-trips, whatever its key's last byte (it used to be the share's x)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kinko.crypto import seal
from kinko.crypto.seal import UNSEAL_KEY_BYTES, SealType, decode_single_share, encode_single_share
from kinko.crypto.shares import encode_share
from kinko.errors import InvalidShare, UnsealFailed
from kinko.vault import open_vault
from kinko.vault.seal_state import SealState
from tests.conftest import FixedClock


def test_a_key_ending_in_zero_round_trips() -> None:
    for key in (bytes(UNSEAL_KEY_BYTES), os.urandom(UNSEAL_KEY_BYTES - 1) + b"\0"):
        assert decode_single_share(encode_single_share(key)) == key


def test_many_random_keys_round_trip() -> None:
    keys = [os.urandom(UNSEAL_KEY_BYTES) for _ in range(2000)]  # ~8 of them end in a zero byte
    assert [decode_single_share(encode_single_share(k)) for k in keys] == keys


def test_many_random_single_share_inits_round_trip() -> None:
    for _ in range(1000):
        config, key, texts = SealState._new_unseal_key(SealType.SHAMIR, 1, 1, None, None)
        assert config.shares == 1 and len(texts) == 1
        assert decode_single_share(texts[0]) == key


def test_the_older_raw_key_share_still_unseals() -> None:
    key = os.urandom(UNSEAL_KEY_BYTES - 1) + b"\x07"
    assert decode_single_share(encode_share(key)) == key


def test_a_share_of_another_length_is_refused() -> None:
    with pytest.raises(InvalidShare):
        decode_single_share(encode_share(os.urandom(16) + b"\x01"))


def _zero_ending_urandom(real: Callable[[int], bytes]) -> Callable[[int], bytes]:
    calls = []

    def fake(n: int) -> bytes:
        calls.append(n)
        # the first 32-byte draw of init is the unseal key: make it end in 0
        return real(n - 1) + b"\0" if len(calls) == 1 else real(n)

    return fake


def test_vault_whose_key_ends_in_zero_unseals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[bytes] = []
    real_wrap = seal.wrap_root_key

    def spy(unseal_key: bytes, root_key: bytes, vault_id: str) -> bytes:
        captured.append(unseal_key)
        return real_wrap(unseal_key, root_key, vault_id)

    monkeypatch.setattr("kinko.vault.seal_state.os.urandom", _zero_ending_urandom(os.urandom))
    monkeypatch.setattr("kinko.vault.seal_state.wrap_root_key", spy)
    vault = open_vault(tmp_path / "vault.db", create=True, clock=FixedClock())
    shares = vault.init(seal=SealType.SHAMIR, shares=1, threshold=1).shares
    monkeypatch.undo()
    assert captured[0][-1] == 0  # the case that used to be unrecoverable
    assert not vault.unseal(share=shares[0]).sealed
    vault.drop_keys()
    with pytest.raises(UnsealFailed):
        vault.unseal(share=encode_single_share(os.urandom(UNSEAL_KEY_BYTES)))
    assert not vault.unseal(share=shares[0]).sealed
