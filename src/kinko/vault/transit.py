"""Named keys, as Vault's transit engine has them: pure rules (key types, versions and their limits, the
`vault:v<N>:` formats, the stored document) with no storage and no authorization — those are in kinko.vault.keys.

* A key is a `KeyPolicy`: a type, numbered versions (each with its own key material and its own HMAC key),
  `min_decryption_version` (older versions open nothing), `min_encryption_version` (0 = any; encrypt, sign and
  HMAC may ask for an older version at or above it), `deletion_allowed` (false by default: a key is deleted only
  after it was explicitly allowed), `exportable` (one way: once true it stays true; kinko has no export route, so
  key material never leaves the vault) and `derived` (a per-`context` key, HKDF-SHA256 over the version's key).
* The whole document — every version's material and the settings — is sealed by the barrier as one ciphertext
  (AAD: vault id, "transit-key", name), so no version, limit or flag can be moved, mixed or edited in the store.
* Error messages are Vault's (clients parse some of them); none contains key material, plaintext or input.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from kinko.errors import InvalidInput, NotFound

KEY_TYPES = ("aes256-gcm96", "chacha20-poly1305", "rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384",
             "ed25519")
DEFAULT_TYPE = "aes256-gcm96"
SYMMETRIC = frozenset({"aes256-gcm96", "chacha20-poly1305"})
ENCRYPTING = SYMMETRIC | {"rsa-2048", "rsa-3072", "rsa-4096"}
SIGNING = frozenset(KEY_TYPES) - SYMMETRIC
DERIVABLE = SYMMETRIC | {"ed25519"}
PREFIX = "vault:v"
MIN_AUTO_ROTATE = 3600.0
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

# Vault's messages, word for word (clients and scripts match on some of them).
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
AUTH_FAILED = "cipher: message authentication failed"


class TransitError(InvalidInput):
    """A transit operation refused for a reason the caller can fix (Vault: 400 with the message)."""

    code = "key_error"


class KeyMissing(TransitError):
    """The named key does not exist (Vault answers the operations with 400 and a message naming the use)."""

    code = "key_missing"


class KeyNotFound(NotFound):
    """Reading a key that does not exist (Vault: an empty 404)."""

    code = "key_not_found"


def single(outcomes: list[dict[str, Any] | TransitError]) -> dict[str, Any]:
    """The one result of a one-item operation (its error raised)."""
    outcome = outcomes[0]
    if isinstance(outcome, TransitError):
        raise outcome
    return outcome


def check_key_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput("a key name is 1-128 characters of A-Z, a-z, 0-9, '.', '_', '-' (not starting with '.')")
    return name


def check_key_type(key_type: object) -> str:
    if key_type not in KEY_TYPES:
        raise TransitError(f"unknown key type {str(key_type)[:64]}")
    return str(key_type)


@dataclass(frozen=True)
class KeyVersion:
    """One version's material (a 256-bit key, or a PKCS#8 DER private key) and its HMAC key."""

    material: bytes = field(repr=False)
    hmac_key: bytes = field(repr=False)
    created: float


