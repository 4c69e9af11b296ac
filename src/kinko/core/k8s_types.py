"""Per-type rules of the eight built-in Kubernetes Secret types, as kube-apiserver's ValidateSecret applies them.

Bootstrap-token rules come from k8s.io/cluster-bootstrap (the API server does not check them; the token
authenticator does). kinko adds one content check the API server lacks: `kubernetes.io/tls` must hold a
parseable certificate and the key that matches it. Key names and the 1 MiB total are checked by `types`.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kinko.core.content_kinds import (
    certificate_metadata,
    has_private_key_block,
    key_matches_certificate,
    key_metadata,
    load_certificates,
    load_pem_key,
    parse_ssh_private_key,
)
from kinko.errors import InvalidSecretType

SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
BOOTSTRAP_NAME_PREFIX = "bootstrap-token-"
BOOTSTRAP_NAMESPACE = "kube-system"
BOOTSTRAP_USAGE_PREFIX = "usage-bootstrap-"
KNOWN_BOOTSTRAP_USAGES = ("authentication", "signing")

_TOKEN_ID = re.compile(r"[a-z0-9]{6}")
_TOKEN_SECRET = re.compile(r"[a-z0-9]{16}")
_BOOTSTRAP_GROUP = re.compile(r"system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]")
# time.RFC3339 as Go's time.Parse accepts it: T separator, optional fraction, Z or a numeric offset.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class ObjectMeta:
    """The parts of a Secret's metadata some rules need; None = not known, so the rule is skipped."""

    name: str | None = None
    namespace: str | None = None
    annotations: Mapping[str, str] | None = None


Validator = Callable[[Mapping[str, bytes], ObjectMeta], dict[str, str]]


def show_key(key: str) -> str:
    """A key name fit for an error message: quoted, and cut short so a pasted value cannot flood it."""
    return repr(key) if len(key) <= 64 else repr(key[:64]) + "..."


def _opaque(data: Mapping[str, bytes], meta: ObjectMeta) -> dict[str, str]:
    return {}


def _service_account_token(data: Mapping[str, bytes], meta: ObjectMeta) -> dict[str, str]:
    # Only the annotation is required; token, ca.crt, namespace are filled in later by a controller.
    if meta.annotations is None:
        return {}
    account = meta.annotations.get(SA_NAME_ANNOTATION, "")
    if not account:
        raise InvalidSecretType(f"kubernetes.io/service-account-token: annotation '{SA_NAME_ANNOTATION}' is required")
    return {"service_account": account}


def _reject_non_finite(text: str) -> float:
    # Go's encoding/json has no NaN/Infinity and fails on numbers that overflow float64.
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("number out of range")
    return number


def _go_number(text: str) -> int:
    _reject_non_finite(text)  # Go decodes every number into float64, so huge integers overflow there too
    return int(text)


def _json_object(content_type: str, key: str, data: Mapping[str, bytes]) -> dict[str, object]:
    """`json.Unmarshal(data[key], &map[string]interface{}{})` must succeed; `null` does in Go, too."""
    if key not in data:
        raise InvalidSecretType(f"{content_type}: key {show_key(key)} is required")
    # Go replaces invalid UTF-8 inside strings with U+FFFD; outside strings it is a syntax error either way.
    text = data[key].decode("utf-8", errors="replace")

    def no_constants(name: str) -> object:
        raise ValueError("NaN/Infinity are not JSON")

    try:
        parsed = json.loads(text, parse_float=_reject_non_finite, parse_int=_go_number, parse_constant=no_constants)
    except (ValueError, RecursionError):
        raise InvalidSecretType(f"{content_type}: key {show_key(key)} must be valid JSON") from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise InvalidSecretType(f"{content_type}: key {show_key(key)} must be a JSON object")
    return parsed


def _dockercfg(data: Mapping[str, bytes], meta: ObjectMeta) -> dict[str, str]:
    config = _json_object("kubernetes.io/dockercfg", ".dockercfg", data)
    return {"registries": ",".join(sorted(config))}


def _dockerconfigjson(data: Mapping[str, bytes], meta: ObjectMeta) -> dict[str, str]:
    config = _json_object("kubernetes.io/dockerconfigjson", ".dockerconfigjson", data)
    auths = config.get("auths")
    return {"registries": ",".join(sorted(auths)) if isinstance(auths, dict) else ""}


def _basic_auth(data: Mapping[str, bytes], meta: ObjectMeta) -> dict[str, str]:
    # "username or password might be empty, but the field must be present"
    if "username" not in data and "password" not in data:
        raise InvalidSecretType("kubernetes.io/basic-auth: key 'username' or key 'password' is required")
    return {}


def _ssh_auth(data: Mapping[str, bytes], meta: ObjectMeta) -> dict[str, str]:
    # The API server only requires a non-empty value (present-but-empty fails, unlike basic-auth / tls).
    if not data.get("ssh-privatekey"):
        raise InvalidSecretType("kubernetes.io/ssh-auth: key 'ssh-privatekey' is required and must not be empty")
    # Describe the key when kinko can read it, but do not be stricter than the API server about its format.
    try:
        return parse_ssh_private_key("ssh-privatekey", data["ssh-privatekey"])
    except InvalidSecretType:
        return {"key_type": "unknown"}


