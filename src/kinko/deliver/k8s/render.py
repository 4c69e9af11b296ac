"""Kubernetes manifests for kinko delivery: SecretProviderClass + CSI volume snippets, and typed native Secrets."""

from __future__ import annotations

import base64
import ipaddress
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from kinko.core.names import validate_path
from kinko.core.types import K8S_TYPES, SecretValue, key_name_problems, validate_secret
from kinko.deliver.files import DEFAULT_FILE_MODE, validate_clean_path
from kinko.errors import InvalidInput, UsageError

SPC_API_VERSION = "secrets-store.csi.x-k8s.io/v1"
CSI_DRIVER = "secrets-store.csi.k8s.io"
PROVIDER = "kinko"
DEFAULT_MOUNT_PATH = "/var/run/secrets/kinko"
DEFAULT_VOLUME_NAME = "kinko-secrets"
ENCODINGS = ("utf-8", "base64", "hex")
ANNOTATION_PREFIX = "kinko.dev/"
SECRET_WARNING = (
    "warning: a Kubernetes Secret is only base64-encoded, not encrypted: anyone who can read the manifest, "
    "etcd backups or the namespace's Secrets can read the value. Prefer the kinko CSI volume "
    "(`kinko k8s render spc`), which delivers 0400 files and keeps no copy in the cluster."
)

# DNS-1123 subdomain (object names) and label (volume names), as the API server checks them.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class CsiObject:
    """One entry of the SecretProviderClass `objects` list: a file the CSI provider writes into the pod."""

    object_name: str
    secret_path: str
    secret_key: str | None = None
    version: int | None = None
    file_permission: int = DEFAULT_FILE_MODE
    encoding: str | None = None

    def to_param(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"objectName": self.object_name, "secretPath": self.secret_path}
        if self.secret_key is not None:
            entry["secretKey"] = self.secret_key
        if self.version is not None:
            entry["version"] = self.version
        entry["filePermission"] = _Octal(self.file_permission)
        if self.encoding is not None:
            entry["encoding"] = self.encoding
        return entry


class _Octal(int):
    """A file mode written as a YAML 1.1 octal (`0400`): PyYAML and Go's yaml.v3 both read it as 256."""


class _Dumper(yaml.SafeDumper):
    """Safe dumper that keeps multi-line strings readable (`|` blocks) and modes octal."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _octal(dumper: yaml.SafeDumper, value: _Octal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:int", f"{int(value):04o}")


_Dumper.add_representer(str, _str_block)
_Dumper.add_representer(_Octal, _octal)


def dump_yaml(docs: Iterable[Any]) -> str:
    """Documents as one multi-document YAML text, keys in their given order."""
    return "---\n".join(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120) for doc in docs)


def check_name(name: str, what: str) -> str:
    """A Kubernetes object name (DNS-1123 subdomain, at most 253 characters)."""
    if not name or len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
        raise UsageError(f"{what} {name[:64]!r} must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.')")
    return name


def check_address(address: str, what: str = "--address") -> list[str]:
    """A kinko URL as pods reach it: absolute http(s) or a usage error. Returns warnings (loopback, plain http)."""
    try:
        url = urllib.parse.urlsplit(address)
        scheme, host, _port = url.scheme, url.hostname, url.port  # .port raises on a non-numeric port
    except ValueError:
        scheme, host = "", None
    if scheme not in ("http", "https") or not host or any(c.isspace() for c in address):
        raise UsageError(f"{what} {address[:80]!r} must be an absolute http(s) URL such as "
                         "https://kinko.kinko.svc:8200")
    warnings = []
    if _is_loopback(host):
        warnings.append(f"{what} {address!r} is a loopback address: pods cannot reach it; give the address "
                        "pods use (for example https://kinko.kinko.svc:8200)")
    if scheme == "http":
        warnings.append(f"{what} {address!r} is plain http: pods' login tokens and secrets travel in clear")
    return warnings


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_mount_path(path: str) -> str:
    """Where containers see the files: an absolute path (a relative mountPath is rejected by the API server)."""
    if not path.startswith("/") or "\x00" in path:
        raise UsageError(f"--mount-path {path[:80]!r} must be an absolute path such as {DEFAULT_MOUNT_PATH}")
    return path


def volume_name(base: str, taken: Iterable[str] = ()) -> str:
    """A DNS-1123 label (volume names are at most 63 characters) derived from `base`, unique among `taken`."""
    label = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:63].strip("-") or "kinko"
    used, candidate, n = set(taken), label, 2
    while candidate in used:
        suffix = f"-{n}"
        candidate, n = label[: 63 - len(suffix)].strip("-") + suffix, n + 1
    assert _LABEL.fullmatch(candidate)
    return candidate


def check_object_name(name: str) -> str:
    """The provider's objectName rule (the CSI driver's fileutil.Validate plus kinko's file-name rules)."""
    try:
        return validate_clean_path(name)
    except InvalidInput as exc:
        raise UsageError(f"object name: {exc.message}") from None


