"""Parsing and validation of a CSI MountRequest: SecretProviderClass parameters, the pod token, file modes."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kinko.deliver.files import validate_clean_path
from kinko.deliver.modes import parse_mode, secret_mode
from kinko.deliver.yamlload import load_yaml
from kinko.errors import InvalidInput, InvalidPath

TOKENS_ATTR = "csi.storage.k8s.io/serviceAccount.tokens"
ENCODINGS = ("utf-8", "base64", "hex")
OBJECT_KEYS = frozenset({"objectName", "secretPath", "secretKey", "version", "filePermission", "encoding"})
MAX_OBJECTS = 256
#: The objects parameter is YAML from a SecretProviderClass; anything bigger than this is not a real one.
MAX_OBJECTS_YAML = 256 * 1024
#: YAML nodes in `objects` (aliases counted each time): MAX_OBJECTS entries of a few keys each, with room to spare.
MAX_OBJECTS_NODES = 20_000
_VERSION = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class CSIObject:
    """One entry of the `objects` parameter: which kinko secret (and key) becomes which file."""

    object_name: str
    secret_path: str
    secret_key: str | None = None
    version: int | None = None
    #: None: mounted with files.DEFAULT_FILE_MODE (0400, the README's promise). The request's `permission` (the
    #: driver's default, usually 0644) is deliberately not used: set filePermission on an object to widen it.
    file_permission: int | None = None
    encoding: str = "utf-8"


@dataclass(frozen=True)
class MountPlan:
    """Everything a Mount needs, validated before any network call."""

    address: str | None
    role: str
    objects: tuple[CSIObject, ...]
    permission: int
    token: str = field(repr=False)
    #: group/other-readable filePermissions, for the provider's log (the kubelet writes the files; nobody is there
    #: to see a warning otherwise)
    warnings: tuple[str, ...] = ()


def parse_request(attributes: str, secrets: str, permission: str) -> MountPlan:
    """Validate the MountRequest fields; raises InvalidInput naming the parameter or object, never a value."""
    attrs = _string_map(attributes, "attributes")
    extra = _string_map(secrets or "null", "secrets")
    role = attrs.get("roleName", "")
    if not role:
        raise InvalidInput("parameter roleName is required (the kinko Kubernetes auth role to log in with)")
    token = select_token(attrs, extra, attrs.get("audience") or None)
    objects = parse_objects(attrs.get("objects", ""))
    return MountPlan(attrs.get("kinkoAddress") or None, role, objects, parse_permission(permission), token,
                     _mode_warnings(attrs, objects))


def _mode_warnings(attrs: Mapping[str, str], objects: tuple[CSIObject, ...]) -> tuple[str, ...]:
    spc = (f"SecretProviderClass {attrs.get('secretProviderClass', '')[:253]!r} in namespace "
           f"{attrs.get('csi.storage.k8s.io/pod.namespace', '')[:63]!r}")
    found = (secret_mode(obj.file_permission, f"object {obj.object_name!r}: filePermission")
             for obj in objects if obj.file_permission is not None)
    return tuple(f"{spc}: {warning}" for warning in found if warning)


def _string_map(text: str, what: str) -> dict[str, str]:
    try:
        doc = json.loads(text) if text else {}
    except (ValueError, RecursionError):
        raise InvalidInput(f"{what} is not valid JSON") from None
    if doc is None:  # Go marshals a nil map as `null`: no nodePublishSecretRef
        return {}
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise InvalidInput(f"{what} must be a JSON object of strings")
    return doc


def parse_permission(text: str) -> int:
    """The request's `permission`: JSON of a Go os.FileMode, i.e. a decimal number such as "420" (0644)."""
    if not text:
        return 0o644  # what the driver sends when nothing overrides it
    try:
        mode = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput("permission is not a JSON number (expected a file mode such as \"420\")") from None
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
        raise InvalidInput("permission must be a file mode between 0 and 511 (0777)")
    return mode


def select_token(attrs: Mapping[str, str], secrets: Mapping[str, str], audience: str | None) -> str:
    """The pod's service-account JWT for `audience` (else the only one) from the tokens attribute."""
    # With serviceAccountTokenInSecrets (K8s 1.35+) the driver puts the tokens in `secrets` instead.
    raw = secrets.get(TOKENS_ATTR) or attrs.get(TOKENS_ATTR)
    if not raw:
        raise InvalidInput(f"no service-account token in the mount request: {TOKENS_ATTR} is missing "
                           "(add tokenRequests to the secrets-store CSIDriver)")
    try:
        tokens = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput(f"{TOKENS_ATTR} is not valid JSON") from None
    if not isinstance(tokens, dict) or not tokens:
        raise InvalidInput(f"{TOKENS_ATTR} must be a non-empty JSON object {{audience: {{token, ...}}}}")
    if audience is None and len(tokens) > 1:
        raise InvalidInput(f"{TOKENS_ATTR} holds tokens for several audiences "
                           f"({_names(tokens)}); set the audience parameter")
    key = audience if audience is not None else next(iter(tokens))
    entry = tokens.get(key)
    if entry is None:
        raise InvalidInput(f"no service-account token for audience {key!r} (the pod has: {_names(tokens)}); "
                           "add it to the CSIDriver's tokenRequests or fix the audience parameter")
    token = entry.get("token") if isinstance(entry, dict) else None
    if not isinstance(token, str) or not token:
        raise InvalidInput(f"{TOKENS_ATTR}: the entry for audience {key!r} has no token")
    return token


