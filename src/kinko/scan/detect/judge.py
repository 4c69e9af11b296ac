"""Judging a hit as a secret would look: a confidence for every hit, and generic hits that are no secret at all.

Specific rules (a vendor's documented format) are of high confidence, low in documentation and API models.
Generic rules say nothing in documentation, examples, API models and tests: what they match there is prose.
Generic assignment rules (`password=`, `token:`, `api_key =`) read the assignment around the value: its key
(pagination cursors, request ids and names are no credentials), its syntax (source code quotes its literals;
`name:Value` with no space is no assignment; a key inside an ARN or URI is none either) and the value's shape
(UUIDs and hashes under an ambiguous key, identifiers and API names, ARNs, host names and paths, base64 of text).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from kinko.scan.detect.checksums import CHECKSUMS
from kinko.scan.detect.context import FileContext
from kinko.scan.detect.loader import Rule
from kinko.scan.interface import Confidence

_ASSIGNMENT = re.compile(
    rb"(?:<(?:[A-Za-z0-9_.-]{0,30}:)?(?P<xkey>[A-Za-z0-9_.-]{1,60})(?:\s[^<>]{0,200})?>\s*"
    rb"|(?P<key>[A-Za-z0-9_.$-]{1,100})(?P<kq>\\?[\"'`]?)(?:[ \t]+[A-Za-z_][A-Za-z0-9_\[\]*]{0,30})?[ \t]*"
    rb"(?P<sep>:{1,3}=|[?.+!]=|=>|[:=,])(?P<sp>\s*)(?P<q>@?\\?[\"'`]?))\Z"
)
#: Words of a key that make it no credential: pagination cursors, request/idempotency ids, names, types, sizes.
_NOT_CREDENTIAL = frozenset(
    {
        "next", "continuation", "pagination", "page", "paging", "cursor", "marker", "request", "change", "idempotency",
        "input", "output", "start", "sync", "resume", "type", "types", "ttl", "url", "uri", "endpoint", "name",
        "names", "length", "len", "expiry", "expires", "expiration", "lifetime", "header", "version", "arn", "path",
        "file", "provider", "format", "hash", "crc32c", "count", "limit", "size", "policy", "stage", "field", "param",
        "regex", "pattern", "prefix", "suffix", "id", "ids", "hint", "label", "description", "csrf", "xsrf",
        "placeholder", "example", "sample", "mock", "dummy", "fake", "min", "max", "ref", "kind", "mode", "rotation",
        "verification", "challenge", "nonce", "state", "correlation", "trace", "tracking",
    }
)  # fmt: skip
#: Keys that name a credential unambiguously: a UUID or a hash under them is the credential itself.
_CREDENTIAL_PAIRS = (
    ("api", "key"), ("api", "token"), ("access", "token"), ("auth", "token"), ("refresh", "token"),
    ("session", "token"), ("client", "secret"), ("secret", "key"), ("access", "key"), ("private", "token"),
    ("app", "secret"), ("consumer", "secret"), ("webhook", "secret"), ("master", "key"), ("license", "key"),
    ("auth", "key"), ("signing", "key"), ("encryption", "key"), ("shared", "secret"), ("secret", "token"),
)  # fmt: skip
_CREDENTIAL_WORDS = frozenset({"apikey", "bearer", "password", "passwd", "pwd", "passwort", "pat"})
_WORDS = re.compile(rb"[A-Z]{2,}(?=[A-Z][a-z]|[^A-Za-z]|$)|[A-Z]?[a-z]+|[A-Z]|\d+")
_UUID = re.compile(rb"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HASH = re.compile(rb"^(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{56}|[0-9a-f]{64}|[0-9a-f]{96}|[0-9a-f]{128})$", re.I)
_NAME_CHAIN = re.compile(
    rb"^[!&*@]*[A-Za-z_$#][A-Za-z0-9_$]*(?:(?:\??\.|\$|#|::|->)[A-Za-z_#][A-Za-z0-9_$]*)+[.(]?\)?$"
)
_HOST_OR_PATH = re.compile(
    rb"^(?:[a-z][a-z0-9+.-]*://)?[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:[:/][^\s]*)?$"  # host.name/path
    rb"|^(?:~|\.{1,2})?(?:/[A-Za-z][a-z0-9_.-]*)+/?$"  # /Users/name, ~/dir/file
    rb"|^[A-Za-z_][a-z0-9_.-]*(?:/[a-z0-9_.-]+)*/$"  # credentials/, conf/keys/ (a folder to join a name to)
)
#: A keyword argument or flag in code (`logging_enable=True`), read as the value of the key before it.
_KWARG = re.compile(rb"^[A-Za-z_][A-Za-z0-9_]*=(?:True|False|None|true|false|null|nil|\d+)$")
_IAM_ACTION = re.compile(rb"^[a-z0-9-]+:[A-Z*][A-Za-z0-9*]*(?:/.*)?$")
#: A password digest (crypt, bcrypt, argon2, PBKDF2): what a system stores, not the credential itself.
_DIGEST = re.compile(rb"^\$(?:1|2[abxy]?|5|6|y|gy|7|argon2(?:id|i|d)|pbkdf2(?:-sha\d+)?|scrypt)\$")
_KEBAB_PART = re.compile(rb"[a-z]*[aeiouy][a-z]*|[a-z0-9]{1,3}")


@dataclass(frozen=True)
class Assignment:
    key: bytes  # the key as written (`ClientRequestToken`, `input_token`, an XML element name)
    before: bytes  # the byte before the key ("" at the start of the buffer)
    separator: bytes  # `=`, `:`, `:=`, `?=`, `.=`, `,` (a call's argument list), `>` (an XML element)
    spaced: bool  # whitespace after the separator
    quoted: bool  # the value is a quoted literal (or XML text)


def parse_assignment(data: bytes, start: int) -> Assignment | None:
    """The assignment whose value starts at `start`, read backwards; None when the text before is no assignment."""
    lo = max(0, start - 240)
    found = _ASSIGNMENT.search(data, lo, start)
    if found is None:
        return None
    if found.group("xkey") is not None:
        key_at = found.start("xkey")
        return Assignment(found.group("xkey"), data[key_at - 2 : key_at - 1], b">", True, True)
    key_at = found.start("key")
    quoted = bool(found.group("q").strip(b"@\\"))
    before = data[key_at - 1 : key_at] if key_at > 0 else b""
    return Assignment(found.group("key"), before, found.group("sep"), bool(found.group("sp")), quoted)


def key_words(key: bytes) -> list[str]:
    """`ClientRequestToken` -> client, request, token; `x-api-key` -> x, api, key."""
    return [w.decode().lower() for w in _WORDS.findall(key)]


def names_credential(words: list[str]) -> bool:
    """The key names a credential unambiguously (`api_key`, `client_secret`, `password`, not `token` alone)."""
    if _CREDENTIAL_WORDS.intersection(words):
        return True
    pairs = set(itertools.pairwise(words))
    return any(pair in pairs for pair in _CREDENTIAL_PAIRS)


def looks_like_words(value: bytes) -> bool:
    """An identifier made of words (`refreshTokenClientAcquireToken`, `ExclusiveStartShardId`, `my_sharedSecret`).

    Random keys change case every couple of characters and carry digits; names are runs of real word lengths.
    """
    if not re.fullmatch(rb"[A-Za-z0-9_$]+", value):
        return False
    parts = _WORDS.findall(value)
    letters = [p for p in parts if p[:1].isalpha()]
    digits = sum(len(p) for p in parts if p[:1].isdigit())
    if len(letters) < 2 or digits > 3:
        return False
    singles = sum(1 for p in letters if len(p) == 1)
    vowelless = sum(1 for p in letters if len(p) > 3 and not re.search(rb"[aeiouyAEIOUY]", p))
    mean = sum(len(p) for p in letters) / len(letters)
    return singles <= 1 and vowelless <= len(letters) // 4 and mean >= 3.5


def kebab_words(value: bytes) -> bool:
    """A lowercase name of words joined by `-` or `.` (`x-aws-ec2-metadata-token-ttl-seconds`), not a UUID."""
    parts = re.split(rb"[-.]", value)
    return len(parts) >= 3 and all(_KEBAB_PART.fullmatch(p) for p in parts)


def encodes_text(value: bytes) -> bool:
    """Base64 of readable text (`{"NextToken": null}`, `mysteriousPaginationToken`): a cursor, not a key."""
    if len(value) < 16 or not re.fullmatch(rb"[A-Za-z0-9+/_-]+={0,2}", value):
        return False
    padded = value + b"=" * (-len(value) % 4)
    try:
        raw = base64.b64decode(padded.replace(b"-", b"+").replace(b"_", b"/"), validate=True)
    except (binascii.Error, ValueError):
        return False
    printable = sum(1 for b in raw if 32 <= b < 127 or b in (9, 10, 13))
    return len(raw) >= 8 and printable >= 0.95 * len(raw)


def value_is_no_secret(value: bytes, words: list[str]) -> bool:
    """The value's shape says it is a name, an id, a cursor or a location, not a credential."""
    value = value.strip(b"\"'` ")
    if value.startswith(b"arn:") or _IAM_ACTION.match(value) or _DIGEST.match(value):
        return True
    if (_UUID.match(value) or _HASH.match(value)) and not names_credential(words):
        return True
    return bool(
        looks_like_words(value)
        or kebab_words(value)
        or _NAME_CHAIN.match(value)
        or _HOST_OR_PATH.match(value)
        or _KWARG.match(value)
        or encodes_text(value)
    )


