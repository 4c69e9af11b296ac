"""HTTP client for the native /v1 API (`Client`), and `RemoteVault`: the Vault method surface over HTTP.

Address and token come from arguments, else KINKO_ADDR / KINKO_TOKEN, else the token file written by
`kinko login` (~/.kinko/token, used only for the server address stored with it). Server errors come back
as the same kinko.errors types (matched by code).
"""

from __future__ import annotations

import base64
import builtins
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from kinko.access.audit import ChainReport
from kinko.access.policy import Policy, Rule, parse_policy
from kinko.access.tokens import DEFAULT_TTL, TokenInfo
from kinko.client_net import tls_context, unreachable
from kinko.core.model import (
    DEFAULT_CONTENT_TYPE,
    Attributes,
    Caller,
    Listing,
    Secret,
    SecretInfo,
    SecretValue,
    VersionInfo,
)
from kinko.core.names import validate_path, validate_prefix
from kinko.crypto.seal import SealType
from kinko.errors import KinkoError, UsageError
from kinko.lifecycle import InitResult, VaultStatus

TOKEN_FILE = "~/.kinko/token"
_UNSET: Any = object()


def _error_classes() -> dict[str, type[KinkoError]]:
    found: dict[str, type[KinkoError]] = {}
    pending: list[type[KinkoError]] = [KinkoError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_from(status: int, doc: Any) -> KinkoError:
    """The kinko error a response body describes (an unknown code keeps its code and status)."""
    detail = doc.get("error") if isinstance(doc, dict) else None
    code = str(detail.get("code", "error")) if isinstance(detail, dict) else "error"
    message = str(detail.get("message", "")) if isinstance(detail, dict) else f"server answered HTTP {status}"
    cls = _error_classes().get(code)
    if cls is None or cls is KinkoError:
        exc = KinkoError(message)
        exc.code, exc.http_status = code, status
        return exc
    return cls(message)


def same_server(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def stored_token(addr: str) -> str | None:
    """The token `kinko login` stored for server `addr` ({"addr", "token"} JSON in ~/.kinko/token), else None.

    A file written for another server is not sent to this one; an old plain-token file does not say which
    server it is for, so it is ignored too. Either way one line on stderr says to log in again.
    """
    path = Path(os.path.expanduser(TOKEN_FILE))
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("addr"), str) or not isinstance(doc.get("token"), str):
        _hint(f"{TOKEN_FILE} does not say which server it is for (older format); ignored: run `kinko login`")
        return None
    if not same_server(doc["addr"], addr):
        _hint(f"{TOKEN_FILE} is for {doc['addr']}, not {addr}; ignored: run `kinko login` for this server")
        return None
    return doc["token"] or None


def _hint(message: str) -> None:
    sys.stderr.write(f"note: {message}\n")


class Client:
    """Thin JSON client: one method per HTTP verb, kinko errors raised for non-2xx answers."""

    def __init__(self, addr: str | None = None, token: str | None = None, *, ca_file: str | None = None,
                 timeout: float = 30.0) -> None:
        addr = addr or os.environ.get("KINKO_ADDR")
        if not addr:
            raise UsageError("no server address: set KINKO_ADDR or pass addr")
        self.addr = addr.rstrip("/")
        # `token=""` means "no token" on purpose (e.g. a login call): do not fall back to the file then.
        self._token = token if token is not None else (os.environ.get("KINKO_TOKEN") or stored_token(self.addr))
        verify = tls_context(ca_file or os.environ.get("KINKO_CACERT"))
        self._http = httpx.Client(base_url=self.addr, timeout=timeout, verify=verify)

    def __repr__(self) -> str:
        return f"Client({self.addr!r})"  # never the token

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                auth: bool = True) -> Any:
        headers = {"X-Kinko-Token": self._token} if auth and self._token else {}
        try:
            response = self._http.request(method, "/v1/" + path.lstrip("/"), json=json, headers=headers,
                                          params={k: v for k, v in (params or {}).items() if v is not None})
        except httpx.HTTPError as exc:
            raise unreachable(self.addr, exc) from None
        if response.status_code >= 400:
            try:
                doc = response.json()
            except ValueError:
                doc = None
            raise error_from(response.status_code, doc)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def health(self) -> int:
        """Status code of /v1/sys/health; raises httpx errors as they are (callers poll with it)."""
        return self._http.get("/v1/sys/health").status_code

    # -- Kubernetes auth (/v1/auth/kubernetes) -----------------------------------------------------------
    def use_token(self, token: str | None) -> None:
        """Send `token` from now on (e.g. one re-read from a token file)."""
        self._token = token

    def kubernetes_login(self, role: str, jwt: str) -> dict[str, Any]:
        """The whole `auth` answer of a service-account login (client_token, accessor, lease_duration, ...)."""
        auth: dict[str, Any] = self.request("POST", "auth/kubernetes/login", json={"role": role, "jwt": jwt},
                                            auth=False)["auth"]
        self._token = str(auth["client_token"])
        return auth

    def login_kubernetes(self, role: str, jwt: str) -> str:
        """Log in with a service-account JWT; returns the kinko token and uses it for later requests."""
        return str(self.kubernetes_login(role, jwt)["client_token"])

    def configure_kubernetes_auth(self, *, issuer: str | None, jwks: str | None,
                                  pem_keys: Sequence[str] = ()) -> dict[str, Any]:
        body = {"issuer": issuer, "jwks": jwks, "pem_keys": list(pem_keys)}
        return dict(self.request("POST", "auth/kubernetes/config", json=body))

    def read_kubernetes_auth_config(self) -> dict[str, Any]:
        return dict(self.request("GET", "auth/kubernetes/config"))

    def write_kubernetes_role(self, name: str, *, service_account_names: Sequence[str], namespaces: Sequence[str],
                              audience: str | None, policies: Sequence[str], ttl: int) -> dict[str, Any]:
        body = {"service_account_names": list(service_account_names), "namespaces": list(namespaces),
                "audience": audience, "policies": list(policies), "ttl": ttl}
        return dict(self.request("POST", _role_path(name), json=body))

    def read_kubernetes_role(self, name: str) -> dict[str, Any]:
        return dict(self.request("GET", _role_path(name)))

    def list_kubernetes_roles(self) -> builtins.list[str]:
        return [str(n) for n in self.request("GET", "auth/kubernetes/role")["roles"]]

    def delete_kubernetes_role(self, name: str) -> None:
        self.request("DELETE", _role_path(name))


