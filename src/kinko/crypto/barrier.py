"""The AEAD barrier: AES-256-GCM with a random 96-bit nonce, AAD bound to the record's identity.

Frame: b"k1" | term (4 bytes, big endian) | nonce (12) | ciphertext+tag. The associated data is built from
length-prefixed parts (vault id, path, version, field, ...) so a ciphertext copied onto another record, another
field or another vault fails to open.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kinko.crypto.keyring import Keyring
from kinko.errors import IntegrityError

MAGIC = b"k1"
NONCE_BYTES = 12
_HEADER = struct.Struct(">2sI")
HEADER_BYTES = _HEADER.size + NONCE_BYTES

AadPart = str | bytes | int


class UnknownTerm(IntegrityError):
    """The ciphertext names a key term this keyring does not hold (another process may have rotated)."""


def aad_part(part: AadPart) -> bytes:
    """One length-prefixed part; `associated_data` is these concatenated (so callers may cache a prefix)."""
    raw = part if isinstance(part, bytes) else str(part).encode()
    return len(raw).to_bytes(4, "big") + raw


def associated_data(parts: Sequence[AadPart]) -> bytes:
    """Unambiguous encoding of the record identity: each part length-prefixed."""
    return b"".join([aad_part(part) for part in parts])


def seal_with_key(key: bytes, plaintext: bytes, aad: bytes, term: int = 0) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return _HEADER.pack(MAGIC, term) + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_with_key(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < HEADER_BYTES + 16 or blob[:2] != MAGIC:
        raise IntegrityError("stored ciphertext is malformed")
    nonce = blob[_HEADER.size : HEADER_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[HEADER_BYTES:], aad)
    except InvalidTag:
        raise IntegrityError("stored ciphertext failed authentication (tampered, swapped or corrupt)") from None


def term_of(blob: bytes) -> int:
    if type(blob) is not bytes or len(blob) < HEADER_BYTES or blob[:2] != MAGIC:
        raise IntegrityError("stored ciphertext is malformed")
    term: int = _HEADER.unpack_from(blob)[1]
    return term


class Barrier:
    """Seals and opens records with the keyring's terms: new writes use the newest term."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._ciphers: dict[int, AESGCM] = {}
        # The same ciphers keyed by the frame header (magic + term): one lookup checks both on the hot read.
        self._by_header: dict[bytes, AESGCM] = {}

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def _cipher(self, term: int) -> AESGCM:
        cipher = self._ciphers.get(term)
        if cipher is None:
            cipher = self._ciphers[term] = AESGCM(self._keyring.key(term))
            self._by_header[_HEADER.pack(MAGIC, term)] = cipher
        return cipher

    def seal(self, plaintext: bytes, parts: Sequence[AadPart]) -> bytes:
        term = self._keyring.active_term
        nonce = os.urandom(NONCE_BYTES)
        aad = associated_data(parts)
        return _HEADER.pack(MAGIC, term) + nonce + self._cipher(term).encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, parts: Sequence[AadPart]) -> bytes:
        return self.open_aad(blob, associated_data(parts))

    def open_aad(self, blob: bytes, aad: bytes) -> bytes:
        """`open` with the associated data already encoded (the hot read caches the vault-id prefix)."""
        if type(blob) is not bytes or len(blob) < HEADER_BYTES + 16:  # a TEXT planted in the column, too
            raise IntegrityError("stored ciphertext is malformed")
        cipher = self._by_header.get(blob[: _HEADER.size])
        if cipher is None:
            if blob[:2] != MAGIC:
                raise IntegrityError("stored ciphertext is malformed")
            term = int.from_bytes(blob[2:6], "big")
            if term not in self._keyring.terms:
                raise UnknownTerm(f"ciphertext uses unknown key term {term}")
            cipher = self._cipher(term)
        try:
            return cipher.decrypt(blob[_HEADER.size : HEADER_BYTES], blob[HEADER_BYTES:], aad)
        except InvalidTag:
            raise IntegrityError("stored ciphertext failed authentication (tampered, swapped or corrupt)") from None

    def forget(self) -> None:
        """Drop cached ciphers (on seal)."""
        self._ciphers.clear()
        self._by_header.clear()
