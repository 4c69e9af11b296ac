"""Format proofs a rule can name (`checksum:` in its YAML): a checksum the vendor embeds, or a decoding that must hold.

GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`) and npm (`npm_`) tokens end in 6 base62 characters: the CRC32 of the 30
random characters before them. A token whose tail does not match was typed, truncated or made up.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable

_BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(number: int, width: int) -> bytes:
    """`number` in base 62 (digits, upper, lower), left-padded with `0` to `width`."""
    out = bytearray()
    while number:
        number, digit = divmod(number, 62)
        out.append(_BASE62[digit])
    return bytes(reversed(out)).rjust(width, b"0")


def crc32_tail(token: bytes) -> bool:
    """`prefix_` + 30 random base62 characters + base62(CRC32(random)) in 6."""
    body = token.rsplit(b"_", 1)[-1]
    if len(body) != 36:
        return False
    return base62(zlib.crc32(body[:30]), 6) == body[30:]


def _b64(text: bytes) -> bytes | None:
    padded = text + b"=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.replace(b"-", b"+").replace(b"_", b"/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def base64_jwt(value: bytes) -> bool:
    """Base64 whose text is a JWT: a header and payload of JSON objects, then a signature part."""
    inner = _b64(value.rstrip(b"=") + b"=" * (-len(value.rstrip(b"=")) % 4))
    if inner is None:
        return False
    parts = inner.strip().split(b".")
    if len(parts) != 3:
        return False
    for part in parts[:2]:
        decoded = _b64(part)
        try:
            if decoded is None or not isinstance(json.loads(decoded), dict):
                return False
        except ValueError:
            return False
    return True


def kinko_share(share: bytes) -> bool:
    """A kinko unseal share's typo check: `kinko-share:<body>.<crc32 hex of the body text>` (the domain prefix is
    crypto/shares.py's `_CHECKSUM_DOMAIN`, repeated because the scanner may not import crypto/; a test pins it)."""
    body, _, check = share.removeprefix(b"kinko-share:").rpartition(b".")
    return check == b"%08x" % zlib.crc32(b"kinko-share-v1:" + body)


#: name -> (validator, whether a failed check drops the hit: False keeps it at low confidence)
CHECKSUMS: dict[str, tuple[Callable[[bytes], bool], bool]] = {
    "github-crc32": (crc32_tail, False),
    "base64-jwt": (base64_jwt, True),
    "kinko-share": (kinko_share, True),
}
