"""Fake tokens in their vendors' real formats (random, so no test data is a live credential)."""

from __future__ import annotations

import secrets
import string
import zlib

from kinko.scan.detect.checksums import base62

ALNUM = string.ascii_letters + string.digits


def github_token(prefix: str = "ghp_") -> str:
    """A GitHub/npm-format token: 30 random base62 characters and their CRC32 tail, as the real ones carry."""
    body = "".join(secrets.choice(ALNUM) for _ in range(30))
    return prefix + body + base62(zlib.crc32(body.encode()), 6).decode()
