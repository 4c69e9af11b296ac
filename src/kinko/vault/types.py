"""Every value type an interface needs from the vault: defined here, or re-exported from the layer that owns it.

Interfaces (cli, api, deliver) and the HTTP client import these from `kinko.vault`, never from access/, crypto/
or storage/ directly, so the internals can change shape without touching them.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinko.access.audit_chain import ChainReport
from kinko.access.identity import KubernetesAuthConfig, KubernetesRole
from kinko.access.policy import Policy, Rule
from kinko.access.tokens import DEFAULT_TTL, TokenInfo
from kinko.access.tokens import ROOT_PREFIX as ROOT_TOKEN_PREFIX
from kinko.crypto.seal import SealType

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_TTL",
    "KEEP",
    "MAX_RETENTION_DAYS",
    "MIN_RETENTION_DAYS",
    "ROOT_TOKEN_PREFIX",
    "ChainReport",
    "InitResult",
    "Keep",
    "KubernetesAuthConfig",
    "KubernetesRole",
    "Login",
    "Policy",
    "RetentionSettings",
    "Rule",
    "SealType",
    "TokenInfo",
    "VaultStatus",
]

MIN_RETENTION_DAYS, MAX_RETENTION_DAYS, DEFAULT_RETENTION_DAYS = 7, 90, 90


class Keep(enum.Enum):
    """The default of an optional attribute change: keep the current value (None means clear it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class RetentionSettings:
    """Soft-delete settings fixed at init: how long a deleted secret stays recoverable, and purge protection."""

    retention_days: int = DEFAULT_RETENTION_DAYS
    purge_protection: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps({"retention_days": self.retention_days,
                           "purge_protection": self.purge_protection}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> RetentionSettings:
        doc = json.loads(raw)
        return cls(int(doc["retention_days"]), bool(doc["purge_protection"]))


@dataclass(frozen=True)
class InitResult:
    """Shown to the operator exactly once; nothing here is stored in plaintext."""

    vault_id: str
    root_token: str = field(repr=False)
    shares: tuple[str, ...] = field(default=(), repr=False)
    threshold: int = 0
    key_file: Path | None = None


@dataclass(frozen=True)
class VaultStatus:
    """Seal state and settings as anyone may see them (`sys/seal-status`).

    `operator_sealed` is known only for a local vault file (None from a server): True after `kinko operator
    seal` until an explicit unseal, while auto-unseal stays off.
    """

    initialized: bool
    sealed: bool
    seal_type: str | None = None
    shares: int = 0
    threshold: int = 0
    progress: int = 0
    key_term: int | None = None
    vault_id: str | None = None
    retention_days: int | None = None
    purge_protection: bool | None = None
    operator_sealed: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = dict(self.__dict__)
        if self.operator_sealed is None:
            del doc["operator_sealed"]
        return doc


@dataclass(frozen=True)
class Login:
    """What a login (Kubernetes service-account JWT) gives: a token and what it may do, Vault's `auth` shape."""

    token: str = field(repr=False)
    accessor: str
    policies: tuple[str, ...]
    metadata: dict[str, str]
    lease_duration: int  # seconds the token lives (0: no expiry)
    renewable: bool

    def to_auth(self) -> dict[str, Any]:
        """Vault's `auth` object (client_token, accessor, policies, token_policies, ..., lease_duration)."""
        policies = sorted({"default", *self.policies}) if "root" not in self.policies else ["root"]
        return {"client_token": self.token, "accessor": self.accessor, "policies": policies,
                "token_policies": policies, "metadata": dict(self.metadata),
                "lease_duration": self.lease_duration, "renewable": self.renewable}

    @classmethod
    def from_auth(cls, auth: dict[str, Any]) -> Login:
        explicit = tuple(p for p in auth["policies"] if p != "default")  # to_auth adds the implicit one
        return cls(str(auth["client_token"]), str(auth["accessor"]), explicit,
                   dict(auth.get("metadata") or {}), int(auth.get("lease_duration") or 0),
                   bool(auth.get("renewable", False)))
