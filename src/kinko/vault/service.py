"""The `Vault` facade: owns the components (seal state, guard, access control, Kubernetes auth, secret records)
and exposes every operation as a one-line method; `Vault.session(caller)` binds a caller for the interfaces."""

from __future__ import annotations

import builtins
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kinko.access.audit import AuditLog
from kinko.access.policy import PolicyAuthorizer
from kinko.access.vault_hcl import DEFAULT_KV_MOUNTS
from kinko.core.fingerprints import HMAC_SHA256, Fingerprint, check_key, fingerprint
from kinko.core.model import DEFAULT_CONTENT_TYPE, Caller, Listing, Secret, SecretInfo, SecretValue, VersionInfo
from kinko.errors import AuditFailed, PermissionDenied, Sealed, UnsealFailed
from kinko.storage.fresh import pinned_marker
from kinko.storage.interface import Store
from kinko.vault.access import AccessControl, AuditFiles
from kinko.vault.backups import SecretBackups
from kinko.vault.guard import AuditSink, Authorizer, Guard
from kinko.vault.keys import KeyEngine
from kinko.vault.kubernetes_auth import KubernetesAuth
from kinko.vault.kv_engine import KvEngine
from kinko.vault.local_session import LocalSession
from kinko.vault.records import SecretRecords
from kinko.vault.seal_state import SealState
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

log = logging.getLogger("kinko.vault")


