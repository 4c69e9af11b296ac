"""Secret-likeness filters: Shannon entropy and the placeholder allow-list (changeme, ${VAR}, ...)."""

from __future__ import annotations

import math
import re
from collections import Counter

#: Substrings that mark a value as a placeholder or documentation example rather than a real secret.
_PLACEHOLDER_WORDS: tuple[bytes, ...] = (
    b"changeme", b"change_me", b"change-me", b"example", b"dummy", b"redacted", b"placeholder",
    b"xxxx", b"***", b"sample", b"fake", b"your_", b"your-", b"yourpass", b"insert", b"replace",
    b"secret_here", b"password", b"passwd", b"test", b"notreal", b"not_real", b"todo", b"fixme",
    b"mypass", b"foobar", b"lorem", b"hunter2", b"...",
)  # fmt: skip
_TEMPLATE_RE = re.compile(
    rb"""\$\{|\$\(|\{\{|\}\}|\{%|%\(|\#\{|<[^>]*>|^\$[A-Za-z_]|^%[A-Za-z_]+%$|^@[A-Za-z_]+@$|^\*+$|^<|>$"""
)
#: A dotted/underscored identifier with no digit: `self.password`, `config.db_secret`, `get_token`.
_IDENTIFIER_RE = re.compile(rb"^[A-Za-z_][A-Za-z_]*(?:[.:][A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?$")
#: Words joined by dashes or dots with no digit: a resource name such as `my-db-secret-credentials`.
_NAME_RE = re.compile(rb"^[A-Za-z]+(?:[-_.][A-Za-z]+)*$")


def shannon_entropy(data: bytes) -> float:
    """Bits per byte of `data` (0.0 for empty input)."""
    if not data:
        return 0.0
    total = len(data)
    return -sum((n / total) * math.log2(n / total) for n in Counter(data).values())


def is_placeholder(secret: bytes) -> bool:
    """True when `secret` is a template, an example value or an obvious stand-in, not a real credential."""
    value = secret.strip(b"\"'` ")
    if not value:
        return True
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return True
    if _TEMPLATE_RE.search(value):
        return True
    # The same character over and over ("aaaaaaaa", "00000000") is filler, not a key.
    return len(set(lowered)) <= 2


def looks_like_identifier(secret: bytes) -> bool:
    """A code reference (variable, attribute or call) rather than a literal value."""
    value = secret.strip(b"\"'` ")
    return bool(_IDENTIFIER_RE.match(value) or _NAME_RE.match(value))
