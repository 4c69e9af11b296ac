"""Tokens, policies and the audit salt: the vault's access-control component (owned by `Vault`).

Authorization paths (what a policy must grant):

* `sys/tokens/create` — `create` to mint tokens with a subset of your own policies; `sudo` to grant policies
  you do not hold; only the `root` policy may grant `root` or mint tokens without a TTL.
* `sys/tokens/self` — `read` / `update` / `delete` to look up, renew, revoke your own token (every token gets
  this through the implicit `default` policy).
* `sys/tokens/accessors/<accessor>` — `read` (lookup), `update` (renew), `delete` (revoke) another token;
  `sys/tokens/accessors` — `list`.
* `sys/policies/<name>` — `read`, `create` / `update` (write), `delete`; `sys/policies` — `list`.
* `sys/audit/hash` — `sudo` (an HMAC oracle for guessed values is privileged).
* `sys/audit/verify` — `sudo` (checks an audit file's keyed chain; the key itself is never exported).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kinko.access.audit import AuditLog, chain_key, hmac_value
from kinko.access.audit_chain import ChainReport, check_chain
from kinko.access.policy import (
    BUILTINS,
    ROOT,
    ROOT_CAPABILITY,
    Policy,
    parse_policy,
    validate_name,
    verified_policy,
)
from kinko.access.tokens import DEFAULT_TTL, TokenInfo, TokenManager, TokenRequest, check_request
from kinko.access.vault_hcl import translate
from kinko.core.model import Caller
from kinko.crypto.barrier import Barrier
from kinko.errors import CorruptVault, IntegrityError, InvalidInput, NotFound, PermissionDenied
from kinko.storage.interface import Store
from kinko.vault.guard import Guard
from kinko.vault.seal_state import SealState

M_AUDIT_SALT = "audit_salt"
SALT_BYTES = 32
SELF = "sys/tokens/self"


def check_audit_path(path: str | Path) -> None:
    """Create (0600) or open the audit file now and close it: a missing directory or a permission problem is
    named (AuditFailed) before a server binds, not after it says "listening"."""
    AuditLog(path, lambda: b"").close()


AuditFiles = str | Path | Sequence[str | Path]
#: Meta key: the audit chain's last link as a server last saw it (not secret), so a new file continues it.
M_AUDIT_HEAD = "audit_head"


def check_audit_structure(paths: AuditFiles, *, allow_continued: bool = False) -> ChainReport:
    """Check only the links of audit files (in order), without the vault's key: catches naive edits, not a chain
    rewritten by someone who deleted records (that needs `audit_verify`)."""
    return _read_chain(paths, None, allow_unkeyed=True, allow_continued=allow_continued)


def _read_chain(paths: AuditFiles, key: bytes | None, *, allow_unkeyed: bool, allow_continued: bool) -> ChainReport:
    try:
        return check_chain(paths, key, allow_unkeyed=allow_unkeyed, allow_continued=allow_continued)
    except OSError as exc:
        where = f" {exc.filename!r}" if exc.filename else ""
        raise InvalidInput(f"cannot read audit file{where}: {exc.strerror}") from None


def grant_capability(caller: Caller, wanted: Iterable[str], base: str = "create", *, unlimited: bool = False) -> str:
    """The capability needed to hand out `wanted` policies (tokens, Kubernetes roles): `base` for a subset of the
    caller's own, `sudo` beyond them, root-only for `root` or no expiry (no privilege escalation)."""
    asked = set(wanted)
    if ROOT in asked or unlimited:
        return ROOT_CAPABILITY
    return base if asked <= caller.policies else "sudo"


