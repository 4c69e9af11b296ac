"""The vault's data model: secret values, version attributes, listing entries and the caller's identity."""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import FrozenInstanceError, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from kinko.errors import InvalidInput, TooLarge

#: A secret value: one value, or a key -> value map like a Kubernetes Secret's `data`.
SecretValue = bytes | Mapping[str, bytes]

MAX_VALUE_BYTES = 1024 * 1024
MAX_TAGS = 15
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
DEFAULT_CONTENT_TYPE = "text"


def value_size(value: SecretValue) -> int:
    if isinstance(value, bytes):
        return len(value)
    return sum(len(k.encode()) + len(v) for k, v in value.items())


def encode_payload(value: SecretValue, metadata: Mapping[str, str]) -> bytes:
    """The plaintext the barrier seals for one version: metadata and value together, so a read is one decrypt.

    Layout: b"\x01" | metadata JSON length (4 bytes) | metadata JSON | b"v" + raw value, or b"m" + JSON map of base64.
    """
    meta = json.dumps(dict(metadata), separators=(",", ":"), sort_keys=True).encode()
    if isinstance(value, bytes | bytearray):
        body = b"v" + bytes(value)
    else:
        body = b"m" + json.dumps({k: base64.b64encode(v).decode() for k, v in sorted(value.items())},
                                 separators=(",", ":")).encode()
    return b"\x01" + len(meta).to_bytes(4, "big") + meta + body


_read_u32 = struct.Struct(">I").unpack_from


def decode_payload(blob: bytes) -> tuple[SecretValue, bytes]:
    """(value, metadata JSON bytes); metadata is parsed only if someone asks for it."""
    if len(blob) < 5 or blob[:1] != b"\x01":
        raise ValueError("unknown payload format")
    start = 5 + _read_u32(blob, 1)[0]
    # Slice the value straight out of the payload: one copy of the value, not two.
    if blob[start : start + 1] == b"v":
        return blob[start + 1 :], blob[5:start]
    return {k: base64.b64decode(v) for k, v in json.loads(blob[start + 1 :]).items()}, blob[5:start]


def check_text(text: str, what: str) -> str:
    """Text kinko stores and later returns must be valid Unicode: a lone surrogate (a JSON `\\udfff`, undecodable
    argv bytes) cannot be encoded as UTF-8, so it would be stored and then fail every read. Refused here, before
    anything is written. `what` names the field, never the text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode (it contains a lone surrogate)") from None
    return text


def check_value(value: SecretValue) -> None:
    """Shape and size checks shared by every content type."""
    if isinstance(value, bytes | bytearray):
        pass
    elif isinstance(value, Mapping):
        if not value:
            raise InvalidInput("a key/value secret needs at least one key")
        for key, item in value.items():
            if not isinstance(key, str) or not isinstance(item, bytes | bytearray):
                raise InvalidInput("a key/value secret maps text keys to byte values")
            check_text(key, "a key of the secret")
    else:
        raise InvalidInput("a secret value is bytes or a mapping of keys to bytes")
    if value_size(value) > MAX_VALUE_BYTES:
        raise TooLarge(f"secret value is larger than {MAX_VALUE_BYTES} bytes")


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"a version may have at most {MAX_TAGS} tags, got {len(tags)}")
    for name, value in tags.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name:
            raise InvalidInput("tags map non-empty text names to text values")
        if len(name) > MAX_TAG_NAME:
            raise InvalidInput(f"tag name longer than {MAX_TAG_NAME} characters")
        if len(value) > MAX_TAG_VALUE:
            raise InvalidInput(f"tag {name!r}: value longer than {MAX_TAG_VALUE} characters")
        check_text(name, "a tag name")
        check_text(value, f"tag {name!r}")
    return dict(tags)


#: 9999-12-31T23:59:59Z: the last moment ISO 8601 (and every client that prints it) can represent.
MAX_TIMESTAMP = 253402300799
MAX_VERSION = 2**63 - 1


def check_time(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a Unix timestamp")
    if not 0 <= value <= MAX_TIMESTAMP:
        raise InvalidInput(f"{name} must be between 1970-01-01 and 9999-12-31")
    return float(value)


def check_version(version: int | None) -> int | None:
    """A version number asked for by a caller: None (current) or 1..2^63-1 (what SQLite's INTEGER holds)."""
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise InvalidInput("version must be a whole number from 1 to 2^63-1")
    return version


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Attributes:
    """Per-version attributes, modelled on Key Vault's secret attributes."""

    enabled: bool = True
    not_before: float | None = None
    expires: float | None = None
    content_type: str = DEFAULT_CONTENT_TYPE
    tags: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "not_before": iso(self.not_before),
            "expires": iso(self.expires),
            "content_type": self.content_type,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class VersionInfo:
    """What can be said about a version without decrypting it."""

    path: str
    version: int
    attributes: Attributes
    created: float
    updated: float
    key_term: int
    #: The value was erased for good (a Vault KV v2 `destroy`): the version's attributes stay, its ciphertext not.
    destroyed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "version": self.version,
            **self.attributes.to_dict(),
            "created": iso(self.created),
            "updated": iso(self.updated),
            "destroyed": self.destroyed,
        }


