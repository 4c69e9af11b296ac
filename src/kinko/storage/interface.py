"""The storage contract: ciphertext and non-sensitive metadata only. One implementation file per engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass(frozen=True)
class SecretRow:
    path: str
    current_version: int
    max_versions: int
    created: float
    updated: float
    deleted: float | None = None
    scheduled_purge: float | None = None
    #: Random id given when the row is created, bound into every value's AAD (so a ciphertext from a purged
    #: earlier secret at the same path and version does not open). "" = created before incarnations existed.
    incarnation: str = ""
    #: Integrity tag over every field above (kinko.access.integrity): a row edited in the file does not verify.
    mac: str | None = None


class VersionRow(NamedTuple):
    """A stored version (a NamedTuple: built straight from a database row on the hot read path)."""

    path: str
    version: int
    value_ct: bytes  # sealed payload: metadata + value (see core.model.encode_payload)
    key_term: int
    enabled: bool
    not_before: float | None
    expires: float | None
    content_type: str
    tags_json: str
    created: float
    updated: float
    #: The owning secret's incarnation (read from the secret row; not a column of the version itself).
    incarnation: str = ""
    #: Integrity tag over the version's own fields but the ciphertext (the AEAD binds that).
    mac: str | None = None


class LiveVersion(NamedTuple):
    """A version as the hot read returns it (`Store.get_live_version`): VersionRow without `path` (the caller
    has it) and `key_term` (the ciphertext's header holds it), plus the secret row's tag. Both tags change with
    every write to their row, so a reader can tell a row it verified before is still the current one.
    Each column a read converts costs time."""

    version: int
    value_ct: bytes
    enabled: bool
    not_before: float | None
    expires: float | None
    content_type: str
    tags_json: str
    created: float
    updated: float
    incarnation: str = ""
    mac: str | None = None
    secret_mac: str | None = None


class PolicyEntry(NamedTuple):
    document: str
    mac: str | None


class Store(ABC):
    """Each method is one transaction. Implementations raise kinko.errors types, never driver errors."""

    # -- vault-level metadata (seal config, wrapped root key, wrapped keyring) -------------------------------
    @abstractmethod
    def get_meta(self, key: str) -> bytes | None: ...

    @abstractmethod
    def init_meta(self, items: Mapping[str, bytes]) -> None:
        """Write the initial metadata; AlreadyInitialized if the vault already has any."""

    @abstractmethod
    def put_meta(self, key: str, value: bytes) -> None: ...

    @abstractmethod
    def swap_meta(self, key: str, expected: bytes | None, value: bytes) -> bool:
        """Set `key` to `value` only if it currently holds `expected` (None = absent). True if swapped."""

    @abstractmethod
    def delete_meta(self, key: str) -> None: ...

    @abstractmethod
    def list_meta_keys(self, prefix: str) -> list[str]:
        """The metadata keys starting with `prefix` (e.g. the names of transit keys), sorted."""

    # -- secrets ----------------------------------------------------------------------------------------------
    @abstractmethod
    def get_secret(self, path: str) -> SecretRow | None: ...

    @abstractmethod
    def get_version(self, path: str, version: int) -> VersionRow | None: ...

    @abstractmethod
    def get_live_version(self, path: str, version: int | None) -> LiveVersion | None:
        """One read for the hot path: `version` (None = current) of a secret that is not soft-deleted."""

    @abstractmethod
    def get_live_tags(self, path: str, version: int | None) -> str | None:
        """The integrity tags of the row `get_live_version` would return (secret's, then version's, concatenated;
        None if there is no such row or either has no tag): the cheapest way to tell a verified row is current."""

    @abstractmethod
    def list_versions(self, path: str) -> list[VersionRow]: ...

    @abstractmethod
    def write_version(self, secret: SecretRow, version: VersionRow, expected_current: int | None) -> None:
        """Insert `version` and make it current, atomically.

        `expected_current`: None = unconditional; otherwise the stored current version must equal it (0 = the
        secret must not exist). VersionConflict otherwise. Versions beyond `secret.max_versions` (if > 0) are
        pruned oldest first in the same transaction. A soft-deleted secret refuses writes (AlreadyExists).
        """

    @abstractmethod
    def update_version(self, row: VersionRow) -> None:
        """Replace the attributes (and possibly the ciphertexts, for rewrap) of an existing version."""

    @abstractmethod
    def list_secrets(self, prefix: str, *, deleted: bool) -> list[SecretRow]:
        """Secrets whose path is `prefix` or starts with `prefix/` ('' = all), live or soft-deleted."""

    @abstractmethod
    def set_deleted(self, path: str, deleted: float | None, scheduled_purge: float | None, mac: str) -> None:
        """Soft-delete (or recover: None, None) a secret, with the secret row's new tag."""

    @abstractmethod
    def untagged(self) -> tuple[list[SecretRow], list[VersionRow]]:
        """Secret and version rows written before integrity tags existed (mac NULL)."""

    @abstractmethod
    def put_tags(self, secrets: list[tuple[str, str]], versions: list[tuple[str, int, str]]) -> None:
        """Tag rows that have no tag yet, in one transaction: (path, mac) and (path, version, mac)."""

    @abstractmethod
    def purge(self, path: str) -> None: ...

    @abstractmethod
    def restore(self, secret: SecretRow, versions: list[VersionRow]) -> None:
        """Insert a whole secret from a backup; AlreadyExists if the path is taken."""

    @abstractmethod
    def versions_below_term(self, term: int, limit: int) -> list[VersionRow]: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Where the store is, for messages (`sqlite:PATH`, `postgresql://user@host:port/db`): never a password."""

    # -- the whole store, as stored (kinko operator migrate) -----------------------------------------------------
    @abstractmethod
    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table (kinko.storage.schema.TABLES' columns, by key), read in one transaction."""

    @abstractmethod
    def load(self, tables: Mapping[str, Sequence[Sequence[Any]]]) -> None:
        """Write `dump()`'s rows into this store in one transaction; AlreadyExists if it holds any vault row."""

    # -- tokens -------------------------------------------------------------------------------------------------
    @abstractmethod
    def insert_token(self, row: TokenRow) -> None: ...

    @abstractmethod
    def adopt_root_token(self, meta_key: str, row: TokenRow) -> bool:
        """Atomically: if meta `meta_key` holds row.token_hash, insert `row` and delete the meta key. True if so."""

    @abstractmethod
    def get_token(self, accessor: str) -> TokenRow | None: ...

    @abstractmethod
    def get_token_by_hash(self, token_hash: str) -> TokenRow | None: ...

    @abstractmethod
    def list_tokens(self) -> list[TokenRow]: ...

    @abstractmethod
    def consume_token_use(self, accessor: str, uses_left: int, mac: str | None) -> bool:
        """Use up one use of a use-limited token if it still has `uses_left`, storing the row's new `mac`;
        deletes it with its last use. False if the count moved (a concurrent use) or none were left."""

    @abstractmethod
    def set_token_expiry(self, accessor: str, expires: float | None, mac: str | None) -> None: ...

    @abstractmethod
    def revoke_token_tree(self, accessor: str) -> int:
        """Delete a token and all its descendants in one transaction; returns how many were deleted."""

    # -- policies -----------------------------------------------------------------------------------------------
    @abstractmethod
    def put_policy(self, name: str, document: str, updated: float, mac: str | None = None) -> None:
        """Create or replace a policy and bump the policy revision in the same transaction."""

    @abstractmethod
    def get_policy(self, name: str) -> str | None: ...

    @abstractmethod
    def get_policy_entry(self, name: str) -> PolicyEntry | None:
        """The document with its integrity tag (None for rows written before tags existed)."""

    @abstractmethod
    def list_policies(self) -> list[str]: ...

    @abstractmethod
    def delete_policy(self, name: str) -> bool:
        """Remove a policy (bumping the revision); False if it did not exist."""

    @abstractmethod
    def policy_revision(self) -> int:
        """A counter every policy write bumps, so caches in other processes notice changes."""

    def change_marker(self) -> int | None:
        """A value that differs after any change committed to the store by anyone (any connection, any process),
        or None when the engine cannot tell. Read it BEFORE the data it vouches for: a value cached together with
        the marker read before it may be used for as long as the marker stays the same (kinko.storage.fresh)."""
        return None


@dataclass(frozen=True)
class TokenRow:
    """A token as stored: only its SHA-256 hash, never the token itself. Times are Unix seconds."""

    accessor: str
    token_hash: str = field(repr=False)
    parent: str | None
    policies_json: str
    display_name: str
    meta_json: str
    created: float
    expires: float | None
    max_expires: float | None
    ttl: float | None
    renewable: bool
    num_uses: int
    uses_left: int
    #: HMAC tag over every other field (kinko.access.integrity); None = written before tags existed.
    mac: str | None = field(default=None, repr=False)

