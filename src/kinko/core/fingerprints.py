"""Keyed fingerprints of stored secret values, for `kinko scan --known-from-vault`.

The scanner makes a random key for one scan and sends it to the vault; the vault answers, for every value the
caller holds `scan` on, its path, its length and a keyed 128-bit digest of it — never the value. The digest is
keyed BLAKE2b (RFC 7693's MAC mode) cut to 128 bits, `blake2b-128`, or HMAC-SHA256 cut to 128 bits,
`hmac-sha256-128`, which servers before BLAKE2b answer with; a scan hashes every candidate token of the artifact,
and BLAKE2b costs a third of HMAC-SHA256 per token. The scanner hashes candidate tokens of the same lengths with
the same key and reports an equal digest as that secret. Neither the key nor the fingerprints are ever written
anywhere, so once the scan ends nothing is left to test guesses against offline; during the scan, guessing a
value still means one keyed hash per guess per stored length.

False matches: a token that is not the secret matches one given fingerprint with probability 2**-128; a scan
that hashes T tokens against F fingerprints of their length has a false-match chance below T * F / 2**128
(10**12 tokens against 10**6 values: < 3e-21).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from operator import methodcaller

from kinko.errors import InvalidInput

#: Values shorter than this are not fingerprinted: `admin`, `true`, port numbers match too much real text.
MIN_LENGTH = 8
#: Longer values (certificates, whole files) are left to the pattern rules.
MAX_LENGTH = 4096
DIGEST_BYTES = 16
KEY_BYTES = 32
BLAKE2B = "blake2b-128"
HMAC_SHA256 = "hmac-sha256-128"
ALGORITHMS = (BLAKE2B, HMAC_SHA256)
#: what a scan asks for; a server that does not know the field answers HMAC_SHA256
DEFAULT_ALGORITHM = BLAKE2B
_MAX_BLAKE2B_KEY = 64


@dataclass(frozen=True)
class Fingerprint:
    """Where a stored value lives (`path`, or `path#field` for one field of a multi-field secret), its length in
    bytes, its keyed digest and the algorithm that made it."""

    path: str
    length: int
    digest: bytes = field(repr=False)
    algorithm: str = HMAC_SHA256


Digester = Callable[[Iterable[bytes]], Iterator[bytes]]


def digester(key: bytes, algorithm: str = DEFAULT_ALGORITHM) -> Digester:
    """A function from values to their keyed digests that runs in C, without a Python frame per value."""
    check_key(key, algorithm)
    if algorithm == BLAKE2B:
        make = partial(hashlib.blake2b, key=key, digest_size=DIGEST_BYTES)
        finish = methodcaller("digest")
        return lambda values: map(finish, map(make, values))
    one = partial(hmac.digest, key, digest="sha256")
    return lambda values: (d[:DIGEST_BYTES] for d in map(one, values))


def check_key(key: bytes, algorithm: str) -> None:
    """Refuse an unknown algorithm or a key it cannot take (named in the error, never shown)."""
    if algorithm not in ALGORITHMS:
        raise InvalidInput(f"unknown fingerprint algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
    if not isinstance(key, bytes) or len(key) < KEY_BYTES:
        raise InvalidInput(f"the fingerprint key must be at least {KEY_BYTES} random bytes")
    if algorithm == BLAKE2B and len(key) > _MAX_BLAKE2B_KEY:
        raise InvalidInput(f"a {BLAKE2B} fingerprint key is at most {_MAX_BLAKE2B_KEY} bytes")


def keyed_digest(key: bytes, value: bytes, algorithm: str = DEFAULT_ALGORITHM) -> bytes:
    return next(digester(key, algorithm)((value,)))


def fingerprint(key: bytes, path: str, value: bytes, algorithm: str = DEFAULT_ALGORITHM) -> Fingerprint | None:
    """The fingerprint of `value`, or None when its length is outside [MIN_LENGTH, MAX_LENGTH]."""
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        return None
    return Fingerprint(path, len(value), keyed_digest(key, value, algorithm), algorithm)