# -- documents -> model types ---------------------------------------------------------------------------
def _ts(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _version(doc: Mapping[str, Any]) -> VersionInfo:
    attrs = Attributes(doc["enabled"], _ts(doc["not_before"]), _ts(doc["expires"]), doc["content_type"],
                       dict(doc["tags"]))
    return VersionInfo(doc["path"], doc["version"], attrs, _ts(doc["created"]) or 0.0, _ts(doc["updated"]) or 0.0,
                       int(doc.get("key_term", 0)))


def _secret_info(doc: Mapping[str, Any]) -> SecretInfo:
    return SecretInfo(doc["path"], doc["current_version"], doc["max_versions"], _ts(doc["created"]) or 0.0,
                      _ts(doc["updated"]) or 0.0, _ts(doc.get("deleted")), _ts(doc.get("scheduled_purge")))


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


class _RemoteKeys:
    """The bits of `Vault.keys` the CLI touches, answered by the server."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def seal(self) -> None:
        self._client.request("POST", "sys/seal")

    def operator_sealed(self) -> bool:
        return False  # the server decides; a sealed server answers 503


class RemoteVault:
    """Same method names and return types as kinko.vault.Vault; the token, not `caller`, decides access."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()
        self.keys = _RemoteKeys(self.client)

    def close(self) -> None:
        self.client.close()

    # -- lifecycle --------------------------------------------------------------------------------------
    def init(self, *, seal: SealType = SealType.SHAMIR, shares: int = 5, threshold: int = 3,
             passphrase: str | None = None, key_file: Path | None = None, retention_days: int = 90,
             purge_protection: bool = False) -> InitResult:
        """`POST /v1/sys/init`: the server creates its keys; shares and root token come back once."""
        if seal is SealType.KEY_FILE:
            raise UsageError("a key-file seal is local-only: the key file would live on the server's disk; "
                             "use --seal shamir or passphrase, or init the server's vault file locally")
        doc = self.client.request("POST", "sys/init", json={
            "seal": seal.value, "shares": shares, "threshold": threshold, "passphrase": passphrase,
            "retention_days": retention_days, "purge_protection": purge_protection})
        return InitResult(str(doc["vault_id"]), str(doc["root_token"]), tuple(doc.get("shares") or ()),
                          int(doc.get("threshold") or 0))

    def status(self) -> VaultStatus:
        return VaultStatus(**self.client.request("GET", "sys/seal-status", auth=False))

    def unseal(self, *, share: str | None = None, passphrase: str | None = None,
               key_file: Path | None = None) -> VaultStatus:
        body: dict[str, Any] = ({"share": share} if share is not None else {"passphrase": passphrase}
                                if passphrase is not None else {"key_file": True})
        return VaultStatus(**self.client.request("POST", "sys/unseal", json=body, auth=False))

    def seal(self, caller: Caller) -> None:
        self.client.request("POST", "sys/seal")

    def rotate(self, caller: Caller) -> int:
        return int(self.client.request("POST", "sys/rotate")["key_term"])

    def rewrap(self, caller: Caller, batch: int = 500) -> int:
        return int(self.client.request("POST", "sys/rewrap")["rewrapped"])

    # -- secrets ----------------------------------------------------------------------------------------
    def put(self, caller: Caller, path: str, value: SecretValue, *, content_type: str = DEFAULT_CONTENT_TYPE,
            enabled: bool = True, not_before: float | None = None, expires: float | None = None,
            tags: Mapping[str, str] | None = None, cas: int | None = None,
            max_versions: int | None = None) -> VersionInfo:
        body = {**_value_body(value), "content_type": content_type, "enabled": enabled, "not_before": not_before,
                "expires": expires, "tags": dict(tags) if tags is not None else None, "cas": cas,
                "max_versions": max_versions}
        return _version(self.client.request("PUT", f"secrets/{_url_path(path)}", json=body))

    def get(self, caller: Caller, path: str, version: int | None = None) -> Secret:
        doc = self.client.request("GET", f"secrets/{_url_path(path)}", params={"version": version})
        value: SecretValue = _dec(doc["value"]) if "value" in doc else {k: _dec(v) for k, v in doc["data"].items()}
        return Secret(_version(doc), value, json.dumps(doc.get("metadata", {})).encode())

    def list(self, caller: Caller, prefix: str = "") -> Listing:
        doc = self.client.request("GET", _list_route("secrets-list", prefix))
        return Listing(doc["prefix"], tuple(doc["keys"]))

    def versions(self, caller: Caller, path: str) -> builtins.list[VersionInfo]:
        return [_version(d) for d in self.client.request("GET", f"versions/{_url_path(path)}")["versions"]]

    def update_attributes(self, caller: Caller, path: str, version: int | None = None, *,
                          enabled: bool | None = None, not_before: float | None = _UNSET,
                          expires: float | None = _UNSET, tags: Mapping[str, str] | None = None,
                          content_type: str | None = None) -> VersionInfo:
        body: dict[str, Any] = {"enabled": enabled, "tags": dict(tags) if tags is not None else None}
        for name, given in (("not_before", not_before), ("expires", expires)):
            if given is not _UNSET:
                body[name] = given
        doc = self.client.request("PATCH", f"attributes/{_url_path(path)}", json=body, params={"version": version})
        return _version(doc)

    def delete(self, caller: Caller, path: str) -> SecretInfo:
        return _secret_info(self.client.request("DELETE", f"secrets/{_url_path(path)}"))

    def list_deleted(self, caller: Caller, prefix: str = "") -> builtins.list[SecretInfo]:
        doc = self.client.request("GET", _list_route("deleted-list", prefix))
        return [_secret_info(d) for d in doc["deleted"]]

    def recover(self, caller: Caller, path: str) -> SecretInfo:
        return _secret_info(self.client.request("POST", f"recover/{_url_path(path)}"))

    def purge(self, caller: Caller, path: str) -> None:
        self.client.request("DELETE", f"deleted/{_url_path(path)}")

    def backup(self, caller: Caller, path: str) -> bytes:
        return str(self.client.request("GET", f"backup/{_url_path(path)}")["backup"]).encode("ascii")

    def restore(self, caller: Caller, blob: bytes) -> SecretInfo:
        return _secret_info(self.client.request("POST", "restore", json={"backup": blob.decode("ascii")}))

    # -- tokens, policies, audit ------------------------------------------------------------------------
    def create_token(self, caller: Caller, *, policies: Sequence[str], ttl: float | None = DEFAULT_TTL,
                     max_ttl: float | None = None, num_uses: int = 0, display_name: str = "token",
                     renewable: bool = True, metadata: Mapping[str, str] | None = None) -> tuple[str, TokenInfo]:
        doc = self.client.request("POST", "auth/token/create", json={
            "policies": list(policies), "ttl": ttl, "max_ttl": max_ttl, "num_uses": num_uses,
            "display_name": display_name, "renewable": renewable, "metadata": dict(metadata or {})})
        return str(doc.pop("token")), _token_info(doc)

    def lookup_token(self, caller: Caller, token: str | None = None, *, accessor: str | None = None) -> TokenInfo:
        if token is None and accessor is None:
            return _token_info(self.client.request("GET", "auth/token/lookup-self"))
        return _token_info(self.client.request("POST", "auth/token/lookup",
                                               json={"token": token, "accessor": accessor}))

    def renew_token(self, caller: Caller, token: str | None = None, *, accessor: str | None = None,
                    increment: float | None = None) -> TokenInfo:
        if token is None and accessor is None:  # renew-self: does not spend a use of a use-limited token
            return _token_info(self.client.request("POST", "auth/token/renew-self", json={"increment": increment}))
        return _token_info(self.client.request("POST", "auth/token/renew", json={
            "token": token, "accessor": accessor, "increment": increment}))

    def revoke_token(self, caller: Caller, token: str | None = None) -> int:
        return int(self.client.request("POST", "auth/token/revoke", json={"token": token})["revoked"])

    def revoke_accessor(self, caller: Caller, accessor: str) -> int:
        return int(self.client.request("POST", "auth/token/revoke-accessor", json={"accessor": accessor})["revoked"])

    def list_tokens(self, caller: Caller) -> builtins.list[TokenInfo]:
        return [_token_info(d) for d in self.client.request("GET", "auth/token/accessors")["tokens"]]

    def write_policy(self, caller: Caller, document: str | Mapping[str, Any], *, name: str | None = None) -> Policy:
        policy = parse_policy(document, name=name)  # validate locally first: clearer errors, no round trip
        rules = [r.to_dict() for r in policy.rules]
        return _policy(self.client.request("PUT", f"sys/policies/{quote(policy.name, safe='')}", json={"rules": rules}))

    def read_policy(self, caller: Caller, name: str) -> Policy:
        return _policy(self.client.request("GET", f"sys/policies/{quote(name, safe='')}"))

    def list_policies(self, caller: Caller) -> builtins.list[str]:
        return [str(n) for n in self.client.request("GET", "sys/policies")["policies"]]

    def delete_policy(self, caller: Caller, name: str) -> None:
        self.client.request("DELETE", f"sys/policies/{quote(name, safe='')}")

    def audit_hash(self, caller: Caller, value: bytes | str) -> str:
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        return str(self.client.request("POST", "sys/audit/hash", json={"value": text})["hash"])


    def audit_verify(self, caller: Caller, path: str | Path | None = None) -> ChainReport:
        """The server checks its own audit file (a local file is checked locally, with --vault)."""
        if path is not None:
            raise UsageError("in remote mode the server verifies its own audit file: omit FILE, or check a "
                             "local copy with --vault VAULT (or --structure-only)")
        doc = self.client.request("POST", "sys/audit/verify")
        return ChainReport(doc["first_bad_line"], doc["reason"], int(doc["keyed_records"]),
                           int(doc["unkeyed_records"]))


def _role_path(name: str) -> str:
    from kinko.access.identity import validate_role_name

    return f"auth/kubernetes/role/{validate_role_name(name)}"  # checked here: no `../` into another route


def _token_info(doc: Mapping[str, Any]) -> TokenInfo:
    return TokenInfo(doc["accessor"], tuple(doc["policies"]), doc["display_name"], dict(doc["metadata"]),
                     _ts(doc["created"]) or 0.0, _ts(doc["expires"]), _ts(doc["max_expires"]), doc["ttl"],
                     doc["renewable"], doc["num_uses"], doc["uses_left"], doc["parent"])


def _policy(doc: Mapping[str, Any]) -> Policy:
    rules = tuple(Rule(r["path"], frozenset(r["capabilities"])) for r in doc["rules"])
    return Policy(doc["name"], rules, bool(doc.get("builtin", False)))
