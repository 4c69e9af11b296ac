"""Seal and unseal: the root key is wrapped by an unseal key from Shamir shares, a passphrase or a key file.

Chain: unseal key --wraps--> root key --wraps--> keyring --terms seal--> every record.
Sealed means none of these keys is held by the process.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinko.crypto.barrier import associated_data, open_with_key, seal_with_key
from kinko.crypto.passphrase import DEFAULT_PARAMS, Argon2Params, derive_key, new_salt
from kinko.crypto.shares import combine, decode_share, encode_share
from kinko.errors import CorruptVault, IntegrityError, InvalidInput, InvalidShare, UnsealFailed

UNSEAL_KEY_BYTES = 32


class SealType(enum.Enum):
    SHAMIR = "shamir"
    PASSPHRASE = "passphrase"
    KEY_FILE = "keyfile"


@dataclass(frozen=True)
class SealConfig:
    """Non-sensitive description of how this vault unseals; stored in plaintext beside the data."""

    type: SealType
    shares: int = 0
    threshold: int = 0
    argon2: Argon2Params | None = None
    salt: bytes = field(default=b"", repr=False)

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {"type": self.type.value, "shares": self.shares, "threshold": self.threshold}
        if self.argon2 is not None:
            doc["argon2"] = self.argon2.to_dict()
            doc["salt"] = self.salt.hex()
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> SealConfig:
        try:
            doc = json.loads(raw)
            argon = Argon2Params.from_dict(doc["argon2"], allow_weak=True) if "argon2" in doc else None
            return cls(
                type=SealType(doc["type"]),
                shares=int(doc["shares"]),
                threshold=int(doc["threshold"]),
                argon2=argon,
                salt=bytes.fromhex(doc.get("salt", "")),
            )
        except (ValueError, KeyError, TypeError):
            raise CorruptVault("seal configuration is unreadable") from None

    @classmethod
    def for_passphrase(cls, params: Argon2Params = DEFAULT_PARAMS) -> SealConfig:
        return cls(type=SealType.PASSPHRASE, argon2=params, salt=new_salt())


def root_key_aad(vault_id: str) -> bytes:
    return associated_data(["kinko", "root-key", vault_id])


def wrap_root_key(unseal_key: bytes, root_key: bytes, vault_id: str) -> bytes:
    return seal_with_key(unseal_key, root_key, root_key_aad(vault_id))


def unwrap_root_key(unseal_key: bytes, wrapped: bytes, vault_id: str) -> bytes:
    """The root key, or UnsealFailed without saying which part of the unseal material was wrong."""
    try:
        return open_with_key(unseal_key, wrapped, root_key_aad(vault_id))
    except IntegrityError:
        raise UnsealFailed("unseal failed: the shares, passphrase or key file do not open this vault") from None


def passphrase_key(config: SealConfig, passphrase: str | bytes) -> bytes:
    if config.argon2 is None:
        raise CorruptVault("passphrase seal has no argon2 parameters")
    return derive_key(passphrase, config.salt, config.argon2)


def write_key_file(path: Path, key: bytes) -> None:
    """Create the key file 0400 from the first byte on; refuse to overwrite an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.hex().encode() + b"\n")


def read_key_file(path: Path) -> bytes:
    try:
        info = path.stat()
        raw = path.read_bytes().strip()
    except OSError as exc:
        raise UnsealFailed(f"cannot read key file {str(path)!r}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UnsealFailed(f"key file {str(path)!r} is readable by group or others; chmod 0400 it")
    try:
        key = bytes.fromhex(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise UnsealFailed(f"key file {str(path)!r} is not a kinko key file") from None
    if len(key) != UNSEAL_KEY_BYTES:
        raise UnsealFailed(f"key file {str(path)!r} is not a kinko key file")
    return key


#: Unseal progress older than this is dropped: a share given and forgotten must not wait for a stranger's.
UNSEAL_PROGRESS_TTL = 600.0


class ShareCollector:
    """Accumulates Shamir shares until the threshold is reached (unseal progress), for at most `ttl` seconds
    from the first share."""

    def __init__(self, threshold: int, *, ttl: float = UNSEAL_PROGRESS_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self._ttl, self._clock = ttl, clock
        self._shares: list[bytes] = []
        self._started = 0.0

    def _expire(self, now: float | None = None) -> None:
        if self._shares and (self._clock() if now is None else now) - self._started > self._ttl:
            self.reset()

    @property
    def progress(self) -> int:
        self._expire()
        return len(self._shares)

    def check(self, raw: bytes) -> None:
        """Refuse, without touching progress, a share that repeats one already given (same x coordinate)."""
        self._expire()
        if any(s[-1:] == raw[-1:] for s in self._shares):
            raise InvalidShare("this share was already given")

    def add(self, share_text: str, given_at: float | None = None) -> bytes | None:
        """Add one share; returns the combined unseal key once `threshold` distinct shares are in.

        `given_at` (the clock's time when the share was given; default now) lets a worker replaying shares other
        workers took keep their original times, so progress expires the same everywhere.
        """
        now = self._clock() if given_at is None else given_at
        self._expire(now)
        raw = decode_share(share_text)
        if any(len(s) != len(raw) for s in self._shares):
            self.reset()
            raise InvalidShare("share does not belong with the shares given before; unseal progress reset")
        self.check(raw)
        if not self._shares:
            self._started = now
        self._shares.append(raw)
        if len(self._shares) < self.threshold:
            return None
        try:
            return combine(self._shares)
        finally:
            self.reset()

    def reset(self) -> None:
        self._shares.clear()


#: x coordinate appended to the key of a 1-of-1 vault so its share has the layout (and checks) of any share.
SINGLE_SHARE_X = 1


def encode_single_share(key: bytes) -> str:
    """The one share of a 1-of-1 vault: the key plus x = 1 (the raw key alone is refused if it ends in 0)."""
    return encode_share(key + bytes([SINGLE_SHARE_X]))


def decode_single_share(share_text: str) -> bytes:
    """The unseal key from a 1-of-1 share; also accepts the older form (the raw key, no x byte)."""
    raw = decode_share(share_text)
    if len(raw) == UNSEAL_KEY_BYTES + 1 and raw[-1] == SINGLE_SHARE_X:
        return raw[:-1]
    if len(raw) == UNSEAL_KEY_BYTES:
        return raw
    raise InvalidShare("share is malformed or mistyped")


def share_tag(vault_id: str, raw_share: bytes) -> str:
    """What init stores for each share so a share can be checked on its own before it joins the others: SHA-256
    over a label, the vault id and the share. A share is 256 random bits (given fewer than the threshold of its
    siblings), so its tag reveals nothing usable; a share of another vault, or a mistyped one, does not match."""
    return hashlib.sha256(b"kinko share tag v1\0" + vault_id.encode() + b"\0" + raw_share).hexdigest()


def check_shamir_params(shares: int, threshold: int) -> None:
    if not (2 <= threshold <= shares <= 255) and not (shares == threshold == 1):
        raise InvalidInput("Shamir needs 1 <= threshold <= shares <= 255 and threshold >= 2 unless shares is 1")
