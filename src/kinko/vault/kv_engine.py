"""The Vault KV v2 operations over kinko's secret records, each authorized and audited like the native ones
(the mapping and the capabilities each needs are described in kinko.vault.kv)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from kinko.core.model import Caller, Listing
from kinko.core.names import validate_path
from kinko.crypto.barrier import UnknownTerm
from kinko.errors import (
    InvalidInput,
    NotFound,
    PurgeProtected,
    SecretNotYetValid,
    VersionConflict,
    VersionDestroyed,
    VersionUnavailable,
)
from kinko.storage.fresh import FreshCache
from kinko.storage.interface import SecretRow, Store, VersionRow
from kinko.vault.guard import Guard
from kinko.vault.kv import (
    CasRequired,
    KvEntry,
    KvMetadata,
    KvSettings,
    KvVersion,
    LatestVersionGone,
    check_custom_metadata,
    check_settings,
    decode_value,
    encode_data,
    merge_patch,
    version_state,
)
from kinko.vault.record_tags import RecordTags
from kinko.vault.records import DESTROYED_TERM, KV_SETTINGS_PREFIX, SecretRecords, version_info
from kinko.vault.seal_state import SealState
from kinko.vault.types import KEEP, Keep

_CONFIG_PREFIX = "kv/config/"
_CACHE_MAX = 4096
CAS_MISMATCH = "check-and-set parameter did not match the current version"


def metadata_path(mount: str, path: str) -> str:
    """The kinko path whose `update` allows writing a secret's KV settings (kinko.access.vault_hcl maps Vault's
    `<mount>/metadata/P` update onto it)."""
    return f"sys/kv/{mount}/metadata/{path}"


class KvEngine:
    """KV v2 on top of `SecretRecords`; settings are sealed documents in the vault's metadata."""

    def __init__(self, store: Store, seal: SealState, guard: Guard, records: SecretRecords,
                 clock: Callable[[], float]) -> None:
        self._store, self._seal, self._guard, self._records, self._clock = store, seal, guard, records, clock
        self._tags = RecordTags(store, seal)
        self._cache: dict[str, tuple[bytes, KvSettings]] = {}  # meta key -> (sealed bytes, what they open to)
        self._fresh: FreshCache[KvSettings | None] = FreshCache(store)

    def forget(self) -> None:
        self._cache.clear()
        self._fresh.clear()

    # -- settings storage ----------------------------------------------------------------------------------
    def _load(self, key: str) -> KvSettings | None:
        # Most secrets have no settings: while nothing is committed anywhere, not even the SELECT is repeated.
        return self._fresh.get(key, lambda: self._open_settings(key))

    def _open_settings(self, key: str) -> KvSettings | None:
        raw = self._store.get_meta(key)
        if raw is None:
            return None
        cached = self._cache.get(key)
        if cached is not None and cached[0] == raw:
            return cached[1]
        aad: list[str | int] = [self._seal.vault_id(), "kv-settings", key]
        try:
            plain = self._seal.barrier().open(raw, aad)
        except UnknownTerm:
            self._seal.reload_keyring()
            plain = self._seal.barrier().open(raw, aad)
        settings = KvSettings.from_bytes(plain)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (raw, settings)
        return settings

    def _save(self, key: str, settings: KvSettings) -> None:
        sealed = self._seal.barrier().seal(settings.to_bytes(), [self._seal.vault_id(), "kv-settings", key])
        self._store.put_meta(key, sealed)

    def _effective(self, mount: str, path: str) -> KvSettings:
        mine = self._load(KV_SETTINGS_PREFIX + path) or KvSettings()
        return mine.effective(self._load(_CONFIG_PREFIX + mount) or KvSettings())

    def custom_metadata(self, path: str) -> Mapping[str, str] | None:
        """A secret's custom_metadata (for answering an operation already authorized on `path`)."""
        settings = self._load(KV_SETTINGS_PREFIX + path)
        return None if settings is None else settings.custom_metadata

    # -- data ----------------------------------------------------------------------------------------------
    def read(self, caller: Caller, path: str, version: int | None = None) -> KvEntry:
        """A version's data and state; `data` None if it is deleted or destroyed (NotFound if there is none)."""
        try:
            secret = self._records.get(caller, path, version)
        except (VersionUnavailable, VersionDestroyed) as exc:
            if isinstance(exc, SecretNotYetValid):
                raise
            state = version_state(version_info(self._records.version_row(path, version)))
            return KvEntry(state, None, self.custom_metadata(path))
        info = secret.info
        data, binary = decode_value(secret.value, info.attributes.content_type)
        return KvEntry(version_state(info), data, self.custom_metadata(path), binary)

    def write(self, caller: Caller, mount: str, path: str, data: Mapping[str, Any], cas: int | None) -> KvVersion:
        validate_path(path)
        value, content_type = encode_data(data)
        settings = self._effective(mount, path)
        self._require_cas(caller, path, settings, cas)
        return self._put(caller, path, value, content_type, cas, settings)

    def patch(self, caller: Caller, mount: str, path: str, patch: Mapping[str, Any], cas: int | None) -> KvVersion:
        """Merge-patch the current version into a new one (needs `update`; the old value is never returned)."""
        validate_path(path)
        if not isinstance(patch, Mapping):
            raise InvalidInput("data must be a JSON object")
        self._guard.check(caller, "update", path, "secret.patch")
        self._seal.barrier()
        row = self._records.version_row(path, None)
        state = version_state(version_info(row))
        if not state.readable(self._clock()):
            raise LatestVersionGone(f"the current version of {path!r} is deleted or destroyed", state)
        settings = self._effective(mount, path)
        self._require_cas(caller, path, settings, cas)
        if cas is not None and cas != row.version:
            raise VersionConflict(CAS_MISMATCH)
        current, binary = decode_value(self._records.value_of(row), row.content_type)
        if binary:
            raise InvalidInput("this secret holds values that are not UTF-8; write it whole instead of patching")
        value, content_type = encode_data(merge_patch(current, patch))
        return self._put(caller, path, value, content_type, row.version, settings)

    def _require_cas(self, caller: Caller, path: str, settings: KvSettings, cas: int | None) -> None:
        # Said only to a caller who may write here: to anyone else the write itself answers "permission denied".
        if settings.cas_required and cas is None and (
                self._guard.allowed(caller, "update", path) or self._guard.allowed(caller, "create", path)):
            raise CasRequired("check-and-set parameter required for this call")

    def _put(self, caller: Caller, path: str, value: Any, content_type: str, cas: int | None,
             settings: KvSettings) -> KvVersion:
        after = settings.delete_version_after
        try:
            info = self._records.put(caller, path, value, content_type=content_type, cas=cas,
                                     expires=self._clock() + after if after else None,
                                     max_versions=settings.max_versions or None)
        except VersionConflict:
            raise VersionConflict(CAS_MISMATCH) from None
        return version_state(info)

    # -- version states ------------------------------------------------------------------------------------
    def delete_latest(self, caller: Caller, path: str) -> None:
        validate_path(path)
        self._guard.check(caller, "delete", path, "secret.delete_version")
        self._seal.barrier()
        row = self._live_secret(path)
        if row is not None:
            self._change(path, [row.current_version], _deleted)

    def delete_versions(self, caller: Caller, path: str, versions: Iterable[int]) -> None:
        self._versions_op(caller, path, versions, "delete", "secret.delete_versions", _deleted)

    def undelete(self, caller: Caller, path: str, versions: Iterable[int]) -> None:
        self._versions_op(caller, path, versions, "recover", "secret.undelete_versions", _undeleted)

    def destroy(self, caller: Caller, path: str, versions: Iterable[int]) -> None:
        """Erase the ciphertexts of `versions` for good (their attributes stay, marked destroyed)."""
        self._versions_op(caller, path, versions, "purge", "secret.destroy_versions", _destroyed)

    def _versions_op(self, caller: Caller, path: str, versions: Iterable[int], capability: str, operation: str,
                     change: Callable[[VersionRow, float], VersionRow | None]) -> None:
        validate_path(path)
        numbers = sorted(set(versions))
        if not numbers:
            raise InvalidInput("No version number provided")
        self._guard.check(caller, capability, path, operation)
        self._seal.barrier()
        if self._live_secret(path) is not None:
            self._change(path, numbers, change)

    def _live_secret(self, path: str) -> SecretRow | None:
        """The secret's row, or None when there is none (or it is soft-deleted): Vault answers 204 for those."""
        try:
            return self._records.secret_row(path)
        except NotFound:
            return None

    def _change(self, path: str, numbers: list[int], change: Callable[[VersionRow, float], VersionRow | None]) -> None:
        now = self._clock()
        for number in numbers:
            row = self._tags.version(self._store.get_version(path, number))
            changed = None if row is None else change(row, now)  # versions that do not exist are skipped
            if changed is not None:
                self._store.update_version(self._tags.signed_version(changed))

    # -- metadata ------------------------------------------------------------------------------------------
    def metadata(self, caller: Caller, path: str) -> KvMetadata:
        validate_path(path)
        self._guard.check(caller, "list", path, "secret.metadata")
        self._seal.barrier()
        settings = self._load(KV_SETTINGS_PREFIX + path)
        row = self._tags.secret(self._store.get_secret(path))
        if row is None or row.deleted is not None:
            if settings is None:
                raise NotFound(f"no secret at {path!r}")
            return KvMetadata(path, settings, settings.created or 0.0, settings.updated or 0.0, 0, 0, ())
        rows = [r for r in map(self._tags.version, self._store.list_versions(path)) if r is not None]
        states = tuple(version_state(version_info(r)) for r in rows)
        oldest = min((s.version for s in states), default=0)
        return KvMetadata(path, settings or KvSettings(max_versions=row.max_versions), row.created, row.updated,
                          row.current_version, 0 if oldest <= 1 else oldest, states)

    def write_metadata(self, caller: Caller, mount: str, path: str, *, max_versions: int | None = None,
                       cas_required: bool | None = None, delete_version_after: float | None = None,
                       custom_metadata: Mapping[str, Any] | Keep | None = KEEP, patch: bool = False) -> None:
        """Change the given settings (the others stay); `patch` merges custom_metadata instead of replacing it.

        Needs `update` on `sys/kv/<mount>/metadata/<path>`, not on the secret: these settings (cas_required,
        max_versions, delete_version_after) guard the data, so writing the data must not be enough to change them
        (Vault keeps them on their own metadata/ path for the same reason).
        """
        validate_path(path)
        check_settings(max_versions, delete_version_after)
        self._guard.check(caller, "update", metadata_path(mount, path), "secret.metadata.update")
        self._seal.barrier()
        now, key = self._clock(), KV_SETTINGS_PREFIX + path
        current = self._load(key)
        if current is None:
            row = self._tags.secret(self._store.get_secret(path))
            current = KvSettings(max_versions=row.max_versions if row else 0, created=now)
        custom = current.custom_metadata
        if custom_metadata is not KEEP:
            custom = check_custom_metadata(merge_patch(custom or {}, custom_metadata) if patch else custom_metadata)
        self._save(key, replace(
            current, custom_metadata=custom, updated=now,
            max_versions=current.max_versions if max_versions is None else max_versions,
            cas_required=current.cas_required if cas_required is None else cas_required,
            delete_version_after=(current.delete_version_after if delete_version_after is None
                                  else delete_version_after)))

    def delete_metadata(self, caller: Caller, path: str) -> None:
        """Every version and the settings, for good: a soft delete and a purge (each authorized on its own)."""
        validate_path(path)
        row = self._store.get_secret(path)
        if row is None or row.deleted is not None:
            self._guard.check(caller, "delete", path, "secret.metadata.delete")
            self._seal.barrier()
            self._store.delete_meta(KV_SETTINGS_PREFIX + path)
            return
        for capability in ("delete", "purge"):  # both or nothing: never a soft delete left half done
            if not self._guard.allowed(caller, capability, path):
                self._guard.check(caller, capability, path, "secret.metadata.delete")  # the audited denial
        if self._seal.retention().purge_protection:
            raise PurgeProtected("purge protection is on, so a KV metadata delete (permanent) is refused; "
                                 "a data DELETE or `kinko secret delete` deletes recoverably")
        self._records.delete(caller, path)
        self._records.purge(caller, path)  # removes the settings too

    def list(self, caller: Caller, prefix: str) -> Listing:
        """The secrets under `prefix`, and the entries that have only settings yet (metadata written before any
        version), as Vault lists every key with metadata; each subject to `list` on its own path."""
        listing = self._records.list(caller, prefix)
        base, start = listing.prefix, len(listing.prefix) + 1 if listing.prefix else 0
        keys = set(listing.keys)
        for key in self._store.list_meta_keys(KV_SETTINGS_PREFIX + (base + "/" if base else "")):
            path = key[len(KV_SETTINGS_PREFIX) :]
            if self._guard.allowed(caller, "list", path):
                head, slash, _ = path[start:].partition("/")
                keys.add(head + slash)
        return Listing(base, tuple(sorted(keys)))

    # -- mount settings ------------------------------------------------------------------------------------
    def read_config(self, caller: Caller, mount: str) -> KvSettings:
        self._guard.check(caller, "read", f"sys/kv/{mount}/config", "kv.config.read")
        self._seal.barrier()
        return self._load(_CONFIG_PREFIX + mount) or KvSettings()

    def write_config(self, caller: Caller, mount: str, *, max_versions: int | None = None,
                     cas_required: bool | None = None, delete_version_after: float | None = None) -> None:
        check_settings(max_versions, delete_version_after)
        self._guard.check(caller, "update", f"sys/kv/{mount}/config", "kv.config.update")
        self._seal.barrier()
        current = self._load(_CONFIG_PREFIX + mount) or KvSettings()
        self._save(_CONFIG_PREFIX + mount, replace(
            current, updated=self._clock(),
            max_versions=current.max_versions if max_versions is None else max_versions,
            cas_required=current.cas_required if cas_required is None else cas_required,
            delete_version_after=(current.delete_version_after if delete_version_after is None
                                  else delete_version_after)))


def _deleted(row: VersionRow, now: float) -> VersionRow | None:
    if not row.value_ct or not version_state(version_info(row)).readable(now):
        return None  # destroyed or already deleted: keeps its deletion time
    return row._replace(enabled=False, updated=now)


def _undeleted(row: VersionRow, now: float) -> VersionRow | None:
    if not row.value_ct or version_state(version_info(row)).readable(now):
        return None
    expired = row.expires is not None and row.expires <= now
    return row._replace(enabled=True, expires=None if expired else row.expires, updated=now)


def _destroyed(row: VersionRow, now: float) -> VersionRow | None:
    if not row.value_ct:
        return None
    return row._replace(value_ct=b"", key_term=DESTROYED_TERM, updated=now)
