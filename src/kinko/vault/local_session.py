"""`LocalSession`: the `VaultSession` protocol over a local `Vault`, with the caller bound once."""

from __future__ import annotations

import base64
import builtins
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kinko.core.fingerprints import HMAC_SHA256, Fingerprint
from kinko.core.model import DEFAULT_CONTENT_TYPE, Caller, Listing, Secret, SecretInfo, SecretValue, VersionInfo
from kinko.vault.session import VaultSession
from kinko.vault.transit import DEFAULT_TYPE, KeyInfo, single
from kinko.vault.types import (
    DEFAULT_RETENTION_DAYS,
    DEFAULT_TTL,
    KEEP,
    ChainReport,
    InitResult,
    Keep,
    KubernetesAuthConfig,
    KubernetesRole,
    Login,
    Policy,
    SealType,
    TokenInfo,
    VaultStatus,
)

if TYPE_CHECKING:
    from kinko.vault.service import Vault


class LocalSession:
    """`VaultSession` over a local `Vault`, for one caller (see kinko.vault.session for the contract)."""

    __slots__ = ("_caller", "_vault")

    def __init__(self, vault: Vault, caller: Caller) -> None:
        self._vault, self._caller = vault, caller

    @property
    def caller(self) -> Caller:
        return self._caller

    def status(self) -> VaultStatus:
        """The vault's status, with whether an operator sealed it (known only locally)."""
        return replace(self._vault.status(), operator_sealed=self._vault.operator_sealed())

    def init(self, *, seal: SealType = SealType.SHAMIR, shares: int = 5, threshold: int = 3,
             passphrase: str | None = None, key_file: Path | None = None,
             retention_days: int = DEFAULT_RETENTION_DAYS, purge_protection: bool = False) -> InitResult:
        return self._vault.init(seal=seal, shares=shares, threshold=threshold, passphrase=passphrase,
                                key_file=key_file, retention_days=retention_days, purge_protection=purge_protection)

    def unseal(self, *, share: str | None = None, passphrase: str | None = None,
               key_file: Path | None = None) -> VaultStatus:
        return self._vault.unseal(share=share, passphrase=passphrase, key_file=key_file)

    def seal(self) -> None:
        self._vault.seal(self._caller)

    def rotate(self) -> int:
        return self._vault.rotate(self._caller)

    def rewrap(self, batch: int = 500) -> int:
        return self._vault.rewrap(self._caller, batch)

    def close(self) -> None:
        self._vault.close()

    def put(self, path: str, value: SecretValue, *, content_type: str = DEFAULT_CONTENT_TYPE, enabled: bool = True,
            not_before: float | None = None, expires: float | None = None, tags: Mapping[str, str] | None = None,
            cas: int | None = None, max_versions: int | None = None) -> VersionInfo:
        return self._vault.put(self._caller, path, value, content_type=content_type, enabled=enabled,
                               not_before=not_before, expires=expires, tags=tags, cas=cas, max_versions=max_versions)

    def get(self, path: str, version: int | None = None) -> Secret:
        return self._vault.get(self._caller, path, version)

    def list(self, prefix: str = "") -> Listing:
        return self._vault.list(self._caller, prefix)

    def scan_fingerprints(
        self, prefix: str, key: bytes, algorithm: str = HMAC_SHA256
    ) -> builtins.list[Fingerprint]:
        return self._vault.scan_fingerprints(self._caller, prefix, key, algorithm)

    def versions(self, path: str) -> builtins.list[VersionInfo]:
        return self._vault.versions(self._caller, path)

    def update_attributes(self, path: str, version: int | None = None, *, enabled: bool | None = None,
                          not_before: float | Keep | None = KEEP, expires: float | Keep | None = KEEP,
                          tags: Mapping[str, str] | None = None, content_type: str | None = None) -> VersionInfo:
        return self._vault.update_attributes(self._caller, path, version, enabled=enabled, not_before=not_before,
                                             expires=expires, tags=tags, content_type=content_type)

    def delete(self, path: str) -> SecretInfo:
        return self._vault.delete(self._caller, path)

    def list_deleted(self, prefix: str = "") -> builtins.list[SecretInfo]:
        return self._vault.list_deleted(self._caller, prefix)

    def recover(self, path: str) -> SecretInfo:
        return self._vault.recover(self._caller, path)

    def purge(self, path: str) -> None:
        self._vault.purge(self._caller, path)

    def backup(self, path: str) -> bytes:
        return self._vault.backup(self._caller, path)

    def restore(self, blob: bytes) -> SecretInfo:
        return self._vault.restore(self._caller, blob)

    def create_token(self, *, policies: Sequence[str], ttl: float | None = DEFAULT_TTL, max_ttl: float | None = None,
                     num_uses: int = 0, display_name: str = "token", renewable: bool = True,
                     metadata: Mapping[str, str] | None = None) -> tuple[str, TokenInfo]:
        return self._vault.create_token(self._caller, policies=policies, ttl=ttl, max_ttl=max_ttl, num_uses=num_uses,
                                        display_name=display_name, renewable=renewable, metadata=metadata)

    def lookup_token(self, token: str | None = None, *, accessor: str | None = None) -> TokenInfo:
        return self._vault.lookup_token(self._caller, token, accessor=accessor)

    def renew_token(self, token: str | None = None, *, accessor: str | None = None,
                    increment: float | None = None) -> TokenInfo:
        return self._vault.renew_token(self._caller, token, accessor=accessor, increment=increment)

    def revoke_token(self, token: str | None = None) -> int:
        return self._vault.revoke_token(self._caller, token)

    def revoke_accessor(self, accessor: str) -> int:
        return self._vault.revoke_accessor(self._caller, accessor)

    def list_tokens(self) -> builtins.list[TokenInfo]:
        return self._vault.list_tokens(self._caller)

    def write_policy(self, document: str | Mapping[str, Any], *, name: str | None = None) -> Policy:
        return self._vault.write_policy(self._caller, document, name=name)

    def write_vault_policy(self, name: str, text: str) -> Policy:
        return self._vault.write_vault_policy(self._caller, name, text)

    def read_policy(self, name: str) -> Policy:
        return self._vault.read_policy(self._caller, name)

    def list_policies(self) -> builtins.list[str]:
        return self._vault.list_policies(self._caller)

    def delete_policy(self, name: str) -> None:
        self._vault.delete_policy(self._caller, name)

    def audit_hash(self, value: bytes | str) -> str:
        return self._vault.audit_hash(self._caller, value)

    def audit_verify(self, paths: str | Path | Sequence[str | Path] | None = None, *, allow_v1: bool = False,
                     allow_continued: bool = False) -> ChainReport:
        return self._vault.audit_verify(self._caller, paths, allow_v1=allow_v1, allow_continued=allow_continued)

    def configure_kubernetes_auth(self, *, issuer: str | None, jwks: str | None,
                                  pem_keys: Sequence[str] = ()) -> KubernetesAuthConfig:
        return self._vault.configure_kubernetes_auth(self._caller, issuer=issuer, jwks=jwks, pem_keys=pem_keys)

    def read_kubernetes_auth_config(self) -> KubernetesAuthConfig:
        return self._vault.read_kubernetes_auth_config(self._caller)

    def write_kubernetes_role(self, name: str, *, service_account_names: Sequence[str], namespaces: Sequence[str],
                              audience: str | None, policies: Sequence[str], ttl: int) -> KubernetesRole:
        return self._vault.write_kubernetes_role(self._caller, name, service_account_names=service_account_names,
                                                 namespaces=namespaces, audience=audience, policies=policies, ttl=ttl)

    def read_kubernetes_role(self, name: str) -> KubernetesRole:
        return self._vault.read_kubernetes_role(self._caller, name)

    def list_kubernetes_roles(self) -> builtins.list[str]:
        return self._vault.list_kubernetes_roles(self._caller)

    def delete_kubernetes_role(self, name: str) -> None:
        self._vault.delete_kubernetes_role(self._caller, name)

    def login_kubernetes(self, role: str, jwt: str) -> Login:
        return self._vault.login_kubernetes(role, jwt, remote_addr=self._caller.remote_addr)


    # -- named keys --------------------------------------------------------------------------------------------
    def create_key(self, name: str, *, key_type: str = DEFAULT_TYPE, derived: bool = False,
                   exportable: bool = False) -> KeyInfo:
        return self._vault.keys.create(self._caller, name, key_type=key_type, derived=derived, exportable=exportable)

    def read_key(self, name: str) -> KeyInfo:
        return self._vault.keys.read(self._caller, name)

    def list_keys(self) -> builtins.list[str]:
        return self._vault.keys.names(self._caller)

    def delete_key(self, name: str) -> None:
        self._vault.keys.delete(self._caller, name)

    def configure_key(self, name: str, *, min_decryption_version: int | None = None,
                      min_encryption_version: int | None = None, deletion_allowed: bool | None = None,
                      exportable: bool | None = None) -> KeyInfo:
        return self._vault.keys.configure(self._caller, name, min_decryption_version=min_decryption_version,
                                          min_encryption_version=min_encryption_version,
                                          deletion_allowed=deletion_allowed, exportable=exportable)

    def rotate_key(self, name: str) -> KeyInfo:
        return self._vault.keys.rotate(self._caller, name)

    def encrypt(self, name: str, plaintext: bytes, *, associated_data: bytes = b"",
                context: bytes | None = None) -> str:
        item = _item(associated_data, context, plaintext=_b64(plaintext))
        return str(single(self._vault.keys.encrypt(self._caller, name, [item]))["ciphertext"])

    def decrypt(self, name: str, ciphertext: str, *, associated_data: bytes = b"",
                context: bytes | None = None) -> bytes:
        item = _item(associated_data, context, ciphertext=ciphertext)
        return base64.b64decode(single(self._vault.keys.decrypt(self._caller, name, [item]))["plaintext"])

    def rewrap_ciphertext(self, name: str, ciphertext: str, *, associated_data: bytes = b"",
                          context: bytes | None = None) -> str:
        item = _item(associated_data, context, ciphertext=ciphertext)
        return str(single(self._vault.keys.rewrap(self._caller, name, [item]))["ciphertext"])

    def data_key(self, name: str, *, bits: int = 256, plaintext: bool = True) -> tuple[str, bytes | None]:
        result = self._vault.keys.datakey(self._caller, name, plaintext=plaintext, bits=bits)
        return str(result["ciphertext"]), base64.b64decode(result["plaintext"]) if plaintext else None

    def sign(self, name: str, data: bytes, *, hash_name: str = "sha2-256", signature_algorithm: str = "pss",
             prehashed: bool = False) -> str:
        outcomes = self._vault.keys.sign(self._caller, name, [{"input": _b64(data)}], hash_name=hash_name,
                                         signature_algorithm=signature_algorithm, prehashed=prehashed)
        return str(single(outcomes)["signature"])

    def verify(self, name: str, data: bytes, signature: str, *, hash_name: str = "sha2-256",
               signature_algorithm: str = "pss", prehashed: bool = False) -> bool:
        outcomes = self._vault.keys.verify(self._caller, name, [{"input": _b64(data), "signature": signature}],
                                           hash_name=hash_name, signature_algorithm=signature_algorithm,
                                           prehashed=prehashed)
        return bool(single(outcomes)["valid"])


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _item(associated_data: bytes, context: bytes | None, **fields: str) -> dict[str, str]:
    if associated_data:
        fields["associated_data"] = _b64(associated_data)
    if context is not None:
        fields["context"] = _b64(context)
    return fields


if TYPE_CHECKING:  # mypy proves here that LocalSession implements the whole VaultSession protocol
    _LOCAL_SESSION_IS_A_SESSION: type[VaultSession] = LocalSession
