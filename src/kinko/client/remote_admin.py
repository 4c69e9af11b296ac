"""The operator side of `RemoteVault` over HTTP: seal lifecycle, tokens, policies, audit and Kubernetes auth.

`AdminCalls` is mixed into `RemoteVault` (the one public class); it uses nothing of it but `client`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kinko.access.identity import validate_role_name
from kinko.access.policy import parse_policy
from kinko.client.http import Client
from kinko.errors import UsageError
from kinko.vault.types import (
    DEFAULT_TTL,
    ChainReport,
    InitResult,
    KubernetesAuthConfig,
    KubernetesRole,
    Login,
    Policy,
    Rule,
    SealType,
    TokenInfo,
    VaultStatus,
)


class AdminCalls:
    """`RemoteVault`'s lifecycle, token, policy, audit and Kubernetes auth operations (mixed into it)."""

    client: Client

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
        return _status(self.client.request("GET", "sys/seal-status", auth=False))

    def unseal(self, *, share: str | None = None, passphrase: str | None = None,
               key_file: Path | None = None) -> VaultStatus:
        body: dict[str, Any] = ({"share": share} if share is not None else {"passphrase": passphrase}
                                if passphrase is not None else {"key_file": True})
        return _status(self.client.request("POST", "sys/unseal", json=body, auth=False))

    def seal(self) -> None:
        self.client.request("POST", "sys/seal")

    def rotate(self) -> int:
        return int(self.client.request("POST", "sys/rotate")["key_term"])

    def rewrap(self, batch: int = 500) -> int:
        """The server re-encrypts in its own batches (`batch` applies to a local vault only)."""
        return int(self.client.request("POST", "sys/rewrap")["rewrapped"])

    # -- tokens, policies, audit ------------------------------------------------------------------------
    def create_token(self, *, policies: Sequence[str], ttl: float | None = DEFAULT_TTL,
                     max_ttl: float | None = None, num_uses: int = 0, display_name: str = "token",
                     renewable: bool = True, metadata: Mapping[str, str] | None = None) -> tuple[str, TokenInfo]:
        doc = self.client.request("POST", "auth/token/create", json={
            "policies": list(policies), "ttl": ttl, "max_ttl": max_ttl, "num_uses": num_uses,
            "display_name": display_name, "renewable": renewable, "metadata": dict(metadata or {})})
        return str(doc.pop("token")), _token_info(doc)

    def lookup_token(self, token: str | None = None, *, accessor: str | None = None) -> TokenInfo:
        if token is None and accessor is None:
            return _token_info(self.client.request("GET", "auth/token/lookup-self"))
        return _token_info(self.client.request("POST", "auth/token/lookup",
                                               json={"token": token, "accessor": accessor}))

    def renew_token(self, token: str | None = None, *, accessor: str | None = None,
                    increment: float | None = None) -> TokenInfo:
        if token is None and accessor is None:  # renew-self: does not spend a use of a use-limited token
            return _token_info(self.client.request("POST", "auth/token/renew-self", json={"increment": increment}))
        return _token_info(self.client.request("POST", "auth/token/renew", json={
            "token": token, "accessor": accessor, "increment": increment}))

    def revoke_token(self, token: str | None = None) -> int:
        return int(self.client.request("POST", "auth/token/revoke", json={"token": token})["revoked"])

    def revoke_accessor(self, accessor: str) -> int:
        return int(self.client.request("POST", "auth/token/revoke-accessor", json={"accessor": accessor})["revoked"])

    def list_tokens(self) -> list[TokenInfo]:
        return [_token_info(d) for d in self.client.request("GET", "auth/token/accessors")["tokens"]]

    def write_policy(self, document: str | Mapping[str, Any], *, name: str | None = None) -> Policy:
        policy = parse_policy(document, name=name)  # validate locally first: clearer errors, no round trip
        rules = [r.to_dict() for r in policy.rules]
        return _policy(self.client.request("PUT", f"sys/policies/{quote(policy.name, safe='')}", json={"rules": rules}))

    def write_vault_policy(self, name: str, text: str) -> Policy:
        """Sent as written: the server translates it over its own KV mounts."""
        return _policy(self.client.request("PUT", f"sys/policies/{quote(name, safe='')}", json={"hcl": text}))

    def read_policy(self, name: str) -> Policy:
        return _policy(self.client.request("GET", f"sys/policies/{quote(name, safe='')}"))

    def list_policies(self) -> list[str]:
        return [str(n) for n in self.client.request("GET", "sys/policies")["policies"]]

    def delete_policy(self, name: str) -> None:
        self.client.request("DELETE", f"sys/policies/{quote(name, safe='')}")

    def audit_hash(self, value: bytes | str) -> str:
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        return str(self.client.request("POST", "sys/audit/hash", json={"value": text})["hash"])

    def audit_verify(self, paths: str | Path | Sequence[str | Path] | None = None, *, allow_v1: bool = False,
                     allow_continued: bool = False) -> ChainReport:
        """The server checks its own audit file (a local file is checked locally, with --vault)."""
        if paths is not None:
            raise UsageError("in remote mode the server verifies its own audit file: omit FILE, or check a "
                             "local copy with --vault VAULT (or --structure-only)")
        doc = self.client.request("POST", "sys/audit/verify",
                                  json={"allow_v1": allow_v1, "allow_continued": allow_continued})
        return ChainReport(doc["first_bad_line"], doc["reason"], int(doc["keyed_records"]),
                           int(doc["unkeyed_records"]), doc.get("bad_file"), doc.get("continues_from"))

    # -- Kubernetes auth (/v1/auth/kubernetes) ----------------------------------------------------------
    def login_kubernetes(self, role: str, jwt: str) -> Login:
        """Log in with a service-account JWT (sent without this session's token). The session keeps acting with
        its own token; `use_token(login.token)` switches it to the new one."""
        return Login.from_auth(self.client.request("POST", "auth/kubernetes/login",
                                                   json={"role": role, "jwt": jwt}, auth=False)["auth"])

    def configure_kubernetes_auth(self, *, issuer: str | None, jwks: str | None,
                                  pem_keys: Sequence[str] = ()) -> KubernetesAuthConfig:
        body = {"issuer": issuer, "jwks": jwks, "pem_keys": list(pem_keys)}
        return KubernetesAuthConfig.from_dict(self.client.request("POST", "auth/kubernetes/config", json=body))

    def read_kubernetes_auth_config(self) -> KubernetesAuthConfig:
        return KubernetesAuthConfig.from_dict(self.client.request("GET", "auth/kubernetes/config"))

    def write_kubernetes_role(self, name: str, *, service_account_names: Sequence[str], namespaces: Sequence[str],
                              audience: str | None, policies: Sequence[str], ttl: int) -> KubernetesRole:
        body = {"service_account_names": list(service_account_names), "namespaces": list(namespaces),
                "audience": audience, "policies": list(policies), "ttl": ttl}
        return KubernetesRole.from_dict(self.client.request("POST", _role_path(name), json=body))

    def read_kubernetes_role(self, name: str) -> KubernetesRole:
        return KubernetesRole.from_dict(self.client.request("GET", _role_path(name)))

    def list_kubernetes_roles(self) -> list[str]:
        return [str(n) for n in self.client.request("GET", "auth/kubernetes/role")["roles"]]

    def delete_kubernetes_role(self, name: str) -> None:
        self.client.request("DELETE", _role_path(name))


