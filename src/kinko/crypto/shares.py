"""Shamir k-of-n secret sharing of the unseal key over GF(2^8), plus the typo-checked text form of a share.

The scheme follows HashiCorp Vault's `shamir` package so the maths and the raw share layout are the same:

* one random polynomial per secret byte, its constant term the byte, the other coefficients uniformly
  random (Vault once forced the top coefficient non-zero; that leaks, because with it a single share of a
  2-of-n split can never equal the secret byte, so we do not);
* distinct random non-zero x coordinates (x = 0 would be the secret itself);
* a raw share is the y bytes followed by the one-byte x coordinate (`SHARE_OVERHEAD` = 1);
* field arithmetic in the AES field GF(2^8) mod x^8 + x^4 + x^3 + x + 1, multiplication bit-serial with
  masks instead of branches or log/exp table look-ups indexed by secret bytes.

Timing caveat: Python gives no constant-time guarantee. The arithmetic below avoids secret-dependent
branches and secret-indexed tables (the classic cache-timing leaks), but CPython's small-int cache and
big-int internals may still vary by a few nanoseconds with operand values. Shares are combined once per
unseal on the server, so we judge that acceptable; do not reuse this module where an attacker can time
millions of operations on secret data.

`combine` of well-formed but wrong shares returns garbage bytes, not an error: the caller must
authenticate the result (the root key is AEAD-sealed under the unseal key, so a wrong key fails there).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import zlib
from collections.abc import Sequence

from kinko.errors import InvalidInput, InvalidShare

#: Bytes a raw share adds to the secret: the trailing x coordinate.
SHARE_OVERHEAD = 1
#: Prefix of a share's text form, so an operator can tell a share from any other token.
SHARE_PREFIX = "kinko-share:"
MAX_SHARES = 255

_MALFORMED = "share is malformed or mistyped"
# Domain-separates the share checksum from any other CRC an operator might be holding.
_CHECKSUM_DOMAIN = b"kinko-share-v1:"


# --- GF(2^8) arithmetic -------------------------------------------------------------------------------


def _mul(a: int, b: int) -> int:
    """Multiply in GF(2^8) (AES polynomial) without branching on or indexing by the operands.

    Same bit-serial loop as Vault: for each bit of `b`, high to low, double `r` (reducing by 0x1B when
    its top bit overflows) and add `a` if the bit is set. `-(bit) & v` is `v` when bit is 1, else 0.
    """
    r = 0
    for i in range(7, -1, -1):
        r = (-((b >> i) & 1) & a) ^ (-(r >> 7) & 0x1B) ^ ((r << 1) & 0xFF)
    return r


def _inverse(a: int) -> int:
    """Multiplicative inverse as a^254 (the group has order 255), a fixed chain of 11 multiplications."""
    b = _mul(a, a)  # a^2
    c = _mul(a, b)  # a^3
    b = _mul(c, c)  # a^6
    b = _mul(b, b)  # a^12
    c = _mul(b, c)  # a^15
    b = _mul(b, b)  # a^24
    b = _mul(b, b)  # a^48
    b = _mul(b, c)  # a^63
    b = _mul(b, b)  # a^126
    b = _mul(a, b)  # a^127
    return _mul(b, b)  # a^254


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    """Evaluate the polynomial (constant term first) at x with Horner's method."""
    out = coefficients[-1]
    for coeff in reversed(coefficients[:-1]):
        out = _mul(out, x) ^ coeff
    return out


def _lagrange_at_zero(xs: Sequence[int]) -> list[int]:
    """Lagrange basis values at x = 0 for the given distinct non-zero x coordinates.

    The x coordinates are public (stored in clear in every share), so computing the basis once and
    reusing it for every byte leaks nothing and saves k(k-1) divisions per byte.
    """
    basis: list[int] = []
    for i, xi in enumerate(xs):
        term = 1
        for j, xj in enumerate(xs):
            if i != j:
                # (0 - xj) / (xi - xj); subtraction is XOR in characteristic 2.
                term = _mul(term, _mul(xj, _inverse(xi ^ xj)))
        basis.append(term)
    return basis


# --- split / combine ----------------------------------------------------------------------------------


def _check_split_params(secret: bytes, shares: int, threshold: int) -> None:
    """Apply Vault's parameter rules; messages name the rule, never the secret."""
    if not secret:
        raise InvalidInput("cannot split an empty secret")
    if threshold < 2:
        raise InvalidInput("threshold must be at least 2")
    if shares < threshold:
        raise InvalidInput("number of shares cannot be less than the threshold")
    if shares > MAX_SHARES:
        raise InvalidInput(f"number of shares cannot exceed {MAX_SHARES}")


