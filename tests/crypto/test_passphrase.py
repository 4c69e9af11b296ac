"""Tests for kinko.crypto.passphrase: argon2id key derivation and its parameter policy."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from kinko.crypto.passphrase import (
    DEFAULT_PARAMS,
    Argon2Params,
    derive_key,
    new_salt,
)
from kinko.errors import InvalidInput, KinkoError

# Small costs keep the suite fast; only one test pays for DEFAULT_PARAMS.
FAST = Argon2Params.from_dict(
    {"time_cost": 1, "memory_kib": 64, "parallelism": 1, "hash_len": 32}, allow_weak=True
)
PASSPHRASE = "correct horse battery staple"
SALT = bytes(range(16))


def test_default_params_are_stated_and_at_least_owasp() -> None:
    assert DEFAULT_PARAMS.to_dict() == {"time_cost": 3, "memory_kib": 65536, "parallelism": 2, "hash_len": 32}
    # OWASP minimum for argon2id: 19 MiB, t=2, p=1.
    assert DEFAULT_PARAMS.memory_kib >= 19 * 1024
    assert DEFAULT_PARAMS.time_cost >= 2
    assert not DEFAULT_PARAMS.is_weak


def test_default_params_derive_the_same_key_as_an_independent_argon2id() -> None:
    # cryptography's Argon2id (OpenSSL/Rust) as an oracle: proves type=ID, version 1.3 and the costs.
    key = derive_key(PASSPHRASE, SALT)
    expected = Argon2id(salt=SALT, length=32, iterations=3, lanes=2, memory_cost=65536).derive(
        PASSPHRASE.encode()
    )
    assert key == expected
    assert len(key) == 32


def test_same_inputs_give_the_same_key() -> None:
    assert derive_key(PASSPHRASE, SALT, FAST) == derive_key(PASSPHRASE, SALT, FAST)
    assert derive_key(PASSPHRASE, SALT, FAST) == derive_key(PASSPHRASE.encode(), SALT, FAST)


def test_different_salt_passphrase_or_params_give_different_keys() -> None:
    base = derive_key(PASSPHRASE, SALT, FAST)
    assert derive_key(PASSPHRASE, bytes(16), FAST) != base
    assert derive_key(PASSPHRASE + "!", SALT, FAST) != base
    assert derive_key(PASSPHRASE, SALT, Argon2Params(time_cost=2, memory_kib=64, parallelism=1)) != base


def test_unicode_passphrase_is_normalised_before_hashing() -> None:
    composed = "pässwörd-über-alles"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert derive_key(composed, SALT, FAST) == derive_key(decomposed, SALT, FAST)


def test_new_salt_is_16_random_bytes() -> None:
    salts = {new_salt() for _ in range(8)}
    assert len(salts) == 8
    assert all(len(s) == 16 for s in salts)


def test_short_salt_is_refused() -> None:
    with pytest.raises(InvalidInput, match="salt must be at least 16 bytes"):
        derive_key(PASSPHRASE, b"short-salt", FAST)


# --- passphrase rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", ["", b""])
def test_empty_passphrase_is_refused(empty: str | bytes) -> None:
    with pytest.raises(InvalidInput, match="must not be empty"):
        derive_key(empty, SALT, FAST)


@pytest.mark.parametrize("short", ["elevenchars", b"elevenchars", "ÅÅÅÅÅÅÅÅÅÅÅ"])
def test_passphrase_shorter_than_12_characters_is_refused(short: str | bytes) -> None:
    with pytest.raises(InvalidInput, match="at least 12 characters"):
        derive_key(short, SALT, FAST)


def test_twelve_characters_are_enough_counting_characters_not_bytes() -> None:
    assert len(derive_key("twelve-chars", SALT, FAST)) == 32
    assert len(derive_key("金庫金庫金庫金庫金庫金庫", SALT, FAST)) == 32


SECRETS = ["hunter2", "s3cr3t-passphrase-do-not-log", "ÅÅÅÅ"]


@pytest.mark.parametrize("secret", SECRETS)
def test_passphrase_never_appears_in_exception_text(secret: str) -> None:
    attempts: list[Callable[[], bytes]] = [
        lambda: derive_key(secret, SALT, FAST),
        lambda: derive_key(secret, b"tiny", FAST),
        lambda: derive_key(secret.encode(), b"", FAST),
    ]
    for attempt in attempts:
        try:
            attempt()
        except KinkoError as exc:
            text = f"{exc} {exc!r} {exc.args} {exc.__cause__!r} {exc.__context__!r}"
            assert secret not in text
            assert secret.encode().hex() not in text
        else:
            assert len(secret) >= 12  # only long passphrases with a good salt may succeed


# --- parameter validation --------------------------------------------------------------------------


def test_params_round_trip_through_dict() -> None:
    for params in (DEFAULT_PARAMS, Argon2Params(time_cost=4, memory_kib=262144, parallelism=4)):
        assert Argon2Params.from_dict(params.to_dict()) == params
    assert Argon2Params.from_dict(FAST.to_dict(), allow_weak=True) == FAST


def test_weak_memory_is_refused_unless_explicitly_allowed() -> None:
    weak = {"time_cost": 3, "memory_kib": 8191, "parallelism": 1, "hash_len": 32}
    with pytest.raises(InvalidInput, match="too weak"):
        Argon2Params.from_dict(weak)
    assert Argon2Params.from_dict(weak, allow_weak=True).memory_kib == 8191
    assert not Argon2Params.from_dict({**weak, "memory_kib": 8192}).is_weak


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"time_cost": 0}, "time_cost"),
        ({"time_cost": -1}, "time_cost"),
        ({"time_cost": 65}, "time_cost"),
        ({"parallelism": 0}, "parallelism"),
        ({"memory_kib": 4 * 1024 * 1024 + 1}, "memory_kib"),
        ({"memory_kib": 15, "parallelism": 2}, "memory_kib"),
        ({"hash_len": 16}, "hash_len"),
        ({"time_cost": "3"}, "time_cost must be an integer"),
        ({"time_cost": True}, "time_cost must be an integer"),
        ({"memory_kib": 65536.0}, "memory_kib must be an integer"),
    ],
)
def test_impossible_or_hostile_params_are_refused_even_when_weak_is_allowed(
    change: dict[str, object], rule: str
) -> None:
    with pytest.raises(InvalidInput, match=rule):
        Argon2Params.from_dict({**DEFAULT_PARAMS.to_dict(), **change}, allow_weak=True)


def test_unknown_or_missing_keys_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown argon2 parameter"):
        Argon2Params.from_dict({**DEFAULT_PARAMS.to_dict(), "salt": "x"})
    partial = DEFAULT_PARAMS.to_dict()
    del partial["parallelism"]
    with pytest.raises(InvalidInput, match="missing argon2 parameter"):
        Argon2Params.from_dict(partial)


def test_direct_construction_checks_hard_limits() -> None:
    with pytest.raises(InvalidInput, match="time_cost"):
        Argon2Params(time_cost=0)


def test_a_passphrase_that_is_not_valid_unicode_is_refused_not_a_crash() -> None:
    # Found by tests/fuzz: a lone surrogate (from undecodable terminal bytes) made derive_key raise
    # UnicodeEncodeError, an internal error, instead of a usage error.
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        derive_key("\ud800" + "x" * 20, os.urandom(16), Argon2Params(time_cost=1, memory_kib=64, parallelism=1))
