"""Passphrase unseal: derive the 32-byte unseal key from an operator passphrase with argon2id.

DEFAULT_PARAMS are argon2id, time_cost=3, memory 64 MiB (65536 KiB), parallelism=2, 32-byte output.
That is stronger than OWASP's Password Storage Cheat Sheet minimum for argon2id (19 MiB, t=2, p=1) and
matches the memory and passes of RFC 9106's second recommended option (64 MiB, t=3; it uses p=4, we use
p=2 so derivation stays quick on the 2-core machines kinko targets). Parameters are stored beside the
salt so they can be raised later without breaking existing vaults.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw

from kinko.errors import InvalidInput

#: The unseal key is an AES-256 key.
KEY_LEN = 32
SALT_LEN = 16
MIN_PASSPHRASE_CHARS = 12

# Policy floor: below this the passphrase is too cheap to brute-force. Only `allow_weak` (tests) skips it.
MIN_MEMORY_KIB = 8 * 1024
MIN_TIME_COST = 1
# Ceilings: parameters may come from a stored (possibly tampered) vault header, and an absurd memory or
# time cost would turn every unseal attempt into a denial of service.
MAX_MEMORY_KIB = 4 * 1024 * 1024
MAX_TIME_COST = 64
MAX_PARALLELISM = 64

_FIELDS = ("time_cost", "memory_kib", "parallelism", "hash_len")


@dataclass(frozen=True)
class Argon2Params:
    """argon2id costs. Construction checks hard limits; `from_dict` also enforces the policy floor."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 2
    hash_len: int = KEY_LEN

    def __post_init__(self) -> None:
        for name in _FIELDS:
            value = getattr(self, name)
            # bool is an int subclass; `True` as a cost is certainly a mistake.
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidInput(f"argon2 parameter {name} must be an integer")
        if not MIN_TIME_COST <= self.time_cost <= MAX_TIME_COST:
            raise InvalidInput(f"argon2 time_cost must be between {MIN_TIME_COST} and {MAX_TIME_COST}")
        if not 1 <= self.parallelism <= MAX_PARALLELISM:
            raise InvalidInput(f"argon2 parallelism must be between 1 and {MAX_PARALLELISM}")
        # argon2 itself needs at least 8 KiB per lane.
        if not 8 * self.parallelism <= self.memory_kib <= MAX_MEMORY_KIB:
            raise InvalidInput(
                f"argon2 memory_kib must be between 8 x parallelism and {MAX_MEMORY_KIB} (4 GiB)"
            )
        if self.hash_len != KEY_LEN:
            raise InvalidInput(f"argon2 hash_len must be {KEY_LEN} (the unseal key is AES-256)")

    @property
    def is_weak(self) -> bool:
        """True when below the policy floor (fine for tests, refused for stored vault parameters)."""
        # time_cost < MIN_TIME_COST cannot get here: argon2 cannot run it, so construction refuses it.
        return self.memory_kib < MIN_MEMORY_KIB

    def to_dict(self) -> dict[str, int]:
        """Plain dict for storing beside the salt (e.g. in the vault's seal configuration)."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_dict(cls, d: Mapping[str, object], *, allow_weak: bool = False) -> Argon2Params:
        """Rebuild parameters from `to_dict` output; refuses unknown or missing keys and weak costs.

        `allow_weak=True` skips only the policy floor (memory < 8 MiB) so tests can run fast.
        """
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise InvalidInput(f"unknown argon2 parameter(s): {', '.join(map(str, unknown))}")
        missing = [name for name in _FIELDS if name not in d]
        if missing:
            raise InvalidInput(f"missing argon2 parameter(s): {', '.join(missing)}")
        values = {name: d[name] for name in _FIELDS}
        params = cls(**values)  # type: ignore[arg-type]  # __post_init__ checks the types
        if params.is_weak and not allow_weak:
            raise InvalidInput(
                f"argon2 parameters are too weak: need memory_kib >= {MIN_MEMORY_KIB} (8 MiB) "
                f"and time_cost >= {MIN_TIME_COST}"
            )
        return params


DEFAULT_PARAMS = Argon2Params()


def new_salt() -> bytes:
    """A fresh random salt (16 bytes from the OS CSPRNG), generated once per vault initialisation."""
    return os.urandom(SALT_LEN)


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    """Validate the passphrase and return the bytes to hash. Messages state the rule, never the value.

    Text is NFC-normalised first so the same passphrase typed on different systems (composed vs
    decomposed accents) derives the same key. Length counts characters; undecodable bytes count bytes.
    """
    text: str | None
    if isinstance(passphrase, str):
        text = unicodedata.normalize("NFC", passphrase)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (undecodable terminal input): never a key, never a traceback
            raise InvalidInput("passphrase is not valid Unicode text") from None
    elif isinstance(passphrase, bytes | bytearray):
        data = bytes(passphrase)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    else:
        raise InvalidInput("passphrase must be text or bytes")
    length = len(text) if text is not None else len(data)
    if length == 0:
        raise InvalidInput("passphrase must not be empty")
    if length < MIN_PASSPHRASE_CHARS:
        raise InvalidInput(f"passphrase must be at least {MIN_PASSPHRASE_CHARS} characters long")
    return data


def derive_key(passphrase: str | bytes, salt: bytes, params: Argon2Params = DEFAULT_PARAMS) -> bytes:
    """Derive the 32-byte unseal key from `passphrase` and `salt` with argon2id (version 1.3).

    Deterministic for the same passphrase, salt and parameters. A wrong passphrase yields a different
    key, not an error; the caller detects it when the AEAD-sealed root key fails to open.
    """
    secret = _passphrase_bytes(passphrase)
    if not isinstance(salt, bytes) or len(salt) < SALT_LEN:
        raise InvalidInput(f"salt must be at least {SALT_LEN} bytes")
    try:
        return hash_secret_raw(
            secret=secret,
            salt=salt,
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=params.hash_len,
            type=Type.ID,
        )
    except HashingError as exc:
        # The C library's message names the failing parameter, never the input.
        raise InvalidInput(f"argon2id rejected the parameters: {exc}") from None
