"""Typed secret validation: the public entry point for the 8 Kubernetes Secret types and kinko's content kinds.

`validate_secret` checks a value against its content type and returns non-sensitive metadata to store beside
it. The checks shared by every Kubernetes type (key names, 1 MiB total) live here; per-type rules live in
`k8s_types`, single-value kinds (connection string, certificate, keys, ...) in `content_kinds`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from kinko.core import content_kinds, k8s_types
from kinko.core.k8s_types import show_key
from kinko.errors import InvalidSecretType, TooLarge

SecretValue = bytes | Mapping[str, bytes]

__all__ = [
    "CONTENT_TYPES",
    "K8S_TYPES",
    "KINKO_KINDS",
    "MAX_SECRET_SIZE",
    "SecretValue",
    "key_name_problems",
    "show_key",
    "validate_secret",
]

K8S_TYPES: frozenset[str] = frozenset(k8s_types.VALIDATORS)
KINKO_KINDS: frozenset[str] = frozenset(content_kinds.VALIDATORS)
CONTENT_TYPES: frozenset[str] = K8S_TYPES | KINKO_KINDS

#: `core.MaxSecretSize` in kubernetes pkg/apis/core/types.go; the API server rejects totals strictly above it.
MAX_SECRET_SIZE = 1 * 1024 * 1024
#: `DNS1123SubdomainMaxLength`, used by IsConfigMapKey for key names and by NameIsDNSSubdomain for names.
MAX_KEY_LENGTH = 253

# IsConfigMapKey: `^[-._a-zA-Z0-9]+$` in Go; fullmatch because Python's `$` also matches before a final "\n".
_CONFIG_MAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# NameIsDNSSubdomain (IsDNS1123Subdomain): dot-separated DNS-1123 labels, lower case.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def key_name_problems(key: str) -> list[str]:
    """The IsConfigMapKey rules `key` breaks, in the API server's order (empty list = valid)."""
    problems: list[str] = []
    if len(key.encode("utf-8")) > MAX_KEY_LENGTH:  # Go len() counts bytes
        problems.append(f"must be no more than {MAX_KEY_LENGTH} characters")
    if not _CONFIG_MAP_KEY.fullmatch(key):
        problems.append("a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
    if key == ".":
        problems.append("must not be '.'")
    elif key == "..":
        problems.append("must not be '..'")
    elif key.startswith(".."):
        problems.append("must not start with '..'")
    return problems


def validate_k8s_name(content_type: str, name: str) -> None:
    """ValidateSecretName = NameIsDNSSubdomain: lower-case alphanumerics, '-' and '.', at most 253."""
    if len(name) > MAX_KEY_LENGTH:
        raise InvalidSecretType(f"{content_type}: name must be no more than {MAX_KEY_LENGTH} characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(name):
        raise InvalidSecretType(
            f"{content_type}: name {show_key(name)} must be a lowercase RFC 1123 subdomain "
            "(lower-case alphanumerics, '-' or '.', starting and ending with an alphanumeric)"
        )


def _check_map(content_type: str, value: object) -> Mapping[str, bytes]:
    if isinstance(value, bytes | bytearray | memoryview | str):
        raise InvalidSecretType(
            f"{content_type}: takes a key -> value map (like a Kubernetes Secret's data), not a single value"
        )
    if not isinstance(value, Mapping):
        raise InvalidSecretType(f"{content_type}: value must be a key -> bytes map")
    for key, item in value.items():
        if not isinstance(key, str):
            raise InvalidSecretType(f"{content_type}: every key must be a string")
        problems = key_name_problems(key)
        if problems:
            raise InvalidSecretType(f"{content_type}: key {show_key(key)} is invalid: {'; '.join(problems)}")
        if not isinstance(item, bytes):
            raise InvalidSecretType(f"{content_type}: value of key {show_key(key)} must be bytes")
    total = sum(len(item) for item in value.values())  # keys are not counted, as in ValidateSecret
    if total > MAX_SECRET_SIZE:
        raise TooLarge(f"{content_type}: total size of the values must be no more than {MAX_SECRET_SIZE} bytes (1 MiB)")
    return value


def _check_single(content_type: str, value: object) -> bytes:
    if isinstance(value, Mapping):
        raise InvalidSecretType(
            f"{content_type}: takes a single value, not a key -> value map; "
            "use 'Opaque' or another Kubernetes type for several keys"
        )
    if not isinstance(value, bytes):
        raise InvalidSecretType(f"{content_type}: value must be bytes")
    if len(value) > MAX_SECRET_SIZE:
        raise TooLarge(f"{content_type}: value must be no more than {MAX_SECRET_SIZE} bytes (1 MiB)")
    return value


def validate_secret(
    content_type: str,
    value: SecretValue,
    *,
    name: str | None = None,
    namespace: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Validate value for content_type; return NON-SENSITIVE metadata (str->str) to store beside it.

    `name`, `namespace` and `annotations` are the Kubernetes object's metadata, for the rules that need it
    (secret name is a DNS subdomain; bootstrap tokens are `kube-system/bootstrap-token-<id>`; a
    service-account-token needs the `kubernetes.io/service-account.name` annotation). Rules whose metadata
    is not given are skipped. Raises kinko.errors.InvalidSecretType (unknown type, missing key, bad format)
    or TooLarge. Messages name the type, key and rule, never a value.
    """
    if content_type in K8S_TYPES:
        data = _check_map(content_type, value)
        if name is not None:
            validate_k8s_name(content_type, name)
        meta = k8s_types.VALIDATORS[content_type](
            data, k8s_types.ObjectMeta(name=name, namespace=namespace, annotations=annotations)
        )
        meta["keys"] = ",".join(sorted(data))
    elif content_type in KINKO_KINDS:
        single: Callable[[bytes], dict[str, str]] = content_kinds.VALIDATORS[content_type]
        meta = single(_check_single(content_type, value))
    else:
        known = ", ".join(sorted(CONTENT_TYPES))
        raise InvalidSecretType(f"unknown content type {show_key(str(content_type))}; known types: {known}")
    meta["content_type"] = content_type
    return meta
