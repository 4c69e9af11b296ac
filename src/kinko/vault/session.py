"""`VaultSession`: every vault operation an interface uses, for one caller, the same locally and over HTTP.

A local session is `Vault.session(caller)` (the caller is bound once); `kinko.client.RemoteVault` is the same
protocol over HTTP, where the token it sends decides who the caller is. The CLI, the API routes and the delivery
paths (agent, CSI provider, `kinko run`) program against this protocol only.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from kinko.core.fingerprints import HMAC_SHA256, Fingerprint
from kinko.core.model import DEFAULT_CONTENT_TYPE, Listing, Secret, SecretInfo, SecretValue, VersionInfo
from kinko.vault.transit import DEFAULT_TYPE, KeyInfo
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


class VaultSession(Protocol):
    """One caller's view of a vault. Errors are `kinko.errors` types, the same from either side."""

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def status(self) -> VaultStatus: ...

    def init(self, *, seal: SealType = SealType.SHAMIR, shares: int = 5, threshold: int = 3,
             passphrase: str | None = None, key_file: Path | None = None,
             retention_days: int = DEFAULT_RETENTION_DAYS, purge_protection: bool = False) -> InitResult: ...

    def unseal(self, *, share: str | None = None, passphrase: str | None = None,
               key_file: Path | None = None) -> VaultStatus: ...

    def seal(self) -> None: ...

    def rotate(self) -> int: ...

    def rewrap(self, batch: int = 500) -> int: ...

    def close(self) -> None: ...

    # -- secrets -----------------------------------------------------------------------------------------------
    def put(self, path: str, value: SecretValue, *, content_type: str = DEFAULT_CONTENT_TYPE, enabled: bool = True,
            not_before: float | None = None, expires: float | None = None, tags: Mapping[str, str] | None = None,
            cas: int | None = None, max_versions: int | None = None) -> VersionInfo: ...

    def get(self, path: str, version: int | None = None) -> Secret: ...

    def list(self, prefix: str = "") -> Listing: ...

    def scan_fingerprints(
        self, prefix: str, key: bytes, algorithm: str = HMAC_SHA256
    ) -> builtins.list[Fingerprint]: ...

    def versions(self, path: str) -> builtins.list[VersionInfo]: ...

    def update_attributes(self, path: str, version: int | None = None, *, enabled: bool | None = None,
                          not_before: float | Keep | None = KEEP, expires: float | Keep | None = KEEP,
                          tags: Mapping[str, str] | None = None,
                          content_type: str | None = None) -> VersionInfo: ...

    def delete(self, path: str) -> SecretInfo: ...

    def list_deleted(self, prefix: str = "") -> builtins.list[SecretInfo]: ...

    def recover(self, path: str) -> SecretInfo: ...

    def purge(self, path: str) -> None: ...

    def backup(self, path: str) -> bytes: ...

    def restore(self, blob: bytes) -> SecretInfo: ...

    # -- tokens ------------------------------------------------------------------------------------------------
    def create_token(self, *, policies: Sequence[str], ttl: float | None = DEFAULT_TTL, max_ttl: float | None = None,
                     num_uses: int = 0, display_name: str = "token", renewable: bool = True,
                     metadata: Mapping[str, str] | None = None) -> tuple[str, TokenInfo]: ...

    def lookup_token(self, token: str | None = None, *, accessor: str | None = None) -> TokenInfo: ...

    def renew_token(self, token: str | None = None, *, accessor: str | None = None,
                    increment: float | None = None) -> TokenInfo: ...

    def revoke_token(self, token: str | None = None) -> int: ...

    def revoke_accessor(self, accessor: str) -> int: ...

    def list_tokens(self) -> builtins.list[TokenInfo]: ...

    # -- policies and audit ------------------------------------------------------------------------------------
    def write_policy(self, document: str | Mapping[str, Any], *, name: str | None = None) -> Policy: ...

    def write_vault_policy(self, name: str, text: str) -> Policy:
        """Create or replace a policy from a Vault ACL policy (HCL or JSON), translated over the server's KV
        mounts (a local vault: the default `secret` mount)."""
        ...

    def read_policy(self, name: str) -> Policy: ...

    def list_policies(self) -> builtins.list[str]: ...

    def delete_policy(self, name: str) -> None: ...

    def audit_hash(self, value: bytes | str) -> str: ...

    def audit_verify(self, paths: str | Path | Sequence[str | Path] | None = None, *, allow_v1: bool = False,
                     allow_continued: bool = False) -> ChainReport:
        """Check audit files' keyed chain, in order (a server checks only its own file: `paths` None)."""
        ...

    # -- Kubernetes auth ---------------------------------------------------------------------------------------
    def configure_kubernetes_auth(self, *, issuer: str | None, jwks: str | None,
                                  pem_keys: Sequence[str] = ()) -> KubernetesAuthConfig: ...

    def read_kubernetes_auth_config(self) -> KubernetesAuthConfig: ...

    def write_kubernetes_role(self, name: str, *, service_account_names: Sequence[str], namespaces: Sequence[str],
                              audience: str | None, policies: Sequence[str], ttl: int) -> KubernetesRole: ...

    def read_kubernetes_role(self, name: str) -> KubernetesRole: ...

    def list_kubernetes_roles(self) -> builtins.list[str]: ...

    def delete_kubernetes_role(self, name: str) -> None: ...

    def login_kubernetes(self, role: str, jwt: str) -> Login:
        """Exchange a service-account JWT for a token. Authentication, not an act of this session's caller: the
        session itself does not change who it acts as."""
        ...

    # -- named keys (Vault transit's operations; kinko.vault.keys) -----------------------------------------------
    def create_key(self, name: str, *, key_type: str = DEFAULT_TYPE, derived: bool = False,
                   exportable: bool = False) -> KeyInfo: ...

    def read_key(self, name: str) -> KeyInfo: ...

    def list_keys(self) -> builtins.list[str]: ...

    def delete_key(self, name: str) -> None: ...

    def configure_key(self, name: str, *, min_decryption_version: int | None = None,
                      min_encryption_version: int | None = None, deletion_allowed: bool | None = None,
                      exportable: bool | None = None) -> KeyInfo: ...

    def rotate_key(self, name: str) -> KeyInfo: ...

    def encrypt(self, name: str, plaintext: bytes, *, associated_data: bytes = b"",
                context: bytes | None = None) -> str: ...

    def decrypt(self, name: str, ciphertext: str, *, associated_data: bytes = b"",
                context: bytes | None = None) -> bytes: ...

    def rewrap_ciphertext(self, name: str, ciphertext: str, *, associated_data: bytes = b"",
                          context: bytes | None = None) -> str: ...

    def data_key(self, name: str, *, bits: int = 256, plaintext: bool = True) -> tuple[str, bytes | None]:
        """A new data key wrapped by `name`: (ciphertext, the key itself or None when only wrapped)."""
        ...

    def sign(self, name: str, data: bytes, *, hash_name: str = "sha2-256", signature_algorithm: str = "pss",
             prehashed: bool = False) -> str: ...

    def verify(self, name: str, data: bytes, signature: str, *, hash_name: str = "sha2-256",
               signature_algorithm: str = "pss", prehashed: bool = False) -> bool: ...