def _role_path(name: str) -> str:
    return f"auth/kubernetes/role/{validate_role_name(name)}"  # checked here: no `../` into another route


def _token_info(doc: Mapping[str, Any]) -> TokenInfo:
    return TokenInfo(doc["accessor"], tuple(doc["policies"]), doc["display_name"], dict(doc["metadata"]),
                     api_time(doc["created"]) or 0.0, api_time(doc["expires"]), api_time(doc["max_expires"]),
                     doc["ttl"], doc["renewable"], doc["num_uses"], doc["uses_left"], doc["parent"])


def _status(doc: Mapping[str, Any]) -> VaultStatus:
    return VaultStatus(**{k: v for k, v in doc.items() if k in _STATUS_FIELDS})


_STATUS_FIELDS = frozenset(VaultStatus.__dataclass_fields__) - {"operator_sealed"}  # local-only knowledge


def _policy(doc: Mapping[str, Any]) -> Policy:
    rules = tuple(Rule(r["path"], frozenset(r["capabilities"])) for r in doc["rules"])
    source = doc.get("source_hcl")
    return Policy(doc["name"], rules, bool(doc.get("builtin", False)), source if isinstance(source, str) else None)


def api_time(text: str | None) -> float | None:
    """A time in an API document (ISO 8601, `Z` for UTC) as a POSIX timestamp; None stays None."""
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
