"""`RemoteVault`: the `VaultSession` protocol over kinko's HTTP API (the token sent decides the caller).

Secrets and named keys are here; lifecycle, tokens, policies, audit and Kubernetes auth come from `AdminCalls`
(`remote_admin`).
"""

from __future__ import annotations

import base64
import builtins
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kinko.client.http import Client
from kinko.client.remote_admin import AdminCalls, api_time
from kinko.core.fingerprints import HMAC_SHA256, Fingerprint
from kinko.core.model import (
    DEFAULT_CONTENT_TYPE,
    Attributes,
    Listing,
    Secret,
    SecretInfo,
    SecretValue,
    VersionInfo,
)
from kinko.core.names import validate_path, validate_prefix
from kinko.errors import InvalidInput
from kinko.vault.session import VaultSession
from kinko.vault.transit import DEFAULT_TYPE, KeyInfo
from kinko.vault.types import KEEP, Keep


class RemoteVault(AdminCalls):
    """`VaultSession` over HTTP: the server decides access from the token the client sends."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @classmethod
    def connect(cls, addr: str | None, token: str | None = None, *, ca_file: str | None = None,
                timeout: float = 30.0) -> RemoteVault:
        return cls(Client(addr, token, ca_file=ca_file, timeout=timeout))

    def __repr__(self) -> str:
        return f"RemoteVault({self.client.addr!r})"

    def use_token(self, token: str | None) -> None:
        """Act with `token` from now on (e.g. one re-read from a token file after the server refused the old)."""
        self.client.use_token(token)

    def close(self) -> None:
        self.client.close()

    # -- secrets ----------------------------------------------------------------------------------------
    def put(self, path: str, value: SecretValue, *, content_type: str = DEFAULT_CONTENT_TYPE,
            enabled: bool = True, not_before: float | None = None, expires: float | None = None,
            tags: Mapping[str, str] | None = None, cas: int | None = None,
            max_versions: int | None = None) -> VersionInfo:
        body = {**_value_body(value), "content_type": content_type, "enabled": enabled, "not_before": not_before,
                "expires": expires, "tags": dict(tags) if tags is not None else None, "cas": cas,
                "max_versions": max_versions}
        return _version(self.client.request("PUT", f"secrets/{_url_path(path)}", json=body))

    def get(self, path: str, version: int | None = None) -> Secret:
        doc = self.client.request("GET", f"secrets/{_url_path(path)}", params={"version": version})
        value: SecretValue = _dec(doc["value"]) if "value" in doc else {k: _dec(v) for k, v in doc["data"].items()}
        return Secret(_version(doc), value, json.dumps(doc.get("metadata", {})).encode())

    def list(self, prefix: str = "") -> Listing:
        doc = self.client.request("GET", _list_route("secrets-list", prefix))
        return Listing(doc["prefix"], tuple(doc["keys"]))

    def scan_fingerprints(
        self, prefix: str, key: bytes, algorithm: str = HMAC_SHA256
    ) -> builtins.list[Fingerprint]:
        body = {"prefix": prefix, "key": base64.b64encode(key).decode()}
        if algorithm != HMAC_SHA256:
            body["algorithm"] = algorithm
        try:
            doc = self.client.request("POST", "scan-fingerprints", json=body)
        except InvalidInput:
            if "algorithm" not in body:
                raise
            del body["algorithm"]  # a server from before the field refuses it; its answer is HMAC-SHA256
            doc = self.client.request("POST", "scan-fingerprints", json=body)
        made = str(doc.get("algorithm", HMAC_SHA256))  # what the server used, not what was asked
        return [Fingerprint(d["path"], int(d["length"]), base64.b64decode(d["digest"]), made)
                for d in doc["fingerprints"]]  # fmt: skip

    def versions(self, path: str) -> builtins.list[VersionInfo]:
        return [_version(d) for d in self.client.request("GET", f"versions/{_url_path(path)}")["versions"]]

    def update_attributes(self, path: str, version: int | None = None, *,
                          enabled: bool | None = None, not_before: float | Keep | None = KEEP,
                          expires: float | Keep | None = KEEP, tags: Mapping[str, str] | None = None,
                          content_type: str | None = None) -> VersionInfo:
        body: dict[str, Any] = {"enabled": enabled, "tags": dict(tags) if tags is not None else None}
        for name, given in (("not_before", not_before), ("expires", expires)):
            if given is not KEEP:
                body[name] = given
        doc = self.client.request("PATCH", f"attributes/{_url_path(path)}", json=body, params={"version": version})
        return _version(doc)

    def delete(self, path: str) -> SecretInfo:
        return _secret_info(self.client.request("DELETE", f"secrets/{_url_path(path)}"))

    def list_deleted(self, prefix: str = "") -> builtins.list[SecretInfo]:
        doc = self.client.request("GET", _list_route("deleted-list", prefix))
        return [_secret_info(d) for d in doc["deleted"]]

    def recover(self, path: str) -> SecretInfo:
        return _secret_info(self.client.request("POST", f"recover/{_url_path(path)}"))

    def purge(self, path: str) -> None:
        self.client.request("DELETE", f"deleted/{_url_path(path)}")

    def backup(self, path: str) -> bytes:
        return str(self.client.request("GET", f"backup/{_url_path(path)}")["backup"]).encode("ascii")

    def restore(self, blob: bytes) -> SecretInfo:
        return _secret_info(self.client.request("POST", "restore", json={"backup": blob.decode("ascii")}))

    # -- named keys --------------------------------------------------------------------------------------
    def create_key(self, name: str, *, key_type: str = DEFAULT_TYPE, derived: bool = False,
                   exportable: bool = False) -> KeyInfo:
        body = {"type": key_type, "derived": derived, "exportable": exportable}
        return KeyInfo.from_dict(self.client.request("POST", _key_path(name), json=body))

    def read_key(self, name: str) -> KeyInfo:
        return KeyInfo.from_dict(self.client.request("GET", _key_path(name)))

    def list_keys(self) -> builtins.list[str]:
        return [str(n) for n in self.client.request("GET", "keys")["keys"]]

    def delete_key(self, name: str) -> None:
        self.client.request("DELETE", _key_path(name))

    def configure_key(self, name: str, *, min_decryption_version: int | None = None,
                      min_encryption_version: int | None = None, deletion_allowed: bool | None = None,
                      exportable: bool | None = None) -> KeyInfo:
        body = {"min_decryption_version": min_decryption_version, "min_encryption_version": min_encryption_version,
                "deletion_allowed": deletion_allowed, "exportable": exportable}
        return KeyInfo.from_dict(self.client.request("PATCH", _key_path(name), json=body))

    def rotate_key(self, name: str) -> KeyInfo:
        return KeyInfo.from_dict(self.client.request("POST", _key_path(name, "rotate")))

    def encrypt(self, name: str, plaintext: bytes, *, associated_data: bytes = b"",
                context: bytes | None = None) -> str:
        body = _data_body(associated_data, context, plaintext=_b64(plaintext))
        return str(self.client.request("POST", _key_path(name, "encrypt"), json=body)["ciphertext"])

    def decrypt(self, name: str, ciphertext: str, *, associated_data: bytes = b"",
                context: bytes | None = None) -> bytes:
        body = _data_body(associated_data, context, ciphertext=ciphertext)
        return base64.b64decode(self.client.request("POST", _key_path(name, "decrypt"), json=body)["plaintext"])

    def rewrap_ciphertext(self, name: str, ciphertext: str, *, associated_data: bytes = b"",
                          context: bytes | None = None) -> str:
        body = _data_body(associated_data, context, ciphertext=ciphertext)
        return str(self.client.request("POST", _key_path(name, "rewrap"), json=body)["ciphertext"])

    def data_key(self, name: str, *, bits: int = 256, plaintext: bool = True) -> tuple[str, bytes | None]:
        doc = self.client.request("POST", _key_path(name, "datakey"), json={"bits": bits, "plaintext": plaintext})
        return str(doc["ciphertext"]), None if doc["plaintext"] is None else base64.b64decode(doc["plaintext"])

    def sign(self, name: str, data: bytes, *, hash_name: str = "sha2-256", signature_algorithm: str = "pss",
             prehashed: bool = False) -> str:
        body = {"input": _b64(data), "hash_algorithm": hash_name, "signature_algorithm": signature_algorithm,
                "prehashed": prehashed}
        return str(self.client.request("POST", _key_path(name, "sign"), json=body)["signature"])

    def verify(self, name: str, data: bytes, signature: str, *, hash_name: str = "sha2-256",
               signature_algorithm: str = "pss", prehashed: bool = False) -> bool:
        body = {"input": _b64(data), "signature": signature, "hash_algorithm": hash_name,
                "signature_algorithm": signature_algorithm, "prehashed": prehashed}
        return bool(self.client.request("POST", _key_path(name, "verify"), json=body)["valid"])


def _key_path(name: str, action: str = "") -> str:
    return f"keys/{quote(name, safe='')}" + (f"/{action}" if action else "")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _data_body(associated_data: bytes, context: bytes | None, **fields: str) -> dict[str, str]:
    if associated_data:
        fields["associated_data"] = _b64(associated_data)
    if context is not None:
        fields["context"] = _b64(context)
    return fields


# -- documents -> model types ---------------------------------------------------------------------------
def _version(doc: Mapping[str, Any]) -> VersionInfo:
    attrs = Attributes(doc["enabled"], api_time(doc["not_before"]), api_time(doc["expires"]), doc["content_type"],
                       dict(doc["tags"]))
    return VersionInfo(doc["path"], doc["version"], attrs, api_time(doc["created"]) or 0.0,
                       api_time(doc["updated"]) or 0.0, int(doc.get("key_term", 0)), bool(doc.get("destroyed", False)))


def _secret_info(doc: Mapping[str, Any]) -> SecretInfo:
    return SecretInfo(doc["path"], doc["current_version"], doc["max_versions"], api_time(doc["created"]) or 0.0,
                      api_time(doc["updated"]) or 0.0, api_time(doc.get("deleted")),
                      api_time(doc.get("scheduled_purge")))


def _enc(raw: bytes) -> Any:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode()}


def _dec(item: Any) -> bytes:
    return item.encode("utf-8") if isinstance(item, str) else base64.b64decode(item["base64"])


def _value_body(value: SecretValue) -> dict[str, Any]:
    if isinstance(value, bytes | bytearray):
        return {"value": _enc(bytes(value))}
    return {"data": {k: _enc(v) for k, v in value.items()}}


def _url_path(path: str) -> str:
    """A secret path checked like local mode does (same `invalid_path`), each segment percent-encoded.

    Checked here, before sending: `a#x`, `a?version=2` or `a/../b` would otherwise reach another secret.
    """
    return "/".join(quote(segment, safe="") for segment in validate_path(path).split("/"))


def _list_route(route: str, prefix: str) -> str:
    trimmed = validate_prefix(prefix)
    return route if not trimmed else f"{route}/" + "/".join(quote(s, safe="") for s in trimmed.split("/"))


if TYPE_CHECKING:  # mypy proves here that RemoteVault implements the whole VaultSession protocol
    _REMOTE_VAULT_IS_A_SESSION: type[VaultSession] = RemoteVault