@dataclass(frozen=True)
class KeyPolicy:
    """A named key: its settings and every version, as sealed in the store. Never shown whole (repr hides the
    versions' material)."""

    name: str
    type: str
    versions: dict[int, KeyVersion] = field(repr=False)
    created: float
    min_decryption_version: int = 1
    min_encryption_version: int = 0
    deletion_allowed: bool = False
    exportable: bool = False
    derived: bool = False
    auto_rotate_period: float = 0.0

    @property
    def latest(self) -> int:
        return max(self.versions)

    def version_for_encryption(self, requested: int | None) -> int:
        """The version to encrypt, sign or HMAC with: the latest, or `requested` within the limits."""
        if not requested:
            return self.latest
        if requested > self.latest:
            raise TransitError("requested version for encryption is higher than the latest key version")
        if requested < max(self.min_encryption_version, 1):
            raise TransitError("requested version for encryption is less than the minimum encryption key version")
        return requested

    def version_for_decryption(self, version: int) -> KeyVersion:
        if version > self.latest:
            raise TransitError("invalid ciphertext: version is too new")
        if version < self.min_decryption_version or version not in self.versions:
            raise TransitError(TOO_OLD)
        return self.versions[version]

    def rotation_due(self, now: float) -> bool:
        period = self.auto_rotate_period
        return bool(period) and now - self.versions[self.latest].created >= period

    def rotated(self, material: bytes, now: float) -> KeyPolicy:
        version = KeyVersion(material, secrets.token_bytes(32), now)
        return replace(self, versions={**self.versions, self.latest + 1: version})

    def configured(self, *, min_decryption_version: int | None = None, min_encryption_version: int | None = None,
                   deletion_allowed: bool | None = None, exportable: bool | None = None,
                   auto_rotate_period: float | None = None) -> KeyPolicy:
        """These settings changed (None: unchanged), checked as Vault checks them."""
        dec = self.min_decryption_version if min_decryption_version is None else min_decryption_version
        enc = self.min_encryption_version if min_encryption_version is None else min_encryption_version
        if dec < 0 or enc < 0:
            raise TransitError("min decryption and min encryption versions cannot be negative")
        if dec > self.latest:
            raise TransitError(f"cannot set min decryption version of {dec}, latest key version is {self.latest}")
        if enc > self.latest:
            raise TransitError(f"cannot set min encryption version of {enc}, latest key version is {self.latest}")
        if enc and enc < dec:
            raise TransitError("cannot set min encryption/decryption values; min encryption version of "
                            f"{enc} must be greater than or equal to min decryption version of {dec}")
        period = self.auto_rotate_period if auto_rotate_period is None else auto_rotate_period
        if period and period < MIN_AUTO_ROTATE:
            raise TransitError("auto rotate period must be 0 to disable or at least an hour")
        return replace(self, min_decryption_version=max(dec, 1), min_encryption_version=enc,
                       deletion_allowed=self.deletion_allowed if deletion_allowed is None else deletion_allowed,
                       exportable=self.exportable or bool(exportable),  # one way, as in Vault
                       auto_rotate_period=period)

    # -- the sealed document -----------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "versions"}
        doc["versions"] = {str(n): {"material": _b64(v.material), "hmac_key": _b64(v.hmac_key),
                                    "created": v.created} for n, v in self.versions.items()}
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> KeyPolicy:
        doc = json.loads(raw)
        versions = {int(n): KeyVersion(base64.b64decode(v["material"]), base64.b64decode(v["hmac_key"]),
                                       float(v["created"])) for n, v in doc.pop("versions").items()}
        return cls(versions=versions, **{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class KeyInfo:
    """What a key read shows: the settings, and per version its creation time and public key (never material)."""

    name: str
    type: str
    created: float
    latest_version: int
    min_decryption_version: int
    min_encryption_version: int
    deletion_allowed: bool
    exportable: bool
    derived: bool
    auto_rotate_period: float
    #: version -> (created, key name ("P-256", "rsa-2048", ...), public key: PEM, or base64 for ed25519; "" for
    #: symmetric keys), for the versions from min_decryption_version on
    versions: dict[int, tuple[float, str, str]]

    def to_dict(self) -> dict[str, Any]:
        """kinko's native JSON (never key material: only public keys)."""
        doc = {k: v for k, v in self.__dict__.items() if k != "versions"}
        doc["versions"] = {str(n): {"created": c, "name": name, "public_key": public}
                           for n, (c, name, public) in sorted(self.versions.items())}
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> KeyInfo:
        versions = {int(n): (float(v["created"]), str(v["name"]), str(v["public_key"]))
                    for n, v in doc["versions"].items()}
        return cls(versions=versions, **{k: v for k, v in doc.items()
                                         if k in cls.__dataclass_fields__ and k != "versions"})

    @property
    def supports_encryption(self) -> bool:
        return self.type in ENCRYPTING

    @property
    def supports_signing(self) -> bool:
        return self.type in SIGNING

    @property
    def supports_derivation(self) -> bool:
        return self.type in DERIVABLE


# -- the text formats ----------------------------------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def b64decode_input(text: object, what: str) -> bytes:
    """Base64 as Vault's Go decoder takes it; its error names the first bad byte, never the input."""
    if not isinstance(text, str):
        raise TransitError(f"{what} must be base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    stripped = text.rstrip("=")
    bad = next((i for i, ch in enumerate(stripped) if ch not in alphabet), len(stripped) - len(stripped) % 4)
    raise TransitError(f"illegal base64 data at input byte {bad}")


def versioned(version: int, raw: bytes) -> str:
    """`vault:v<N>:<base64>`: a ciphertext, signature or HMAC made with key version N."""
    return f"{PREFIX}{version}:{_b64(raw)}"


def parse_versioned(text: object) -> tuple[int, bytes]:
    """(version, bytes) of a `vault:v<N>:<base64>` value, or Vault's error."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise TransitError("invalid ciphertext: no prefix")
    number, colon, body = text[len(PREFIX):].partition(":")
    if not colon or not number.isdigit() or len(number) > 9:
        raise TransitError("invalid ciphertext: version number could not be decoded")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise TransitError("invalid ciphertext: could not decode base64") from None
    return int(number), raw
