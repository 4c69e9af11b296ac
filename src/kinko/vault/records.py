"""Secret records: put/get/list/versions/attributes, soft delete, backup/restore, rewrap — each validated, passed
through the guard, sealed by the barrier with the record's identity as associated data, then stored. (The rules
that need no store or key — argument checks, readable states, a row's info — are in kinko.vault.record_rules.)"""

from __future__ import annotations

import builtins
import random
import secrets
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import NamedTuple

from kinko.core.model import (
    DEFAULT_CONTENT_TYPE,
    Caller,
    Listing,
    Secret,
    SecretInfo,
    SecretValue,
    VersionInfo,
    check_version,
    decode_payload,
    iso,
)
from kinko.core.names import validate_path, validate_prefix
from kinko.crypto.barrier import UnknownTerm, aad_part, term_of
from kinko.errors import NotFound, PermissionDenied, PurgeProtected, VersionConflict
from kinko.storage.fresh import marker_of
from kinko.storage.interface import LiveVersion, SecretRow, Store, VersionRow
from kinko.vault.guard import Guard
from kinko.vault.record_rules import (
    changed_attributes,
    check_readable,
    live_matches,
    put_arguments,
    secret_info,
    version_info,
)
from kinko.vault.record_rules import live_info as _live_info
from kinko.vault.record_tags import RecordTags
from kinko.vault.seal_state import SealState
from kinko.vault.types import KEEP, Keep

#: The names other modules import from here (`secret_info` and `version_info` are kinko.vault.record_rules').
__all__ = ["DESTROYED_TERM", "KV_SETTINGS_PREFIX", "SecretRecords", "secret_info", "version_info"]

#: The key term a destroyed version records: it has no ciphertext, and no rotation ever reaches this term, so
#: rewrap passes over it. (Its empty ciphertext is what marks it destroyed; see `destroy_versions`.)
DESTROYED_TERM = 2**31 - 1
#: Vault metadata key prefix of a secret's KV v2 settings (kinko.vault.kv_engine); purge removes them too.
KV_SETTINGS_PREFIX = "kv/settings/"
_LENGTH = struct.Struct(">I").pack  # the 4-byte length prefix of an AAD part (see crypto.barrier.aad_part)
_VALUE_FIELD = aad_part("value")
_VALID_PATHS_MAX = 4096


class _Checked(NamedTuple):
    """A live row verified against both integrity tags, for the next read of the same path."""

    tags: str  # what the store's live-tags read returns for it (`s.mac || v.mac`)
    row: LiveVersion
    aad: bytes
    marker: int | None  # the store's change marker read before it was checked
    asked: int | None  # the version asked for (None: the current one)


#: Tries of a write without `cas` that keeps meeting other writers (each try seals again for the next number).
_WRITE_ATTEMPTS = 32