class AccessControl:
    """Token, policy and audit operations. Every one passes the guard (authorize + audit) first."""

    def __init__(self, store: Store, seal: SealState, guard: Guard, clock: Callable[[], float]) -> None:
        self._store, self._seal, self._guard = store, seal, guard
        self.tokens = TokenManager(store, clock, seal.record_mac)
        self._clock = clock
        self._salt: tuple[Barrier, bytes] | None = None  # the audit salt, for the barrier that opened it

    # -- audit ---------------------------------------------------------------------------------------------------
    def enable_audit(self, path: str | Path, *, stdout: bool = False) -> AuditLog:
        """Audit every request to `path` (JSON lines, created 0600) and optionally stdout. Fails closed."""
        head = self._store.get_meta(M_AUDIT_HEAD)
        sink = AuditLog(path, self.audit_salt, stdout=stdout, head=head.decode() if head else None,
                        on_head=lambda link: self._store.put_meta(M_AUDIT_HEAD, link.encode()))
        self._guard.audit = sink
        return sink

    def audit_salt(self) -> bytes:
        """The per-vault HMAC salt: 32 random bytes, stored sealed by the barrier (usable only unsealed)."""
        barrier = self._seal.barrier()
        cached = self._salt
        if cached is not None and cached[0] is barrier:
            return cached[1]
        aad: list[str | int] = [self._seal.vault_id(), "audit_salt"]
        stored = self._store.get_meta(M_AUDIT_SALT)
        if stored is None:
            # First use: create it; if another process wins the race, use theirs.
            fresh = barrier.seal(os.urandom(SALT_BYTES), aad)
            if not self._store.swap_meta(M_AUDIT_SALT, None, fresh):
                stored = self._store.get_meta(M_AUDIT_SALT)
            stored = stored or fresh
        try:
            salt = barrier.open(stored, aad)
        except IntegrityError:
            raise CorruptVault("the audit salt failed authentication") from None
        self._salt = (barrier, salt)
        return salt

    def forget(self) -> None:
        """Drop every key derived while unsealed: the audit salt and the audit log's chain key (on seal)."""
        self._salt = None
        self.tokens.forget()
        if isinstance(self._guard.audit, AuditLog):
            self._guard.audit.forget_key()

    def audit_hash(self, caller: Caller, value: bytes | str) -> str:
        """'hmac-sha256:<hex>' of a value, exactly as the audit log would record it."""
        self._guard.check(caller, "sudo", "sys/audit/hash", "audit.hash")
        return hmac_value(self.audit_salt(), value)

    def _policy_document(self, name: str) -> str | None:
        return verified_policy(self._store, name, self._seal.record_mac)

    def audit_verify(self, caller: Caller, paths: AuditFiles | None = None, *, allow_v1: bool = False,
                     allow_continued: bool = False) -> ChainReport:
        """Check audit files' keyed chain (default: this vault's own audit file) with the vault's chain key.

        Unkeyed (v1) records fail unless `allow_v1`; a first file that continues an earlier one fails unless
        `allow_continued` (give the files in order instead)."""
        self._guard.check(caller, "sudo", "sys/audit/verify", "audit.verify")
        if paths is None:
            paths = self._guard.audit_file
            if paths is None:
                raise InvalidInput("this vault has no audit file configured")
        return _read_chain(paths, chain_key(self.audit_salt()), allow_unkeyed=allow_v1,
                           allow_continued=allow_continued)

    # -- tokens --------------------------------------------------------------------------------------------------
    def authenticate(self, token: str, *, remote_addr: str | None = None, consume: bool = True) -> Caller:
        """The Caller a token stands for (spends one use unless `consume` is False). Any bad token:
        PermissionDenied, audited."""
        try:
            return self.tokens.authenticate(token, remote_addr, consume=consume)
        except Exception:
            self._guard.record(Caller("anonymous", remote_addr=remote_addr), "token.authenticate", SELF, "denied")
            raise

    def create_token(
        self, caller: Caller, *, policies: Sequence[str], ttl: float | None = DEFAULT_TTL,
        max_ttl: float | None = None, num_uses: int = 0, display_name: str = "token", renewable: bool = True,
        metadata: Mapping[str, str] | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new child token of the caller's token. Returns (token, info); the token is never shown again."""
        request = TokenRequest(policies if isinstance(policies, str) else list(policies), ttl, max_ttl,
                               num_uses, display_name, renewable, dict(metadata or {}))
        check_request(request)
        wanted = set(request.policies)
        for name in sorted(wanted - set(BUILTINS)):
            validate_name(name)
            if self._policy_document(name) is None:
                raise InvalidInput(f"unknown policy {name!r}")
        capability = grant_capability(caller, wanted, unlimited=ttl is None)
        self._guard.check(caller, capability, "sys/tokens/create", "token.create")
        return self.tokens.create(request, caller.accessor)

    def _target(self, caller: Caller, token: str | None, accessor: str | None, operation: str) -> tuple[str, str]:
        """(accessor, policy path) of the token an operation is about; your own token maps to sys/tokens/self.

        A token that is unknown, expired or revoked answers exactly like one the caller may not see (the same
        PermissionDenied, audited): lookup must not be an oracle for which token values are valid.
        """
        if token is not None and accessor is not None:
            raise InvalidInput("give a token or an accessor, not both")
        if token is not None:
            try:
                accessor = self.tokens.accessor_of(token)
            except NotFound:
                self._guard.record(caller, operation, "sys/tokens/accessors", "denied")
                raise PermissionDenied() from None
        elif accessor is None:
            if caller.accessor is None:
                raise InvalidInput("this caller has no token of its own; give a token or an accessor")
            accessor = caller.accessor
        if not isinstance(accessor, str) or not accessor:
            raise InvalidInput("accessor must be a non-empty string")
        return accessor, SELF if accessor == caller.accessor else f"sys/tokens/accessors/{accessor}"

    def lookup_token(self, caller: Caller, token: str | None = None, *, accessor: str | None = None) -> TokenInfo:
        target, path = self._target(caller, token, accessor, "token.lookup")
        self._guard.check(caller, "read", path, "token.lookup")
        return TokenInfo.from_row(self.tokens.row(target))

    def renew_token(self, caller: Caller, token: str | None = None, *, accessor: str | None = None,
                    increment: float | None = None) -> TokenInfo:
        target, path = self._target(caller, token, accessor, "token.renew")
        self._guard.check(caller, "update", path, "token.renew")
        return self.tokens.renew(target, increment)

    def revoke_token(self, caller: Caller, token: str | None = None) -> int:
        """Revoke a token (default: the caller's own) and all its children; returns how many were revoked."""
        target, path = self._target(caller, token, None, "token.revoke")
        self._guard.check(caller, "delete", path, "token.revoke")
        return self.tokens.revoke(target)

    def revoke_accessor(self, caller: Caller, accessor: str) -> int:
        target, path = self._target(caller, None, accessor, "token.revoke")
        self._guard.check(caller, "delete", path, "token.revoke")
        return self.tokens.revoke(target)

    def list_tokens(self, caller: Caller) -> builtins.list[TokenInfo]:
        self._guard.check(caller, "list", "sys/tokens/accessors", "token.list")
        return self.tokens.list()

    # -- policies ------------------------------------------------------------------------------------------------
    def write_policy(self, caller: Caller, document: str | Mapping[str, Any], *, name: str | None = None) -> Policy:
        """Create or replace a policy from a YAML/JSON document (or mapping). Built-ins cannot be changed."""
        # `source_hcl` is kinko's own record of a translated Vault policy: a native document never sets it
        return self._store_policy(caller, replace(parse_policy(document, name=name), source_hcl=None))

    def write_vault_policy(self, caller: Caller, name: str, text: str, mounts: Mapping[str, str]) -> Policy:
        """Create or replace a policy from a Vault ACL policy (HCL or JSON), translated onto kinko rules over the
        KV mounts `mounts` (kinko.access.vault_hcl); the text is kept with it."""
        return self._store_policy(caller, translate(text, name=name, mounts=mounts))

    def _store_policy(self, caller: Caller, policy: Policy) -> Policy:
        if policy.name in BUILTINS:
            raise InvalidInput(f"policy {policy.name!r} is built in and cannot be changed")
        exists = self._store.get_policy(policy.name) is not None
        self._guard.check(caller, "update" if exists else "create", f"sys/policies/{policy.name}", "policy.write")
        document = policy.to_yaml()
        tag = self._seal.record_mac().policy_tag(policy.name, document)
        self._store.put_policy(policy.name, document, self._clock(), tag)
        self._guard.policies_changed()
        return policy

    def read_policy(self, caller: Caller, name: str) -> Policy:
        validate_name(name)
        self._guard.check(caller, "read", f"sys/policies/{name}", "policy.read")
        if name in BUILTINS:
            return BUILTINS[name]
        document = self._policy_document(name)
        if document is None:
            raise NotFound(f"no policy named {name!r}")
        return parse_policy(document, name=name)

    def list_policies(self, caller: Caller) -> builtins.list[str]:
        self._guard.check(caller, "list", "sys/policies", "policy.list")
        stored = [n for n in self._store.list_policies() if self._policy_document(n) is not None]
        return sorted(set(BUILTINS) | set(stored))

    def delete_policy(self, caller: Caller, name: str) -> None:
        validate_name(name)
        if name in BUILTINS:
            raise InvalidInput(f"policy {name!r} is built in and cannot be deleted")
        self._guard.check(caller, "delete", f"sys/policies/{name}", "policy.delete")
        if not self._store.delete_policy(name):
            raise NotFound(f"no policy named {name!r}")
        self._guard.policies_changed()