@dataclass(frozen=True)
class SecretInfo:
    path: str
    current_version: int
    max_versions: int
    created: float
    updated: float
    deleted: float | None = None
    scheduled_purge: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "current_version": self.current_version,
            "max_versions": self.max_versions,
            "created": iso(self.created),
            "updated": iso(self.updated),
        }
        if self.deleted is not None:
            out["deleted"] = iso(self.deleted)
            out["scheduled_purge"] = iso(self.scheduled_purge)
        return out


_new = object.__new__
_Source = TypeVar("_Source")


class Secret:
    """A decrypted version. The value is kept out of repr so it never lands in a log by accident.

    Immutable like the other model types. `info` may be built on first access from the stored row
    (`Secret.deferred`): most reads only want the value, and building the attribute objects is a large part
    of a read's cost.
    """

    __slots__ = ("_info", "_pending", "metadata_json", "value")
    value: SecretValue
    metadata_json: bytes
    _info: VersionInfo | None
    _pending: tuple[Callable[[Any], VersionInfo], Any] | None

    def __init__(self, info: VersionInfo, value: SecretValue, metadata_json: bytes = b"{}") -> None:
        _set_info(self, info)
        _set_pending(self, None)
        _set_value(self, value)
        _set_metadata(self, metadata_json)

    @classmethod
    def deferred(cls, build: Callable[[_Source], VersionInfo], source: _Source, value: SecretValue,
                 metadata_json: bytes) -> Secret:
        """A Secret whose `info` is `build(source)`, computed once on first access."""
        self: Secret = _new(cls)
        _set_info(self, None)
        _set_pending(self, (build, source))
        _set_value(self, value)
        _set_metadata(self, metadata_json)
        return self

    @property
    def info(self) -> VersionInfo:
        info = self._info
        if info is None:
            assert self._pending is not None  # `deferred` sets it whenever `_info` starts as None
            build, source = self._pending
            # Caching a pure function of immutable input keeps the object immutable to its users.
            _set_info(self, info := build(source))
            _set_pending(self, None)
        return info

    @property
    def metadata(self) -> dict[str, str]:
        """Non-sensitive facts the type validator recorded (host, subject, not_after, ...)."""
        parsed: dict[str, str] = json.loads(self.metadata_json)
        return parsed

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(info={self.info!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Secret)
        return (self.info, self.value, self.metadata_json) == (other.info, other.value, other.metadata_json)

    def __hash__(self) -> int:
        return hash((self.info, self.value, self.metadata_json))

    def __reduce__(self) -> tuple[type[Secret], tuple[VersionInfo, SecretValue, bytes]]:
        return type(self), (self.info, self.value, self.metadata_json)


# Slot setters taken once: the only writers of a Secret's fields (its __setattr__ refuses every assignment).
_set_info, _set_pending, _set_value, _set_metadata = (
    Secret.__dict__[name].__set__ for name in ("_info", "_pending", "value", "metadata_json")
)


@dataclass(frozen=True)
class Listing:
    """Direct children of a prefix: secrets and folders (a folder ends with '/')."""

    prefix: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Caller:
    """Who is asking. Authorization and audit key off this; the local operator is the CLI on its own file."""

    subject: str
    policies: frozenset[str] = frozenset()
    accessor: str | None = None
    remote_addr: str | None = None

    @classmethod
    def local_operator(cls) -> Caller:
        return cls(subject="local-operator", policies=frozenset({"root"}))