class SecretRecords:
    """The secret operations. Every one takes the caller and passes the guard before touching a record."""

    def __init__(self, store: Store, seal: SealState, guard: Guard, clock: Callable[[], float]) -> None:
        self._store, self._seal, self._guard, self._clock = store, seal, guard, clock
        self._tags = RecordTags(store, seal)
        self._aad_prefix: tuple[str, bytes] | None = None  # (vault id, its encoded AAD part)
        #: path -> (the tags of the live row last read and verified there, that row, the AAD of its value).
        self._verified: dict[str, _Checked] = {}
        self._valid_paths: set[str] = set()

    def forget(self) -> None:
        """Drop what was verified with keys this process no longer holds (sealed)."""
        self._verified.clear()

    def adopt_untagged(self) -> int:
        """Tag rows written before integrity tags existed (once per vault, on the first unseal after upgrade)."""
        return self._tags.adopt_untagged()

    def rewrap(self, caller: Caller, batch: int = 500) -> int:
        """Re-encrypt every version sealed under an older key term with the newest term."""
        self._guard.check(caller, "sudo", "sys/rewrap", "rewrap")
        barrier, moved = self._seal.write_barrier(), 0
        while rows := self._store.versions_below_term(barrier.keyring.active_term, batch):
            for row in rows:
                payload = self._open(row.value_ct, row.path, row.version, "value", row.incarnation)
                sealed = barrier.seal(payload, self._aad(row.path, row.version, "value", row.incarnation))
                self._store.update_version(row._replace(value_ct=sealed, key_term=term_of(sealed)))
                moved += 1
        return moved

    def verify_stored(self, path: str, version: int) -> None:
        """Check one stored version as a read would (both integrity tags, then the value decrypted with its
        record identity) without returning it: IntegrityError / NotFound otherwise (kinko operator migrate)."""
        secret = self._tags.secret(self._store.get_secret(path))  # live or soft-deleted alike
        row = self._tags.version(self._store.get_version(path, version))
        if secret is None or row is None:
            raise NotFound(f"secret {path!r} has no version {version}")
        if row.value_ct:  # a destroyed version (KV v2) has only its tagged attributes left to check
            self._open(row.value_ct, path, version, "value", row.incarnation)

    # -- helpers -------------------------------------------------------------------------------------------
    def _aad(self, path: str, version: int, field: str, incarnation: str) -> list[str | int]:
        """The record's identity. The incarnation (absent for secrets created before it existed) ties a value to
        this secret, not an earlier one at the same path that was purged (whose versions restarted at 1)."""
        parts: list[str | int] = [self._seal.vault_id(), path, version, field]
        return [*parts, incarnation] if incarnation else parts

    def _record_aad(self, path: str, version: int, field: str, incarnation: str = "") -> bytes:
        """associated_data(self._aad(...)), with the vault-id part encoded once per vault id (the hot read)."""
        vault_id = self._seal.vault_id()
        cached = self._aad_prefix
        if cached is None or cached[0] != vault_id:
            cached = self._aad_prefix = (vault_id, aad_part(vault_id))
            self._verified.clear()  # built with another vault id (defensive: it is fixed once initialised)
        raw_path, raw_version = path.encode(), b"%d" % version
        tail = aad_part(incarnation) if incarnation else b""  # secrets from before migration 3 have none
        return b"".join((cached[1], _LENGTH(len(raw_path)), raw_path, _LENGTH(len(raw_version)), raw_version,
                         _VALUE_FIELD if field == "value" else aad_part(field), tail))

    def _open(self, blob: bytes, path: str, version: int, field: str, incarnation: str) -> bytes:
        aad = self._record_aad(path, version, field, incarnation)
        try:
            return self._seal.barrier().open_aad(blob, aad)
        except UnknownTerm:
            self._seal.reload_keyring()  # another process rotated; its new term is in the stored keyring
            return self._seal.barrier().open_aad(blob, aad)

    def secret_row(self, path: str, *, deleted: bool = False) -> SecretRow:
        row = self._tags.secret(self._store.get_secret(path))
        if row is None or (row.deleted is not None) != deleted:
            state = "deleted secret" if deleted else "secret"
            raise NotFound(f"no {state} at {path!r}")
        return row

    # -- secrets -------------------------------------------------------------------------------------------
    def put(
        self, caller: Caller, path: str, value: SecretValue, *, content_type: str = DEFAULT_CONTENT_TYPE,
        enabled: bool = True, not_before: float | None = None, expires: float | None = None,
        tags: Mapping[str, str] | None = None, cas: int | None = None, max_versions: int | None = None,
    ) -> VersionInfo:
        """Write a new version. `cas`: expected current version (0 = must not exist)."""
        args = put_arguments(path, value, content_type, not_before, expires, tags, cas, max_versions)
        # Without `cas` a write is "the next version, whatever it is": another writer getting there first means
        # sealing again for the next number (the version is part of the AAD), not failing the caller's write.
        attempt = 0
        while True:
            existing = self._tags.secret(self._store.get_secret(path))
            self._guard.check(caller, "update" if existing else "create", path, "secret.put", {"value": value})
            barrier, now = self._seal.write_barrier(), self._clock()
            version = (existing.current_version if existing else 0) + 1
            incarnation = existing.incarnation if existing else secrets.token_hex(16)  # 128 random bits per secret
            value_ct = barrier.seal(args.payload, self._aad(path, version, "value", incarnation))
            keep = max_versions if max_versions is not None else (existing.max_versions if existing else 0)
            secret = self._tags.signed_secret(
                SecretRow(path, version, keep, existing.created if existing else now, now, incarnation=incarnation))
            row = self._tags.signed_version(VersionRow(path, version, value_ct, term_of(value_ct), enabled,
                                                       args.not_before, args.expires, content_type, args.tags_json,
                                                       now, now, incarnation))
            try:
                self._store.write_version(secret, row, cas if cas is not None else version - 1)
            except VersionConflict:
                attempt += 1
                if cas is not None or attempt == _WRITE_ATTEMPTS:
                    raise
                if attempt > 2:  # out of lockstep with the writer that keeps winning (several servers, one path)
                    time.sleep(random.uniform(0, 0.001 * attempt))  # noqa: S311 - jitter, not a secret
                continue
            return version_info(row)

    def get(self, caller: Caller, path: str, version: int | None = None) -> Secret:
        if type(path) is not str or path not in self._valid_paths:  # exact str: no subclass with its own __eq__
            self._remember_valid(path)
        self._guard.check(caller, "read", path, "secret.get")
        barrier = self._seal.barrier()  # Sealed before anything is read
        row, aad = self._live(path, version if version is None else check_version(version))
        if not row.enabled or row.not_before is not None or row.expires is not None or not row.value_ct:
            check_readable(path, row, self._clock())  # the clock is read only for a version with a validity window
        try:
            payload = barrier.open_aad(row.value_ct, aad)
        except UnknownTerm:
            payload = self._open(row.value_ct, path, row.version, "value", row.incarnation)  # reloads the keyring
        value, metadata = decode_payload(payload)
        # The response record (HMAC of the value) answers "was this value read?"; fail closed like requests.
        # (The sink is called here rather than through Guard.record: one call less on the hottest path.)
        audit = self._guard.audit
        if audit is not None:
            audit(caller, "secret.get.response", path, "ok", {"value": value})
        return Secret.deferred(_live_info, (path, row), value, metadata)  # info is built only if someone reads it

    def scan_values(self, caller: Caller, prefix: str = "") -> Iterator[tuple[str, SecretValue]]:
        """(path, current value) of every secret under `prefix` the caller holds `scan` on, for keyed fingerprints
        made inside the vault (`Vault.scan_fingerprints`); the values never leave it. Disabled or expired versions
        count: a leaked value is leaked whatever its state."""
        base = validate_prefix(prefix)
        barrier = self._seal.barrier()
        rows = [r for r in self._store.list_secrets(base, deleted=False) if self._tags.secret_ok(r)]
        allowed = [r for r in rows if self._guard.allowed(caller, "scan", r.path)]
        # Like a listing, the prefix itself needs no rule: `scan` on team/* covers the secrets under `team`. A
        # caller who may scan none of the secrets there is refused (audited), so a CI scan cannot pass as clean.
        outcome = "denied" if rows and not allowed else "allowed"
        self._guard.record(caller, "secret.fingerprints", base, outcome, {"count": str(len(allowed))})
        if outcome == "denied":
            raise PermissionDenied()
        for row in allowed:
            try:
                live, aad = self._live(row.path, None)
                if not live.value_ct:
                    continue  # destroyed (KV v2): nothing left to fingerprint
                payload = barrier.open_aad(live.value_ct, aad)
            except NotFound:
                continue  # deleted meanwhile
            except UnknownTerm:
                payload = self._open(live.value_ct, row.path, live.version, "value", live.incarnation)
            yield row.path, decode_payload(payload)[0]

    def _live(self, path: str, version: int | None) -> tuple[LiveVersion, bytes]:
        """The live row to read and its value's AAD.

        Every get first reads the row's two integrity tags (one short column). Tags equal to those of the row this
        process verified last at the path mean that row is still the current one (every write by kinko changes
        a tag), so its verified copy — state and ciphertext — is used; an edit made in the file without kinko
        changes no tag and is therefore never served. Otherwise the whole row is read and checked against both
        tags. The AAD is a pure function of the vault id and the row's identity, so reusing it still binds the
        read to that identity.
        """
        marker = marker_of(self._store)  # read before anything it vouches for
        entry = self._verified.get(path)
        if entry is not None and type(path) is str:  # exact str
            if marker is not None and entry.marker == marker and entry.asked == version:
                return entry.row, entry.aad  # nothing committed anywhere since it was checked: not even the tags
            tags = self._store.get_live_tags(path, version)
            if tags is not None and entry.tags == tags:
                self._verified[path] = entry._replace(marker=marker, asked=version)
                return entry.row, entry.aad
        for _ in range(3):
            row = self._store.get_live_version(path, version)
            if row is None:
                self.version_row(path, version)  # raises the precise NotFound (or the row appeared meanwhile)
                continue
            verified = self._verify_live(path, row, version, marker)
            if verified is not None:
                return verified
        raise VersionConflict(f"secret {path!r} kept changing while it was read; retry")

    def _verify_live(self, path: str, row: LiveVersion, asked: int | None,
                     marker: int | None) -> tuple[LiveVersion, bytes] | None:
        """Check the live row against the tags of the secret and version rows it came from; None if they changed
        in between (the caller reads again). Remembered per path, bounded like the valid paths."""
        secret = self.secret_row(path)
        stored = self._tags.version(self._store.get_version(path, row.version))
        if stored is None or secret.mac is None or stored.mac is None:
            return None
        if not live_matches(row, secret, stored, asked):
            return None
        aad = self._record_aad(path, row.version, "value", row.incarnation)
        if type(path) is str:
            if len(self._verified) >= _VALID_PATHS_MAX:
                self._verified.clear()
            self._verified[path] = _Checked(secret.mac + stored.mac, row, aad, marker, asked)  # tags: s.mac || v.mac
        return row, aad

    def version_row(self, path: str, version: int | None) -> VersionRow:
        check_version(version)
        secret = self.secret_row(path)
        number = secret.current_version if version is None else version
        row = self._tags.version(self._store.get_version(path, number))
        if row is None:
            raise NotFound(f"secret {path!r} has no version {number}")
        return row

    def _remember_valid(self, path: str) -> None:
        """validate_path, remembering valid paths (a pure check of an immutable str) so hot reads skip it."""
        validate_path(path)
        if len(self._valid_paths) >= _VALID_PATHS_MAX:
            self._valid_paths.clear()  # bounded: a caller cycling through paths cannot grow it without limit
        self._valid_paths.add(path)

    def info(self, caller: Caller, path: str) -> SecretInfo:
        validate_path(path)
        self._guard.check(caller, "list", path, "secret.info")
        self._seal.barrier()
        return secret_info(self.secret_row(path))

    def list(self, caller: Caller, prefix: str = "") -> Listing:
        """Direct children of `prefix`: secret names, and folders ending in '/'."""
        base = validate_prefix(prefix)
        self._guard.check(caller, "list", base, "secret.list")
        self._seal.barrier()
        start = len(base) + 1 if base else 0
        keys: set[str] = set()
        for row in self._store.list_secrets(base, deleted=False):
            # Listing the prefix is not listing everything under it: a name (or a folder holding only names) the
            # caller may not list stays hidden, as in list_deleted.
            if row.path == base or not self._guard.allowed(caller, "list", row.path) or not self._tags.secret_ok(row):
                continue
            head, slash, _ = row.path[start:].partition("/")
            keys.add(head + slash)
        return Listing(base, tuple(sorted(keys)))

    def versions(self, caller: Caller, path: str) -> builtins.list[VersionInfo]:
        validate_path(path)
        self._guard.check(caller, "list", path, "secret.versions")
        self._seal.barrier()
        self.secret_row(path)
        return [version_info(r) for r in map(self._tags.version, self._store.list_versions(path)) if r is not None]

    def update_attributes(
        self, caller: Caller, path: str, version: int | None = None, *, enabled: bool | None = None,
        not_before: float | Keep | None = KEEP, expires: float | Keep | None = KEEP,
        tags: Mapping[str, str] | None = None, content_type: str | None = None,
    ) -> VersionInfo:
        """Change a version's attributes (not its value). Unset arguments keep their current value."""
        validate_path(path)
        self._guard.check(caller, "update", path, "secret.update")
        self._seal.barrier()
        changed = changed_attributes(self.version_row(path, version), enabled, not_before, expires, tags, content_type)
        updated = self._tags.signed_version(changed._replace(updated=self._clock()))
        self._store.update_version(updated)
        return version_info(updated)

    # -- delete / recover / purge ------------------------------------------------------------------------
    def delete(self, caller: Caller, path: str) -> SecretInfo:
        """Soft delete: recoverable until the retention period ends."""
        validate_path(path)
        self._guard.check(caller, "delete", path, "secret.delete")
        self._seal.barrier()
        secret = self.secret_row(path)
        now = self._clock()
        self._set_deleted(secret, now, now + self._seal.retention().retention_days * 86400)
        return secret_info(self.secret_row(path, deleted=True))

    def _set_deleted(self, secret: SecretRow, deleted: float | None, scheduled_purge: float | None) -> None:
        changed = self._tags.signed_secret(replace(secret, deleted=deleted, scheduled_purge=scheduled_purge))
        self._store.set_deleted(secret.path, deleted, scheduled_purge, changed.mac or "")

    def list_deleted(self, caller: Caller, prefix: str = "") -> builtins.list[SecretInfo]:
        base = validate_prefix(prefix)
        self._guard.check(caller, "list", base, "secret.list_deleted")
        self._seal.barrier()
        rows = self._store.list_secrets(base, deleted=True)
        # Listing the prefix is not listing everything under it: a `deny` subtree stays hidden, path by path.
        return [secret_info(r) for r in rows
                if self._guard.allowed(caller, "list", r.path) and self._tags.secret_ok(r)]

    def recover(self, caller: Caller, path: str) -> SecretInfo:
        validate_path(path)
        self._guard.check(caller, "recover", path, "secret.recover")
        self._seal.barrier()
        self._set_deleted(self.secret_row(path, deleted=True), None, None)
        return secret_info(self.secret_row(path))

    def purge(self, caller: Caller, path: str) -> None:
        """Permanently remove a soft-deleted secret (refused under purge protection until retention ends)."""
        validate_path(path)
        self._guard.check(caller, "purge", path, "secret.purge")
        self._seal.barrier()
        row = self.secret_row(path, deleted=True)
        if self._seal.retention().purge_protection and self._clock() < (row.scheduled_purge or 0):
            raise PurgeProtected(
                f"purge protection is on: {path!r} can be purged after {iso(row.scheduled_purge)}"
            )
        self._store.delete_meta(KV_SETTINGS_PREFIX + path)  # first: a crash in between loses only the settings
        self._store.purge(path)

    def value_of(self, row: VersionRow) -> SecretValue:
        """Decrypt a stored version (for a sibling that has already authorized and checked its state)."""
        value, _ = decode_payload(self._open(row.value_ct, row.path, row.version, "value", row.incarnation))
        return value
