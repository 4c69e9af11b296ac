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
    # counting and alphabet runs mark a made-up key (`sk-ant-api03-abc123...`, `xoxp-1234-1234-...`)
    b"abc123", b"123456", b"abcdef", b"1234-1234", b"12345-", b"-12345",
)  # fmt: skip
#: Whole values that are stand-ins in docs and samples (`postgres://user:pass@host`).
_PLACEHOLDER_VALUES = frozenset(
    {
        b"pass", b"pwd", b"secret", b"user", b"username", b"admin", b"root", b"guest", b"demo", b"foo", b"bar",
        b"baz", b"qwerty", b"letmein", b"123456", b"12345678", b"none", b"null", b"true", b"false", b"empty",
        b"postgres", b"mysql", b"mongo", b"redis", b"rabbitmq", b"changeit",
    }
)  # fmt: skip
_TEMPLATE_RE = re.compile(
    rb"""\$\{|\$\(|\{\{|\}\}|\{%|%\(|\#\{|<[^>]*>|^\$[A-Za-z_]|^%[A-Za-z_]+%$|^@[A-Za-z_]+@$|^\*+$|^<|>$"""
    # Python f-string / str.format fields (`{}`, `{0}`, `{pw}`, `{secrets.token_urlsafe(12)}`, `{x!r:>8}`) and
    # printf `%s` / `%r` (never percent-encoding: `s` and `r` are not hex digits).
    rb"""|\{(?:\d*|[A-Za-z_][A-Za-z0-9_.]*(?:\([^{}]*\))?(?:\[[^{}]*\])?)(?:![rsa])?(?::[^{}]*)?\}|%[sr]"""
)
#: Code references and names, written the way people write them (random keys do not look like this):
#: snake_case / CONST_CASE, dotted paths, calls, kebab-case names, lowercase words and CamelCase words.
_CODE_SHAPES = tuple(
    re.compile(pattern)
    for pattern in (
        rb"^_*[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?:\(\))?$",
        rb"^_*[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$",
        rb"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+(?:\(\))?$",
        rb"^[A-Za-z_][A-Za-z0-9_]*\(\)$",
        rb"^[a-z]+(?:[-.][a-z]+)+$",
        rb"^[a-z]+$",
        rb"^[a-z]{0,12}(?:[A-Z][a-z]{2,})+$",
        # a lowercase resource path (`shop/app/db-creds`, `secret/data/web`): where a secret lives, not the secret
        rb"^/?[a-z][a-z0-9]*(?:[-._][a-z0-9]+)*(?:/[a-z][a-z0-9]*(?:[-._][a-z0-9]+)*)+/?$",
        # a Kubernetes qualified name: DNS prefix, `/`, name (`csi.storage.k8s.io/serviceAccount.tokens`)
        rb"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*\.[a-z]{2,}/[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$",
    )
)
_TYPE_WORD_RE = re.compile(
    rb"Private|Public|Key|Type|Error|Exception|Manager|Factory|Config|Handler|Provider|Builder|Class|"
    rb"Interface|Service|Client|Request|Response|Token|Secret|Password|Credential"
)


def shannon_entropy(data: bytes) -> float:
    """Bits per byte of `data` (0.0 for empty input)."""
    if not data:
        return 0.0
    total = len(data)
    return -sum((n / total) * math.log2(n / total) for n in Counter(data).values())


def is_placeholder(secret: bytes, *, deployed: bool = False) -> bool:
    """True when `secret` is a template, an example value or an obvious stand-in, not a real credential.

    `deployed`: the value is used as-is (a Kubernetes Secret's data), so a whole-value stand-in such as `pass`
    or `admin` is a real weak password there; templates, example words and filler still count as placeholders.
    """
    value = secret.strip(b"\"'` ")
    if not value:
        return True
    lowered = value.lower()
    if b"%20" in lowered:  # an encoded space: prose, not a credential
        return True
    if lowered in _PLACEHOLDER_VALUES and not deployed:
        return True
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return True
    if _TEMPLATE_RE.search(value):
        return True
    # The same character over and over ("aaaaaaaa", "00000000") is filler, not a key.
    return len(set(lowered)) <= 2


def looks_like_identifier(secret: bytes) -> bool:
    """A code reference (variable, attribute, call, type) or a resource name rather than a literal value."""
    value = secret.strip(b"\"'` ")
    if any(shape.match(value) for shape in _CODE_SHAPES):
        return True
    if not value.isascii() or not all(33 <= b < 127 for b in value):
        return True  # control or high bytes: binary noise around a keyword, not a typed value
    return value.isalnum() and value[:1].isupper() and _TYPE_WORD_RE.search(value) is not None
