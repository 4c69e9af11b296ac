"""The vault service: `Vault` (one vault, every operation checked and audited), `open_vault`, and the
`VaultSession` protocol the interfaces use — a local `Vault.session(caller)` or `kinko.client.RemoteVault`.

Everything an interface needs is exported here; access/, crypto/ and storage/ are internal to this package.
"""

from kinko.access.audit import RequestScope, current_request, request_context
from kinko.access.policy import parse_policy
from kinko.access.vault_hcl import DEFAULT_KV_MOUNTS
from kinko.access.vault_hcl import translate as translate_vault_policy
from kinko.access.vault_hcl_parse import looks_like_vault_policy
from kinko.core.model import Caller
from kinko.vault.access import check_audit_path, check_audit_structure
from kinko.vault.kv import KvEntry, KvMetadata, KvSettings, KvVersion, LatestVersionGone, subkeys
from kinko.vault.local_session import LocalSession
from kinko.vault.migrate import DEFAULT_SAMPLE, MigrationReport, UnsealMaterial, migrate
from kinko.vault.seal_state import check_init_options
from kinko.vault.service import Vault, open_vault
from kinko.vault.session import VaultSession
from kinko.vault.transit import KEY_TYPES, KeyInfo, TransitError
from kinko.vault.types import (
    DEFAULT_RETENTION_DAYS,
    DEFAULT_TTL,
    KEEP,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    ROOT_TOKEN_PREFIX,
    ChainReport,
    InitResult,
    Keep,
    KubernetesAuthConfig,
    KubernetesRole,
    Login,
    Policy,
    RetentionSettings,
    Rule,
    SealType,
    TokenInfo,
    VaultStatus,
)

__all__ = [
    "DEFAULT_KV_MOUNTS",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_SAMPLE",
    "DEFAULT_TTL",
    "KEEP",
    "KEY_TYPES",
    "MAX_RETENTION_DAYS",
    "MIN_RETENTION_DAYS",
    "ROOT_TOKEN_PREFIX",
    "Caller",
    "ChainReport",
    "InitResult",
    "Keep",
    "KeyInfo",
    "KubernetesAuthConfig",
    "KubernetesRole",
    "KvEntry",
    "KvMetadata",
    "KvSettings",
    "KvVersion",
    "LatestVersionGone",
    "LocalSession",
    "Login",
    "MigrationReport",
    "Policy",
    "RequestScope",
    "RetentionSettings",
    "Rule",
    "SealType",
    "TokenInfo",
    "TransitError",
    "UnsealMaterial",
    "Vault",
    "VaultSession",
    "VaultStatus",
    "check_audit_path",
    "check_audit_structure",
    "check_init_options",
    "current_request",
    "looks_like_vault_policy",
    "migrate",
    "open_vault",
    "parse_policy",
    "request_context",
    "subkeys",
    "translate_vault_policy",
]