def _random_x_coordinates(count: int) -> list[int]:
    """`count` distinct x coordinates drawn uniformly from 1..255 (Vault uses a random permutation)."""
    return secrets.SystemRandom().sample(range(1, 256), count)


def split(secret: bytes, shares: int = 5, threshold: int = 3) -> list[bytes]:
    """Split `secret` into `shares` raw shares, any `threshold` of which reconstruct it.

    Each share is len(secret) + 1 bytes: the y values, then the x coordinate (Vault's layout).
    """
    _check_split_params(secret, shares, threshold)
    xs = _random_x_coordinates(shares)
    out = [bytearray(len(secret) + SHARE_OVERHEAD) for _ in range(shares)]
    for share, x in zip(out, xs, strict=True):
        share[-1] = x
    for idx, value in enumerate(secret):
        # A fresh polynomial per byte: the field has 256 elements, so one byte per constant term.
        coefficients = [value, *secrets.token_bytes(threshold - 1)]
        for share, x in zip(out, xs, strict=True):
            share[idx] = _evaluate(coefficients, x)
    return [bytes(share) for share in out]


def _check_combine_input(shares: Sequence[bytes]) -> list[int]:
    """Validate shares for combining and return their x coordinates."""
    if len(shares) < 2:
        raise InvalidShare("at least two shares are needed to reconstruct the key")
    length = len(shares[0])
    if length < SHARE_OVERHEAD + 1:
        raise InvalidShare("a share is too short to be valid")
    if any(len(share) != length for share in shares):
        raise InvalidShare("all shares must have the same length")
    xs = [share[-1] for share in shares]
    if 0 in xs:
        raise InvalidShare(_MALFORMED)
    if len(set(xs)) != len(xs):
        raise InvalidShare("the same share was given more than once")
    return xs


def combine(shares: Sequence[bytes]) -> bytes:
    """Reconstruct the secret from at least `threshold` raw shares (order does not matter).

    Too few or wrong-but-well-formed shares give wrong bytes, not an error; authenticate the result.
    """
    xs = _check_combine_input(shares)
    basis = _lagrange_at_zero(xs)
    secret = bytearray(len(shares[0]) - SHARE_OVERHEAD)
    for idx in range(len(secret)):
        value = 0
        for share, weight in zip(shares, basis, strict=True):
            value ^= _mul(share[idx], weight)
        secret[idx] = value
    return bytes(secret)


# --- text form ----------------------------------------------------------------------------------------


def _checksum(body: str) -> str:
    """CRC-32 of the base64 text, as 8 hex digits.

    CRC-32 over the *text* (not the decoded bytes) detects every single-character substitution and
    every adjacent transposition with certainty (both are bursts of at most 16 bits), including changes
    to base64 padding bits that would decode to the same bytes. It is a typo check, not a MAC.
    """
    return f"{zlib.crc32(_CHECKSUM_DOMAIN + body.encode('ascii')):08x}"


def encode_share(raw: bytes) -> str:
    """Text form printed to the operator: ``kinko-share:<base64url, no padding>.<crc32 hex>``."""
    if len(raw) < SHARE_OVERHEAD + 1:
        raise InvalidShare("a share is too short to be valid")
    body = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return f"{SHARE_PREFIX}{body}.{_checksum(body)}"


def _b64_decode_canonical(body: str) -> bytes:
    """Decode unpadded base64url, refusing any encoding that does not re-encode to exactly `body`."""
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise InvalidShare(_MALFORMED) from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
        raise InvalidShare(_MALFORMED)
    return raw


def decode_share(text: str) -> bytes:
    """Parse a share's text form back to raw bytes, catching typos before any combining happens.

    Raises InvalidShare with a fixed message (never echoing the input) on any defect.
    """
    text = text.strip()
    if not text.startswith(SHARE_PREFIX) or not text.isascii():
        raise InvalidShare(_MALFORMED)
    body, sep, check = text[len(SHARE_PREFIX) :].rpartition(".")
    # compare_digest: the checksum is derived from share material, so compare without early exit.
    if not sep or not body or not secrets.compare_digest(check.lower(), _checksum(body)):
        raise InvalidShare(_MALFORMED)
    raw = _b64_decode_canonical(body)
    if len(raw) < SHARE_OVERHEAD + 1 or raw[-1] == 0:
        raise InvalidShare(_MALFORMED)
    return raw
