"""Integrity tags on the lifecycle state of secrets and versions (enabled, validity window, current version, soft
delete, versions kept), so a row edited straight in the database file reads as an integrity error.

A tag does not stop replay: a whole old row put back with its old tag still verifies (see access/integrity.py).
Rows written before tags existed are tagged once, the first time the vault is unsealed after the upgrade; a marker
(itself a tag) says that was done. Removing the marker and a row's tag makes the next unseal adopt that row: an
attacker who can write the database file and knows this can still launder one edit — the tags raise the bar for
edits, they are not a proof against a writer of the file (docs/server.md, threat model).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace

from kinko.access.integrity import LIFECYCLE_TAGS_MARKER
from kinko.errors import IntegrityError
from kinko.storage.interface import SecretRow, Store, VersionRow
from kinko.vault.seal_state import SealState

log = logging.getLogger("kinko.vault")


class RecordTags:
    """Signs rows before they are written and checks them as they are read (unsealed only: the key is derived
    from the keyring)."""

    def __init__(self, store: Store, seal: SealState) -> None:
        self._store, self._seal = store, seal

    def signed_secret(self, row: SecretRow) -> SecretRow:
        return replace(row, mac=self._seal.record_mac().secret_tag(row))

    def signed_version(self, row: VersionRow) -> VersionRow:
        return row._replace(mac=self._seal.record_mac().version_tag(row))

    def secret(self, row: SecretRow | None) -> SecretRow | None:
        """`row` if its tag verifies (None stays None); IntegrityError if it was edited outside kinko."""
        if row is not None and not self._seal.record_mac().secret_ok(row):
            raise IntegrityError(f"the stored state of secret {row.path!r} failed its integrity check (edited in "
                                 "the database file?); it is not served")
        return row

    def secret_ok(self, row: SecretRow) -> bool:
        """For listings: a row that fails its check is left out (logged), not an error for the whole list."""
        return self._seal.record_mac().secret_ok(row)

    def version(self, row: VersionRow | None) -> VersionRow | None:
        if row is not None and not self._seal.record_mac().version_ok(row):
            raise IntegrityError(f"the stored state of secret {row.path!r} version {row.version} failed its "
                                 "integrity check (edited in the database file?); it is not served")
        return row

    def adopt_untagged(self) -> int:
        """Tag every row written before tags existed, once per vault (unsealed). Returns how many were tagged."""
        mac = self._seal.record_mac()
        marker = self._store.get_meta(LIFECYCLE_TAGS_MARKER)
        if marker is not None and hmac.compare_digest(marker, mac.marker(LIFECYCLE_TAGS_MARKER).encode()):
            return 0
        secrets, versions = self._store.untagged()
        self._store.put_tags([(row.path, mac.secret_tag(row)) for row in secrets],
                             [(row.path, row.version, mac.version_tag(row)) for row in versions])
        self._store.put_meta(LIFECYCLE_TAGS_MARKER, mac.marker(LIFECYCLE_TAGS_MARKER).encode())
        if secrets or versions:
            log.warning("tagged %d secret and %d version rows written before integrity tags existed",
                        len(secrets), len(versions))
        return len(secrets) + len(versions)
