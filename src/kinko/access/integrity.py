"""Record integrity: HMAC-SHA256 tags over records stored as plain rows (tokens, policies, Kubernetes auth config
and roles, and the lifecycle state of secrets and versions), so a row written or edited straight in the database
file is refused.

The key is derived with HKDF-SHA256 from the keyring's first term (terms are never dropped, so the key is
stable across rotations, exists from init on, is held only while unsealed, and cannot be deleted from the
database the way a stored key could). Each tag covers a record kind, the vault id and every field, encoded
as canonical JSON (floats by repr, which round-trips exactly through SQLite REAL), so a row cannot be
moved to another kind or vault or have any field changed. A tag does not stop replay: an old, genuine row
put back (a revoked token, an old policy body) still verifies. That needs state outside the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kinko.crypto.keyring import Keyring
from kinko.storage.interface import SecretRow, TokenRow, VersionRow

log = logging.getLogger("kinko.integrity")

#: Bump to retire every tag at once (a new derivation); tags carry it so a mismatch is explicit.
TAG_VERSION = "v1"
_INFO = b"kinko record integrity v1"
_KEY_TERM = 1


@dataclass(frozen=True)
class RecordMac:
    """Signs and verifies records of one vault. Compare with `hmac.compare_digest` only."""

    vault_id: str
    key: bytes = field(repr=False)

    @classmethod
    def from_keyring(cls, keyring: Keyring, vault_id: str) -> RecordMac:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=vault_id.encode(), info=_INFO)
        return cls(vault_id, hkdf.derive(keyring.key(_KEY_TERM)))

    def tag(self, kind: str, *fields: object) -> str:
        encoded = json.dumps([kind, self.vault_id, *fields], separators=(",", ":"), ensure_ascii=True)
        return f"{TAG_VERSION}:" + hmac.new(self.key, encoded.encode(), hashlib.sha256).hexdigest()

    def verify(self, mac: str | None, kind: str, *fields: object, label: str = "") -> bool:
        """True if `mac` is this record's tag. A failure is logged by kind and `label` (a name, never a value)."""
        ok = isinstance(mac, str) and hmac.compare_digest(mac.encode(), self.tag(kind, *fields).encode())
        if not ok:
            log.warning("integrity check failed for %s %r: record ignored (%s)", kind, label,
                        "written before integrity tags existed" if mac is None else "tampered or not kinko's")
        return ok

    # -- the records -----------------------------------------------------------------------------------------
    def token_tag(self, row: TokenRow) -> str:
        return self.tag("token", *_token_fields(row))

    def token_ok(self, row: TokenRow) -> bool:
        return self.verify(row.mac, "token", *_token_fields(row), label=row.accessor)

    def policy_tag(self, name: str, document: str) -> str:
        return self.tag("policy", name, document)

    def policy_ok(self, name: str, document: str, mac: str | None) -> bool:
        return self.verify(mac, "policy", name, document, label=name)

    def secret_tag(self, row: SecretRow) -> str:
        return self.tag("secret", *_secret_fields(row))

    def secret_ok(self, row: SecretRow) -> bool:
        return self.verify(row.mac, "secret", *_secret_fields(row), label=row.path)

    def version_tag(self, row: VersionRow) -> str:
        return self.tag("version", *_version_fields(row))

    def version_ok(self, row: VersionRow) -> bool:
        return self.verify(row.mac, "version", *_version_fields(row), label=f"{row.path}@{row.version}")

    def marker(self, name: str) -> str:
        """The tag that says a one-time step (e.g. tagging rows written before tags) is done for this vault."""
        return self.tag("marker", name)


#: Meta key of the marker that every secret and version row of this vault carries a tag (see `marker`).
LIFECYCLE_TAGS_MARKER = "lifecycle_tags"


def _real(value: float | None) -> float | None:
    """A REAL column as SQLite returns it (an int written there reads back as a float): tags must not differ."""
    return None if value is None else float(value)


def _secret_fields(row: SecretRow) -> tuple[object, ...]:
    """The lifecycle of a secret: which version is current, how many are kept, whether and when it was deleted."""
    return (row.path, int(row.current_version), int(row.max_versions), _real(row.created), _real(row.updated),
            _real(row.deleted), _real(row.scheduled_purge), row.incarnation)


def _version_fields(row: VersionRow) -> tuple[object, ...]:
    """A version's state but its ciphertext (the AEAD binds that to the version's identity already)."""
    return (row.path, int(row.version), bool(row.enabled), _real(row.not_before), _real(row.expires),
            row.content_type, row.tags_json, _real(row.created), _real(row.updated))


def _token_fields(row: TokenRow) -> tuple[object, ...]:
    """Every stored column but the tag itself (the accessor first: it names the record in logs)."""
    return (row.accessor, row.token_hash, row.parent, row.policies_json, row.display_name, row.meta_json,
            row.created, row.expires, row.max_expires, row.ttl, bool(row.renewable), row.num_uses, row.uses_left)
