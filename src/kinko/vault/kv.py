"""Vault KV v2's value types and pure rules: version states, settings, the data <-> value mapping, merge-patch
and subkeys (the operations are in kinko.vault.kv_engine).

The mapping (docs/compat.md has the user's version):

* a KV version is a kinko version; KV "deleted" is a disabled kinko version (deletion_time = when it was
  disabled) or one whose `expires` has passed (`delete_version_after` sets `expires`); KV "destroyed" is a
  version whose ciphertext was erased (`VersionInfo.destroyed`), its attributes kept.
* KV data is a JSON object. All-string values under Kubernetes-style keys are stored as an `Opaque` key/value
  secret (so native clients, `kinko run` and the CSI provider read it as usual); anything else is stored whole as
  the `json` content type. Read back, a key/value secret is that object (a value that is not UTF-8 reads as
  {"base64": ...}, as on the native API), a single value is {"value": ...}, `json` is the object itself.
* per-secret settings live in vault metadata sealed by the barrier (AAD: vault id, "kv-settings", path);
  `custom_metadata` is not secret (like tags, it is shown to anyone who may list the secret).

Capabilities: read data -> read; write -> create/update; patch and metadata writes -> update; delete versions
-> delete; undelete -> recover; destroy -> purge; metadata read/list -> list; metadata delete -> delete + purge.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kinko.core.model import SecretValue, VersionInfo, check_text
from kinko.core.types import key_name_problems
from kinko.errors import InvalidInput, NotFound

JSON_CONTENT_TYPE = "json"
MAX_CUSTOM_METADATA = 64
MAX_CUSTOM_KEY_BYTES, MAX_CUSTOM_VALUE_BYTES = 128, 512
MAX_VERSIONS_LIMIT = 10_000


class CasRequired(InvalidInput):
    code = "cas_required"


class LatestVersionGone(NotFound):
    """A patch found the current version deleted or destroyed; `state` is that version (Vault answers 404 with
    its metadata)."""

    def __init__(self, message: str, state: KvVersion) -> None:
        super().__init__(message)
        self.state = state


@dataclass(frozen=True)
class KvSettings:
    """Settings of one secret (or, as `KvSettings` of a mount, the defaults of every secret in it)."""

    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: float = 0.0  # seconds; 0 = versions are never deleted by age
    custom_metadata: Mapping[str, str] | None = field(default=None, repr=False)  # sealed: kept out of repr too
    created: float | None = None
    updated: float | None = None

    def to_bytes(self) -> bytes:
        doc = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.__dict__.items()}
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> KvSettings:
        doc = json.loads(raw)
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})

    def effective(self, mount: KvSettings) -> KvSettings:
        """This secret's settings with the mount's defaults filled in (as Vault combines them)."""
        return replace(self, max_versions=self.max_versions or mount.max_versions,
                       cas_required=self.cas_required or mount.cas_required,
                       delete_version_after=self.delete_version_after or mount.delete_version_after)


@dataclass(frozen=True)
class KvVersion:
    """A version's KV state. `deletion_time` may lie in the future (delete_version_after): it is deleted then."""

    version: int
    created: float
    deletion_time: float | None
    destroyed: bool

    def readable(self, now: float) -> bool:
        return not self.destroyed and (self.deletion_time is None or now < self.deletion_time)


@dataclass(frozen=True)
class KvEntry:
    """A data read. `data` None: the version is deleted or destroyed (Vault answers 404 with the metadata)."""

    version: KvVersion
    data: dict[str, Any] | None = field(repr=False)
    custom_metadata: Mapping[str, str] | None = field(repr=False)
    binary_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class KvMetadata:
    path: str
    settings: KvSettings
    created: float
    updated: float
    current_version: int
    oldest_version: int
    versions: tuple[KvVersion, ...]


def version_state(info: VersionInfo) -> KvVersion:
    deletion = info.updated if not info.attributes.enabled else info.attributes.expires
    return KvVersion(info.version, info.created, deletion, info.destroyed)


# -- data <-> value ------------------------------------------------------------------------------------------
def encode_data(data: Mapping[str, Any]) -> tuple[SecretValue, str]:
    """KV data -> (value, content type); see the module docstring for the rule."""
    if not isinstance(data, Mapping):
        raise InvalidInput("data must be a JSON object")
    for key in data:
        check_text(key, "a key of data")
    if data and all(isinstance(v, str) and not key_name_problems(k) for k, v in data.items()):
        return {k: check_text(v, f"data.{k}").encode() for k, v in data.items()}, "Opaque"
    try:
        text = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError):
        raise InvalidInput("data must be plain JSON (no NaN or Infinity, not nested absurdly deep)") from None
    return check_text(text, "data").encode(), JSON_CONTENT_TYPE


def decode_value(value: SecretValue, content_type: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """kinko value -> (KV data, keys whose value is not UTF-8 and so reads as {"base64": ...})."""
    if isinstance(value, bytes) and content_type == JSON_CONTENT_TYPE:
        doc: dict[str, Any] = json.loads(value)
        return doc, ()
    items = {"value": value} if isinstance(value, bytes) else value
    data: dict[str, Any] = {}
    binary: list[str] = []
    for key, raw in items.items():
        try:
            data[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            data[key] = {"base64": base64.b64encode(raw).decode()}
            binary.append(key)
    return data, tuple(binary)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def subkeys(data: Any, depth: int, level: int = 1) -> Any:
    """The structure of `data` with every leaf replaced by null, `depth` levels deep (0 = all)."""
    if not isinstance(data, Mapping):
        return None
    if depth and level >= depth:
        return {key: None for key in data}
    return {key: subkeys(value, depth, level + 1) for key, value in data.items()}


def check_custom_metadata(doc: Any) -> dict[str, str] | None:
    if doc is None:
        return None
    if not isinstance(doc, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
        raise InvalidInput("custom_metadata must map strings to strings")
    if len(doc) > MAX_CUSTOM_METADATA:
        raise InvalidInput(f"custom_metadata may have at most {MAX_CUSTOM_METADATA} keys")
    for key, value in doc.items():
        check_text(key, "a custom_metadata key")
        check_text(value, "a custom_metadata value")
        if not key or len(key.encode()) > MAX_CUSTOM_KEY_BYTES:
            raise InvalidInput(f"custom_metadata keys are 1 to {MAX_CUSTOM_KEY_BYTES} bytes")
        if len(value.encode()) > MAX_CUSTOM_VALUE_BYTES:
            raise InvalidInput(f"custom_metadata values are at most {MAX_CUSTOM_VALUE_BYTES} bytes")
    return dict(doc)


def check_settings(max_versions: int | None, delete_version_after: float | None) -> None:
    if max_versions is not None and not 0 <= max_versions <= MAX_VERSIONS_LIMIT:
        raise InvalidInput(f"max_versions must be between 0 (unlimited) and {MAX_VERSIONS_LIMIT}")
    if delete_version_after is not None and (not math.isfinite(delete_version_after) or delete_version_after < 0):
        raise InvalidInput("delete_version_after must be a duration of 0s or more")