class Vault:
    """Every operation: validate -> authorize + audit (guard) -> barrier -> store. Operations that act for
    someone take the `Caller`; lifecycle ones (status, unseal) and authentication itself do not."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time,
                 authorize: Authorizer | None = None, audit: AuditSink | None = None) -> None:
        self._store = store
        self._seal_state = SealState(store)
        # Default: policies stored in the vault (the local operator holds `root`, which allows everything).
        self._guard = Guard(authorize or PolicyAuthorizer(store, self._seal_state.record_mac), audit)
        self._access = AccessControl(store, self._seal_state, self._guard, clock)
        self._kubernetes = KubernetesAuth(store, self._seal_state, self._guard, self._access.tokens, clock)
        self._records = SecretRecords(store, self._seal_state, self._guard, clock)
        self._backups = SecretBackups(store, self._seal_state, self._guard, self._records)
        self._kv = KvEngine(store, self._seal_state, self._guard, self._records, clock)
        self._keys = KeyEngine(store, self._seal_state, self._guard, clock)

    @property
    def kv(self) -> KvEngine:
        """Vault KV v2 semantics over the same records (the compatibility API's engine)."""
        return self._kv

    @property
    def keys(self) -> KeyEngine:
        """Named keys, Vault transit's operations (the compatibility API's engine)."""
        return self._keys

    def session(self, caller: Caller) -> LocalSession:
        """The operations as `caller` (the interfaces' view: a `VaultSession`)."""
        return LocalSession(self, caller)

    # -- lifecycle --------------------------------------------------------------------------------------------
    def status(self) -> VaultStatus:
        return self._seal_state.status()

    @property
    def initialized(self) -> bool:
        return self._seal_state.initialized

    def operator_sealed(self) -> bool:
        """True after an operator sealed the vault, until an explicit unseal (auto-unseal stays off)."""
        return self._seal_state.operator_sealed()

    def require_unsealed(self) -> None:
        """Raise Sealed / NotInitialized unless the vault can serve secrets now."""
        self._seal_state.barrier()

    def pinned_reads(self) -> contextlib.AbstractContextManager[None]:
        """For one read-only request: the store's change marker is read once, not before every cached lookup
        (kinko.storage.fresh.pinned_marker says why that is safe)."""
        return pinned_marker(self._store)

    def init(self, *, seal: SealType = SealType.SHAMIR, shares: int = 5, threshold: int = 3,
             passphrase: str | None = None, key_file: Path | None = None,
             retention_days: int = DEFAULT_RETENTION_DAYS, purge_protection: bool = False) -> InitResult:
        return self._seal_state.init(seal=seal, shares=shares, threshold=threshold, passphrase=passphrase,
                                     key_file=key_file, retention_days=retention_days,
                                     purge_protection=purge_protection)

    def precheck_unseal(self, seal: SealType, share: str | None = None) -> None:
        """Refuse unseal material that cannot be right (malformed share, wrong method) without touching progress."""
        self._seal_state.precheck(seal, share)

    def unseal(self, *, share: str | None = None, passphrase: str | None = None, key_file: Path | None = None,
               given_at: float | None = None) -> VaultStatus:
        """Unseal with one share (progress kept until the threshold, for 10 minutes from the first), a passphrase
        or the key file. `given_at`: when a share was given (`time.monotonic()`), for workers replaying it."""
        if share is not None:
            status = self._seal_state.unseal_share(share, given_at)
        elif passphrase is not None:
            status = self._seal_state.unseal_passphrase(passphrase)
        else:
            status = self._seal_state.unseal_key_file(key_file)
        if not status.sealed:
            self._records.adopt_untagged()
        return status

    def auto_unseal(self) -> bool:
        """Unseal from the key file recorded at init unless an operator sealed the vault; True if now unsealed."""
        unsealed = self._seal_state.auto_unseal()
        if unsealed:
            self._records.adopt_untagged()
        return unsealed

    def seal(self, caller: Caller) -> None:
        """Drop every key. The emergency brake does not depend on the audit sink: an unauthorised caller is still
        refused, but an authorised seal goes ahead when its audit record cannot be written (logged instead)."""
        allowed = self._guard.allowed(caller, "sudo", "sys/seal")
        try:
            self._guard.record(caller, "seal", "sys/seal", "allowed" if allowed else "denied")
        except (AuditFailed, Sealed) as exc:
            if not allowed:
                raise
            log.error("sealing although the audit record could not be written: %s", exc.message)
        if not allowed:
            raise PermissionDenied()
        self._seal_state.seal()
        self._forget_derived()

    def drop_keys(self) -> None:
        """Forget every key and unseal progress in this process (another worker sealed); no operator marker."""
        self._seal_state.forget()
        self._forget_derived()

    def _forget_derived(self) -> None:
        self._access.forget()
        self._records.forget()
        self._kv.forget()
        self._keys.forget()

    def rotate(self, caller: Caller) -> int:
        self._guard.check(caller, "sudo", "sys/rotate", "rotate")
        return self._seal_state.rotate()

    def rewrap(self, caller: Caller, batch: int = 500) -> int:
        return self._records.rewrap(caller, batch)

    def close(self) -> None:
        self.drop_keys()
        if isinstance(self._guard.audit, AuditLog):
            self._guard.audit.close()  # keeps the chain's last link, so a file removed meanwhile shows as a gap
        self._store.close()

    # -- secrets ----------------------------------------------------------------------------------------------
    def put(self, caller: Caller, path: str, value: SecretValue, *, content_type: str = DEFAULT_CONTENT_TYPE,
            enabled: bool = True, not_before: float | None = None, expires: float | None = None,
            tags: Mapping[str, str] | None = None, cas: int | None = None,
            max_versions: int | None = None) -> VersionInfo:
        """Write a new version. `cas`: expected current version (0 = must not exist)."""
        return self._records.put(caller, path, value, content_type=content_type, enabled=enabled,
                                 not_before=not_before, expires=expires, tags=tags, cas=cas,
                                 max_versions=max_versions)

    def get(self, caller: Caller, path: str, version: int | None = None) -> Secret:
        return self._records.get(caller, path, version)

    def info(self, caller: Caller, path: str) -> SecretInfo:
        return self._records.info(caller, path)

    def scan_fingerprints(
        self, caller: Caller, prefix: str, key: bytes, algorithm: str = HMAC_SHA256
    ) -> builtins.list[Fingerprint]:
        """Keyed fingerprints (`kinko.core.fingerprints`) of the current value of every secret under `prefix` the
        caller holds `scan` on (each field of a multi-field secret on its own, as `path#field`); never a value."""
        check_key(key, algorithm)
        found: builtins.list[Fingerprint] = []
        for path, value in self._records.scan_values(caller, prefix):
            parts = [(path, value)] if isinstance(value, bytes) else [(f"{path}#{k}", v) for k, v in value.items()]
            found += [fp for name, raw in parts if (fp := fingerprint(key, name, raw, algorithm)) is not None]
        return found

    def list(self, caller: Caller, prefix: str = "") -> Listing:
        """Direct children of `prefix`: secret names, and folders ending in '/'."""
        return self._records.list(caller, prefix)

    def versions(self, caller: Caller, path: str) -> builtins.list[VersionInfo]:
        return self._records.versions(caller, path)

    def update_attributes(self, caller: Caller, path: str, version: int | None = None, *,
                          enabled: bool | None = None, not_before: float | Keep | None = KEEP,
                          expires: float | Keep | None = KEEP, tags: Mapping[str, str] | None = None,
                          content_type: str | None = None) -> VersionInfo:
        """Change a version's attributes (not its value); KEEP (the default) keeps the current value."""
        return self._records.update_attributes(caller, path, version, enabled=enabled, not_before=not_before,
                                               expires=expires, tags=tags, content_type=content_type)

    def delete(self, caller: Caller, path: str) -> SecretInfo:
        """Soft delete: recoverable until the retention period ends."""
        return self._records.delete(caller, path)

    def list_deleted(self, caller: Caller, prefix: str = "") -> builtins.list[SecretInfo]:
        return self._records.list_deleted(caller, prefix)

    def recover(self, caller: Caller, path: str) -> SecretInfo:
        return self._records.recover(caller, path)

    def purge(self, caller: Caller, path: str) -> None:
        self._records.purge(caller, path)

    def backup(self, caller: Caller, path: str) -> bytes:
        """All versions of a secret as an encrypted blob that only this vault can restore."""
        return self._backups.backup(caller, path)

    def restore(self, caller: Caller, blob: bytes) -> SecretInfo:
        return self._backups.restore(caller, blob)

    # -- tokens -----------------------------------------------------------------------------------------------
    def authenticate(self, token: str, *, remote_addr: str | None = None, consume: bool = True) -> Caller:
        """The Caller a token stands for; spends one use of a use-limited token unless `consume` is False (its
        self-lookup and self-renewal). Any bad token: PermissionDenied, audited."""
        return self._access.authenticate(token, remote_addr=remote_addr, consume=consume)

    def create_token(self, caller: Caller, *, policies: Sequence[str], ttl: float | None = DEFAULT_TTL,
                     max_ttl: float | None = None, num_uses: int = 0, display_name: str = "token",
                     renewable: bool = True, metadata: Mapping[str, str] | None = None) -> tuple[str, TokenInfo]:
        """A new child token of the caller's token. Returns (token, info); the token is never shown again."""
        return self._access.create_token(caller, policies=policies, ttl=ttl, max_ttl=max_ttl, num_uses=num_uses,
                                         display_name=display_name, renewable=renewable, metadata=metadata)

    def lookup_token(self, caller: Caller, token: str | None = None, *, accessor: str | None = None) -> TokenInfo:
        return self._access.lookup_token(caller, token, accessor=accessor)

    def renew_token(self, caller: Caller, token: str | None = None, *, accessor: str | None = None,
                    increment: float | None = None) -> TokenInfo:
        return self._access.renew_token(caller, token, accessor=accessor, increment=increment)

    def revoke_token(self, caller: Caller, token: str | None = None) -> int:
        """Revoke a token (default: the caller's own) and all its children; returns how many were revoked."""
        return self._access.revoke_token(caller, token)

    def revoke_accessor(self, caller: Caller, accessor: str) -> int:
        return self._access.revoke_accessor(caller, accessor)

    def list_tokens(self, caller: Caller) -> builtins.list[TokenInfo]:
        return self._access.list_tokens(caller)

    # -- policies and audit -----------------------------------------------------------------------------------
    def write_policy(self, caller: Caller, document: str | Mapping[str, Any], *, name: str | None = None) -> Policy:
        """Create or replace a policy from a YAML/JSON document (or mapping). Built-ins cannot be changed."""
        return self._access.write_policy(caller, document, name=name)

    def write_vault_policy(self, caller: Caller, name: str, text: str,
                           mounts: Mapping[str, str] = DEFAULT_KV_MOUNTS) -> Policy:
        """Create or replace a policy from a Vault ACL policy (HCL or JSON) over the KV mounts `mounts`."""
        return self._access.write_vault_policy(caller, name, text, mounts)

    def read_policy(self, caller: Caller, name: str) -> Policy:
        return self._access.read_policy(caller, name)

    def list_policies(self, caller: Caller) -> builtins.list[str]:
        return self._access.list_policies(caller)

    def delete_policy(self, caller: Caller, name: str) -> None:
        self._access.delete_policy(caller, name)

    def enable_audit(self, path: str | Path, *, stdout: bool = False) -> AuditLog:
        """Audit every request to `path` (JSON lines, created 0600) and optionally stdout. Fails closed."""
        return self._access.enable_audit(path, stdout=stdout)

    def audit_hash(self, caller: Caller, value: bytes | str) -> str:
        """'hmac-sha256:<hex>' of a value, exactly as the audit log would record it."""
        return self._access.audit_hash(caller, value)

    def audit_verify(self, caller: Caller, paths: AuditFiles | None = None, *, allow_v1: bool = False,
                     allow_continued: bool = False) -> ChainReport:
        """Check audit files' keyed chain, in order (default: this vault's own file) with the vault's chain key."""
        return self._access.audit_verify(caller, paths, allow_v1=allow_v1, allow_continued=allow_continued)

    def check(self, caller: Caller, capability: str, path: str, operation: str) -> None:
        """Authorize and audit an operation an interface answers itself (e.g. the Vault API's mount table)."""
        self._guard.check(caller, capability, path, operation)

    def record_request(self, caller: Caller, operation: str, path: str, outcome: str) -> None:
        """Audit an API request that no operation recorded (refused before reaching one: no token, a body that
        does not validate, an unknown route). Raises AuditFailed / Sealed like every audit write."""
        self._guard.record(caller, operation, path, outcome)

    def record_unseal(self, client: str, method: str, outcome: str) -> None:
        """Audit an unseal attempt (method and outcome only, never the material).

        Best effort by design: while sealed the audit sink cannot HMAC (its salt is behind the barrier), and
        refusing unseals because nothing can be audited would make a vault with an audit log impossible to unseal.
        """
        with contextlib.suppress(Sealed):
            self._guard.record(Caller("anonymous", remote_addr=client), "sys.unseal", f"sys/unseal/{method}",
                               outcome)

    # -- Kubernetes auth --------------------------------------------------------------------------------------
    def configure_kubernetes_auth(self, caller: Caller, *, issuer: str | None, jwks: str | None,
                                  pem_keys: Sequence[str] = ()) -> KubernetesAuthConfig:
        """Set the expected issuer and the public keys service-account tokens are verified against."""
        return self._kubernetes.configure(caller, issuer=issuer, jwks=jwks, pem_keys=pem_keys)

    def read_kubernetes_auth_config(self, caller: Caller) -> KubernetesAuthConfig:
        return self._kubernetes.read_config(caller)

    def write_kubernetes_role(self, caller: Caller, name: str, *, service_account_names: Sequence[str],
                              namespaces: Sequence[str], audience: str | None, policies: Sequence[str],
                              ttl: int) -> KubernetesRole:
        return self._kubernetes.write_role(caller, name, service_account_names=service_account_names,
                                           namespaces=namespaces, audience=audience, policies=policies, ttl=ttl)

    def read_kubernetes_role(self, caller: Caller, name: str) -> KubernetesRole:
        return self._kubernetes.read_role(caller, name)

    def list_kubernetes_roles(self, caller: Caller) -> builtins.list[str]:
        return self._kubernetes.list_roles(caller)

    def delete_kubernetes_role(self, caller: Caller, name: str) -> None:
        """Delete a role (tokens it already issued live on until they expire or are revoked)."""
        self._kubernetes.delete_role(caller, name)

    def login_kubernetes(self, role: str, jwt: str, *, remote_addr: str | None = None) -> Login:
        """Exchange a service-account JWT for a kinko token with the role's policies and TTL (no caller: this
        is authentication). Every failure is the same PermissionDenied; the reason goes to the audit log only."""
        return self._kubernetes.login(role, jwt, remote_addr=remote_addr)


def open_vault(location: str | Path, *, create: bool = False, clock: Callable[[], float] = time.time,
               authorize: Authorizer | None = None, audit: AuditSink | None = None) -> Vault:
    """Open (or create) a vault: a SQLite file (a path, or `sqlite:PATH`) or a PostgreSQL URL
    (`postgresql://user@host/db?passfile=...`); auto-unseals when it was initialised with a key file."""
    from kinko.storage.location import open_store

    vault = Vault(open_store(location, create=create), clock=clock, authorize=authorize, audit=audit)
    # A missing or bad key file leaves the vault sealed: status still works, secret operations say "sealed".
    with contextlib.suppress(UnsealFailed):
        vault.auto_unseal()
    return vault

