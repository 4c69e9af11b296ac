"""Keyed fingerprints of stored secret values, for `kinko scan --known-from-vault`.

The scanner makes a random key for one scan and sends it to the vault; the vault answers, for every value the
caller holds `scan` on, its path, its length and HMAC-SHA256(key, value) cut to 128 bits — never the value. The
scanner hashes candidate tokens of the same lengths with the same key and reports an equal digest as that secret.
Neither the key nor the fingerprints are ever written anywhere, so once the scan ends nothing is left to test
guesses against offline; during the scan, guessing a value still means one HMAC per guess per stored length.

False matches: a token that is not the secret matches one given fingerprint with probability 2**-128; a scan
that hashes T tokens against F fingerprints of their length has a false-match chance below T * F / 2**128
(10**12 tokens against 10**6 values: < 3e-21).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

#: Values shorter than this are not fingerprinted: `admin`, `true`, port numbers match too much real text.
MIN_LENGTH = 8
#: Longer values (certificates, whole files) are left to the pattern rules.
MAX_LENGTH = 4096
DIGEST_BYTES = 16
KEY_BYTES = 32


@dataclass(frozen=True)
class Fingerprint:
    """Where a stored value lives (`path`, or `path#field` for one field of a multi-field secret), its length in
    bytes, and its keyed digest."""

    path: str
    length: int
    digest: bytes = field(repr=False)


def keyed_digest(key: bytes, value: bytes) -> bytes:
    return hmac.new(key, value, hashlib.sha256).digest()[:DIGEST_BYTES]


def fingerprint(key: bytes, path: str, value: bytes) -> Fingerprint | None:
    """The fingerprint of `value`, or None when its length is outside [MIN_LENGTH, MAX_LENGTH]."""
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        return None
    return Fingerprint(path, len(value), keyed_digest(key, value))
