"""Reading one Kubernetes Secret manifest the way the API server does: data (base64) + stringData, then its type."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from kinko.core.k8s_types import show_key
from kinko.core.names import validate_path
from kinko.core.types import K8S_TYPES, validate_secret
from kinko.errors import InvalidInput, InvalidPath, KinkoError

#: Tag kept on a secret whose Kubernetes type is not a built-in one (stored as Opaque).
CUSTOM_TYPE_TAG = "kubernetes-type"
MAX_TAG_VALUE = 256


@dataclass(frozen=True)
class ImportedSecret:
    """A Secret read from a manifest. `data` holds the decoded values and never appears in repr or output."""

    label: str
    namespace: str
    name: str
    content_type: str
    kinko_path: str
    data: dict[str, bytes] = field(repr=False)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.data))

    def describe(self) -> dict[str, Any]:
        """Path, type, key names and source: everything but the values."""
        return {"path": self.kinko_path, "type": self.content_type, "keys": list(self.keys),
                "source": self.label, "secret": f"{self.namespace}/{self.name}"}


def _decode(value: object, where: str, key: str) -> bytes:
    """Go's StdEncoding as encoding/json uses it for []byte: padded, CR/LF ignored; null is empty."""
    if value is None:
        return b""
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: data key {show_key(key)} must be a base64 string")
    try:
        return base64.b64decode(re.sub(r"[\r\n]", "", value), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where}: data key {show_key(key)} is not valid base64") from None


def _mapping(obj: dict[str, Any], name: str, where: str) -> dict[Any, Any]:
    value = obj.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: {name} must be a map")
    return value


def _data(obj: dict[str, Any], where: str) -> dict[str, bytes]:
    data: dict[str, bytes] = {}
    for key, value in _mapping(obj, "data", where).items():
        if not isinstance(key, str):
            raise InvalidInput(f"{where}: every data key must be a string")
        data[key] = _decode(value, where, key)
    # The API server merges stringData over data: on the same key, stringData wins.
    for key, value in _mapping(obj, "stringData", where).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput(f"{where}: stringData key {show_key(str(key))} must map a string to a string")
        data[key] = value.encode("utf-8")
    return data


def parse_secret(obj: dict[str, Any], label: str, prefix: str) -> ImportedSecret:
    """Decode and validate a Secret (errors name the document, Secret and key, never a value)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise InvalidInput(f"{label}: Secret has no metadata.name")
    name, namespace = meta["name"], meta.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise InvalidInput(f"{label}: Secret {name[:64]!r}: metadata.namespace must be a string")
    where = f"{label}: Secret {namespace[:64]}/{name[:64]}"
    stype = obj.get("type") or "Opaque"
    if not isinstance(stype, str):
        raise InvalidInput(f"{where}: type must be a string")
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else None
    data = _data(obj, where)
    content_type, tags = (stype, {}) if stype in K8S_TYPES else ("Opaque", {CUSTOM_TYPE_TAG: stype[:MAX_TAG_VALUE]})
    try:
        validate_secret(content_type, data, name=name, namespace=namespace, annotations=annotations)
        path = validate_path(f"{prefix}/{namespace}/{name}")
    except InvalidPath as exc:
        raise InvalidInput(f"{where}: cannot become a kinko path: {exc.message}") from None
    except KinkoError as exc:
        raise type(exc)(f"{where}: {exc.message}") from None
    return ImportedSecret(label, namespace, name, content_type, path, data, tags)