def _judge_assignment(data: bytes, start: int, end: int, ctx: FileContext) -> Confidence | None:
    if ctx.docs or ctx.tests:
        return None
    found = parse_assignment(data, start)
    if found is None:
        return Confidence.LOW
    if found.before in (b":", b"/") or (found.separator == b":" and not found.spaced and not found.quoted):
        return None  # a key inside an ARN, a URI or an IAM action; `name:Value` is no assignment
    if ctx.code and not found.quoted:
        return None  # an expression, a name or a type annotation, not a literal
    words = key_words(found.key)
    if _NOT_CREDENTIAL.intersection(words) or value_is_no_secret(data[start:end], words):
        return None
    return Confidence.MEDIUM


def _judge_key_block(secret: bytes, data: bytes, ctx: FileContext) -> Confidence | None:
    if b"EXAMPLE" in secret:
        return None  # a documented example key (`MIIEowIBAAKCAQEAEXAMPLE...`)
    key_file = len(secret) >= len(data.strip()) - 64  # the block is the file: a real key file, wherever it lies
    return Confidence.HIGH if key_file or not ctx.docs else Confidence.LOW


def judge(rule: Rule, data: bytes, start: int, end: int, context: Callable[[], FileContext]) -> Confidence | None:
    """The confidence of a confirmed hit of `rule` at data[start:end]; None: it is no secret, drop it."""
    if rule.assignment:
        return _judge_assignment(data, start, end, context())
    if rule.family == "private_keys" and data[start:end].startswith(b"-----BEGIN"):
        return _judge_key_block(data[start:end], data, context())
    proof = _proof(rule, data[start:end])
    if proof is None:
        return None
    ctx = context()
    if rule.generic:
        return None if ctx.docs or ctx.tests else Confidence.MEDIUM
    if ctx.docs:
        return None if rule.in_docs == "drop" else Confidence.LOW
    return proof


def _proof(rule: Rule, secret: bytes) -> Confidence | None:
    """HIGH without a checksum or when it holds; a failed one drops the hit or makes it LOW (per checksum)."""
    if rule.checksum is None:
        return Confidence.HIGH
    check, drop = CHECKSUMS[rule.checksum]
    if check(secret):
        return Confidence.HIGH
    return None if drop else Confidence.LOW