def parse_object_ref(text: str, *, file_permission: int = DEFAULT_FILE_MODE) -> CsiObject:
    """`PATH[#key][=objectName]`; the file name defaults to the key, else the path's last segment."""
    ref, sep, object_name = text.partition("=")
    path, hashed, key = ref.partition("#")
    if (sep and not object_name) or (hashed and not key):
        raise UsageError(f"object {text[:80]!r}: expected PATH[#key][=objectName]")
    validate_path(path)
    if key and key_name_problems(key):
        raise UsageError(f"object {text[:80]!r}: key {key[:64]!r} is not a valid key name")
    name = object_name or key or path.rsplit("/", 1)[-1]
    return CsiObject(check_object_name(name), path, key or None, file_permission=file_permission)


def render_spc(
    name: str, namespace: str, objects: Sequence[CsiObject], *, role: str, address: str,
    audience: str | None = None, annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A SecretProviderClass for the kinko provider (parameters: kinkoAddress, roleName, audience, objects)."""
    check_name(name, "SecretProviderClass name")
    check_name(namespace, "namespace")
    if not objects:
        raise UsageError(f"SecretProviderClass {name!r}: give at least one object")
    seen: set[str] = set()
    for obj in objects:
        check_object_name(obj.object_name)
        if obj.object_name in seen:  # the provider (like Vault's) rejects duplicate objectNames
            raise UsageError(f"SecretProviderClass {name!r}: object name {obj.object_name!r} used twice")
        if obj.encoding is not None and obj.encoding not in ENCODINGS:
            raise UsageError(f"object {obj.object_name!r}: encoding must be one of {', '.join(ENCODINGS)}")
        seen.add(obj.object_name)
    if not role or not address:
        raise UsageError("a SecretProviderClass needs a role (--role) and a kinko address (--address)")
    params: dict[str, str] = {"kinkoAddress": address, "roleName": role}
    if audience:
        params["audience"] = audience
    params["objects"] = yaml.dump([o.to_param() for o in objects], Dumper=_Dumper, sort_keys=False)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": SPC_API_VERSION, "kind": "SecretProviderClass", "metadata": metadata,
            "spec": {"provider": PROVIDER, "parameters": params}}


def csi_volume(name: str, spc_name: str) -> dict[str, Any]:
    """A pod volume served by the Secrets Store CSI driver; the driver refuses volumes that are not readOnly."""
    return {"name": name, "csi": {"driver": CSI_DRIVER, "readOnly": True,
                                  "volumeAttributes": {"secretProviderClass": spc_name}}}


def volume_snippet(spc_name: str, *, name: str = DEFAULT_VOLUME_NAME,
                   mount_path: str = DEFAULT_MOUNT_PATH) -> dict[str, Any]:
    """The pod `volumes` entry and the container `volumeMounts` entry that mount a SecretProviderClass."""
    return {"volumes": [csi_volume(name, spc_name)],
            "volumeMounts": [{"name": name, "mountPath": mount_path, "readOnly": True}]}


def render_secret(
    name: str, namespace: str, value: SecretValue, *, secret_type: str = "Opaque", single_key: str,  # noqa: S107
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A typed native Secret (`data` base64) validated as the API server would. A single value becomes one key."""
    check_name(name, "Secret name")
    check_name(namespace, "namespace")
    if secret_type not in K8S_TYPES:
        raise InvalidInput(f"Secret type {secret_type[:64]!r} is not one of: {', '.join(sorted(K8S_TYPES))}")
    data = {single_key: value} if isinstance(value, bytes) else dict(value)
    validate_secret(secret_type, data, name=name, namespace=namespace, annotations=annotations)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": secret_type,
            "data": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(data.items())}}
