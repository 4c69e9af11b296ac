"""Backup and restore: every version of a secret as one blob sealed by this vault, and back."""

from __future__ import annotations

import base64
import json
from typing import Any

from kinko.core.model import Caller, SecretInfo
from kinko.core.names import validate_path
from kinko.crypto.barrier import UnknownTerm
from kinko.errors import IntegrityError, InvalidInput
from kinko.storage.interface import SecretRow, Store, VersionRow
from kinko.vault.guard import Guard
from kinko.vault.record_tags import RecordTags
from kinko.vault.records import KV_SETTINGS_PREFIX, SecretRecords, secret_info
from kinko.vault.seal_state import SealState

BACKUP_MAGIC = b"kinko-backup-1:"
#: The audit path of a restore refused before its secret's path is known (unreadable or foreign backup).
RESTORE_PATH = "sys/restore"


class SecretBackups:
    """Backups carry ciphertexts as stored plus the rows' state, sealed again under the vault's backup AAD."""

    def __init__(self, store: Store, seal: SealState, guard: Guard, records: SecretRecords) -> None:
        self._store, self._seal, self._guard, self._records = store, seal, guard, records
        self._tags = RecordTags(store, seal)

    def backup(self, caller: Caller, path: str) -> bytes:
        """All versions of a secret as an encrypted blob that only this vault can restore."""
        validate_path(path)
        self._guard.check(caller, "read", path, "secret.backup")
        barrier = self._seal.barrier()
        secret = self._records.secret_row(path)
        versions = [self._tags.version(r) for r in self._store.list_versions(path)]
        doc: dict[str, Any] = {
            "secret": {k: v for k, v in secret.__dict__.items() if k not in ("deleted", "scheduled_purge", "mac")},
            "versions": [_row_doc(r) for r in versions if r is not None],
        }
        settings = self._store.get_meta(KV_SETTINGS_PREFIX + path)
        if settings is not None:  # its KV v2 settings (max_versions, cas_required, custom_metadata), sealed as stored:
            doc["kv_settings"] = base64.b64encode(settings).decode()  # their AAD binds this vault and this path
        sealed = barrier.seal(json.dumps(doc).encode(), [self._seal.vault_id(), "backup"])
        return BACKUP_MAGIC + base64.b64encode(sealed)

    def restore(self, caller: Caller, blob: bytes) -> SecretInfo:
        barrier = self._seal.barrier()
        if not blob.startswith(BACKUP_MAGIC):
            raise self._restore_refused(caller, InvalidInput("not a kinko backup"))
        try:
            sealed = base64.b64decode(blob[len(BACKUP_MAGIC):].strip(), validate=True)
            aad: list[str | int] = [self._seal.vault_id(), "backup"]
            try:
                plain = barrier.open(sealed, aad)
            except UnknownTerm:  # made after another process rotated: its term is in the stored keyring
                self._seal.reload_keyring()
                plain = self._seal.barrier().open(sealed, aad)
            doc = json.loads(plain)
        except (ValueError, IntegrityError):
            raise self._restore_refused(
                caller, InvalidInput("backup is corrupt or was made by another vault")) from None
        secret = SecretRow(**{k: v for k, v in doc["secret"].items() if k != "mac"})
        validate_path(secret.path)
        self._guard.check(caller, "create", secret.path, "secret.restore")
        # Tagged anew: the backup was sealed by this vault, so its rows are this vault's own.
        self._store.restore(self._tags.signed_secret(secret),
                            [self._tags.signed_version(_row_from_doc(d)) for d in doc["versions"]])
        if doc.get("kv_settings"):  # after the rows: a restore refused (it exists) must not replace its settings
            self._store.put_meta(KV_SETTINGS_PREFIX + secret.path, base64.b64decode(doc["kv_settings"]))
        return secret_info(self._records.secret_row(secret.path))

    def _restore_refused(self, caller: Caller, error: InvalidInput) -> InvalidInput:
        """Audit a restore refused before `_check` could run (its path is inside the blob), then return the error."""
        self._guard.record(caller, "secret.restore", RESTORE_PATH, error.code)
        return error


def _row_doc(row: VersionRow) -> dict[str, Any]:
    doc = row._asdict()
    doc["value_ct"] = base64.b64encode(row.value_ct).decode()
    del doc["mac"]
    return doc


def _row_from_doc(doc: dict[str, Any]) -> VersionRow:
    fields = {k: v for k, v in doc.items() if k != "mac"}
    return VersionRow(**{**fields, "value_ct": base64.b64decode(fields["value_ct"])})