def _names(tokens: Mapping[str, Any]) -> str:
    return ", ".join(repr(str(k)[:64]) for k in list(tokens)[:8])


def parse_objects(text: str) -> tuple[CSIObject, ...]:
    """The `objects` parameter: a YAML list of {objectName, secretPath, secretKey, version, ...} mappings."""
    if not text.strip():
        raise InvalidInput("parameter objects is required: a YAML list of {objectName, secretPath, ...}")
    if len(text.encode(errors="surrogatepass")) > MAX_OBJECTS_YAML:  # a bad argument, not a full server
        raise InvalidInput(f"parameter objects is larger than {MAX_OBJECTS_YAML} bytes")
    doc = load_yaml(text, "parameter objects", max_nodes=MAX_OBJECTS_NODES)
    if not isinstance(doc, list) or not doc:
        raise InvalidInput("parameter objects must be a non-empty YAML list of {objectName, secretPath, ...}")
    if len(doc) > MAX_OBJECTS:
        raise InvalidInput(f"parameter objects lists {len(doc)} objects; at most {MAX_OBJECTS} are allowed")
    objects = tuple(_parse_object(index, entry) for index, entry in enumerate(doc))
    _check_names(objects)
    return objects


def _parse_object(index: int, entry: Any) -> CSIObject:
    where = f"objects[{index}]"
    if not isinstance(entry, dict):
        raise InvalidInput(f"{where} must be a mapping with objectName and secretPath")
    unknown = sorted(str(k) for k in entry if k not in OBJECT_KEYS)
    if unknown:
        raise InvalidInput(f"{where}: unknown key(s) {', '.join(repr(k[:64]) for k in unknown)}; "
                           f"allowed: {', '.join(sorted(OBJECT_KEYS))}")
    name = _text(entry, "objectName", where, required=True)
    assert name is not None
    where = f"object {name[:255]!r}"
    object_name = _object_name(name)
    path = _text(entry, "secretPath", where, required=True)
    assert path is not None
    encoding = _text(entry, "encoding", where) or "utf-8"
    if encoding.lower() not in ENCODINGS:
        raise InvalidInput(f"{where}: encoding must be one of {', '.join(ENCODINGS)}")
    return CSIObject(object_name, path.lstrip("/"), _text(entry, "secretKey", where),
                     _version(entry.get("version"), where), _file_mode(entry.get("filePermission"), where),
                     encoding.lower())


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{where}: {key} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: {key} must be a string")
    return value


def _object_name(name: str) -> str:
    """The file the driver will write: a clean relative path (the driver's own validation, which allows `a/b`)
    whose every element follows the agent's file-name rules (no `..`, no control character, 255 bytes)."""
    try:
        return validate_clean_path(name)
    except InvalidPath as exc:
        raise InvalidPath(f"objectName: {exc.message}") from None


def _version(value: Any, where: str) -> int | None:
    if value is None or value == "" or value == "latest":
        return None
    if isinstance(value, str) and _VERSION.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{where}: version must be a kinko version number (1, 2, ...) or 'latest'")
    return value


def _file_mode(value: Any, where: str) -> int | None:
    """filePermission: the agent's mode policy (no execute bits, no group/other write; readable is logged)."""
    mode = parse_mode(value, f"{where}: filePermission")
    if mode is not None:
        secret_mode(mode, f"{where}: filePermission")
    return mode


def _check_names(objects: tuple[CSIObject, ...]) -> None:
    """Unique names, and no name that is a directory of another (the driver could not write both)."""
    names: set[str] = set()
    for obj in objects:
        if obj.object_name in names:
            raise InvalidInput(f"objectName {obj.object_name!r} is used more than once; every objectName "
                               "must be unique")
        names.add(obj.object_name)
    for name in names:
        parent = posixpath.dirname(name)
        while parent:
            if parent in names:
                raise InvalidPath(f"objectName {name!r} is inside {parent!r}, which is also an object")
            parent = posixpath.dirname(parent)