def _tls(data: Mapping[str, bytes], meta: ObjectMeta) -> dict[str, str]:
    kind = "kubernetes.io/tls"
    for required in ("tls.crt", "tls.key"):
        if required not in data:
            raise InvalidSecretType(f"{kind}: key {required!r} is required")
    # Beyond the API server (presence only): a TLS secret that cannot serve TLS is a bug we catch at write.
    certs = load_certificates(f"{kind}: key 'tls.crt'", data["tls.crt"])
    if not has_private_key_block(data["tls.key"]):
        raise InvalidSecretType(f"{kind}: key 'tls.key' must be a PEM private key")
    key = load_pem_key(f"{kind}: key 'tls.key'", data["tls.key"])
    if key is None:
        raise InvalidSecretType(f"{kind}: key 'tls.key' is password-protected; it must be unencrypted")
    if not key_matches_certificate(key, certs[0]):
        raise InvalidSecretType(f"{kind}: key 'tls.key' does not match the certificate in 'tls.crt'")
    result = certificate_metadata(certs[0])
    result.update(chain_length=str(len(certs)), key_matches="true", key_type=key_metadata(key)["key_type"])
    if data.get("ca.crt"):
        result["ca_chain_length"] = str(len(load_certificates(f"{kind}: key 'ca.crt'", data["ca.crt"])))
    return result


def _ascii(data: Mapping[str, bytes], key: str) -> str:
    return data.get(key, b"").decode("utf-8", errors="replace")


def _bootstrap_token(data: Mapping[str, bytes], meta: ObjectMeta) -> dict[str, str]:
    kind = "bootstrap.kubernetes.io/token"
    token_id = _ascii(data, "token-id")
    if "token-id" not in data:
        raise InvalidSecretType(f"{kind}: key 'token-id' is required")
    if not _TOKEN_ID.fullmatch(token_id):
        raise InvalidSecretType(f"{kind}: key 'token-id' must be 6 characters from [a-z0-9]")
    if "token-secret" not in data:
        raise InvalidSecretType(f"{kind}: key 'token-secret' is required")
    if not _TOKEN_SECRET.fullmatch(_ascii(data, "token-secret")):
        raise InvalidSecretType(f"{kind}: key 'token-secret' must be 16 characters from [a-z0-9]")
    _bootstrap_object_meta(kind, token_id, meta)
    result = {"token_id": token_id, "usages": ",".join(_bootstrap_usages(kind, data))}
    if "expiration" in data:
        result["expiration"] = _bootstrap_expiration(kind, _ascii(data, "expiration"))
    groups = _ascii(data, "auth-extra-groups")
    if groups:  # empty = only the default group, as in cluster-bootstrap GetGroups
        for group in groups.split(","):
            if not _BOOTSTRAP_GROUP.fullmatch(group):
                raise InvalidSecretType(
                    f"{kind}: key 'auth-extra-groups' must be a comma-separated list of groups matching "
                    "system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]"
                )
        result["auth_extra_groups"] = groups
    return result


def _bootstrap_object_meta(kind: str, token_id: str, meta: ObjectMeta) -> None:
    """The authenticator looks the token up as kube-system/bootstrap-token-<token-id>."""
    if meta.name is not None and meta.name != BOOTSTRAP_NAME_PREFIX + token_id:
        raise InvalidSecretType(f"{kind}: name must be '{BOOTSTRAP_NAME_PREFIX}<token-id>' for this token-id")
    if meta.namespace is not None and meta.namespace != BOOTSTRAP_NAMESPACE:
        raise InvalidSecretType(f"{kind}: namespace must be '{BOOTSTRAP_NAMESPACE}'")


def _bootstrap_usages(kind: str, data: Mapping[str, bytes]) -> list[str]:
    """Usages whose value is exactly "true" (any other value means false); unknown usages are rejected."""
    usages: list[str] = []
    for key in sorted(data):
        if not key.startswith(BOOTSTRAP_USAGE_PREFIX):
            continue
        usage = key[len(BOOTSTRAP_USAGE_PREFIX) :]
        if usage not in KNOWN_BOOTSTRAP_USAGES:
            known = ", ".join(BOOTSTRAP_USAGE_PREFIX + u for u in KNOWN_BOOTSTRAP_USAGES)
            raise InvalidSecretType(f"{kind}: key {show_key(key)} is not a known usage; known: {known}")
        if data[key] == b"true":
            usages.append(usage)
    return usages


def _bootstrap_expiration(kind: str, text: str) -> str:
    """RFC 3339 as Go parses it; returned normalised to UTC ISO 8601."""
    problem = f"{kind}: key 'expiration' must be an RFC 3339 time such as 2030-01-02T15:04:05Z"
    if not _RFC3339.fullmatch(text):
        raise InvalidSecretType(problem)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidSecretType(problem) from None
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


VALIDATORS: dict[str, Validator] = {
    "Opaque": _opaque,
    "kubernetes.io/service-account-token": _service_account_token,
    "kubernetes.io/dockercfg": _dockercfg,
    "kubernetes.io/dockerconfigjson": _dockerconfigjson,
    "kubernetes.io/basic-auth": _basic_auth,
    "kubernetes.io/ssh-auth": _ssh_auth,
    "kubernetes.io/tls": _tls,
    "bootstrap.kubernetes.io/token": _bootstrap_token,
}
