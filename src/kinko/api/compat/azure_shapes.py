"""Key Vault's shapes over kinko's model: names and version ids, content types and tags, bundles and list items."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kinko.core.model import DEFAULT_CONTENT_TYPE, MAX_VERSION, SecretInfo, VersionInfo
from kinko.core.names import validate_path, validate_prefix
from kinko.core.types import KINKO_KINDS
from kinko.errors import InvalidInput, NotFound
from kinko.vault import DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS, VaultStatus

DEFAULT_PREFIX = "azure/"
NAME_PATTERN = r"^[0-9a-zA-Z-]{1,127}$"
VERSION_PATTERN = r"^[0-9a-fA-F]{32}$"
_NAME = re.compile(NAME_PATTERN[1:-1])
_VERSION = re.compile(VERSION_PATTERN[1:-1])
#: Where a Key Vault contentType that is not one of kinko's typed kinds is kept (on a "text" secret).
CONTENT_TYPE_TAG = "kinko:content-type"
#: kinko's single-value kinds: a contentType naming one stores the secret as that kind (validated as such).
TYPED_KINDS = frozenset(KINKO_KINDS - {DEFAULT_CONTENT_TYPE})
MAX_RESULTS = 25


def check_prefix(prefix: str) -> str:
    """The kinko path prefix Key Vault names live under: "" (the root) or a path, returned ending in '/'."""
    base = validate_prefix(prefix)
    if base:
        validate_path(base)  # also refuses the reserved root
    return base + "/" if base else ""


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput("a Key Vault secret name is 1-127 characters: letters, digits and '-'")
    return name


def version_id(number: int) -> str:
    """A kinko version number as a Key Vault version id: the number in 32 lower-case hex digits."""
    return f"{number:032x}"


def version_number(vid: str) -> int:
    if not _VERSION.fullmatch(vid):
        raise InvalidInput("a Key Vault secret version is 32 hex digits")
    number = int(vid, 16)
    if not 1 <= number <= MAX_VERSION:
        raise NotFound(f"no secret version {vid}")
    return number


@dataclass(frozen=True)
class Recovery:
    """kinko's retention settings as Key Vault's recoveryLevel and recoverableDays."""

    days: int
    protected: bool

    @classmethod
    def of(cls, status: VaultStatus) -> Recovery:
        return cls(status.retention_days or DEFAULT_RETENTION_DAYS, bool(status.purge_protection))

    def doc(self) -> dict[str, Any]:
        level = "Recoverable" if self.days >= MAX_RETENTION_DAYS else "CustomizedRecoverable"
        return {"recoveryLevel": level if self.protected else level + "+Purgeable", "recoverableDays": self.days}


@dataclass(frozen=True)
class Place:
    """Where Key Vault names live: the kinko prefix, the vault URL ids start with (the one the client used), and
    the vault's recovery settings every attributes document shows."""

    prefix: str
    base: str
    recovery: Recovery

    def path(self, name: str) -> str:
        return self.prefix + check_name(name)

    def name(self, path: str) -> str | None:
        """The Key Vault name of a kinko path, None when it has none (outside the prefix, nested, other chars)."""
        rest = path[len(self.prefix):] if path.startswith(self.prefix) else ""
        return rest if _NAME.fullmatch(rest) else None

    def secret_id(self, name: str, version: int | None = None) -> str:
        return f"{self.base}/secrets/{name}" + ("" if version is None else f"/{version_id(version)}")

    def recovery_id(self, name: str) -> str:
        return f"{self.base}/deletedsecrets/{name}"

    def next_link(self, route: str, api_version: str, token: str, size: int) -> str:
        # api-version is one of API_VERSIONS and tokens are names or version ids: nothing here needs escaping.
        return f"{self.base}{route}?api-version={api_version}&$skiptoken={token}&maxresults={size}"


# -- content type and tags ----------------------------------------------------------------------------------
def split_content_type(content_type: str | None) -> tuple[str, str | None]:
    """(kinko content type, value for CONTENT_TYPE_TAG) for a Key Vault contentType."""
    if content_type is None:
        return DEFAULT_CONTENT_TYPE, None
    if content_type in TYPED_KINDS:
        return content_type, None
    return DEFAULT_CONTENT_TYPE, content_type


def user_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Tags a Key Vault caller gave: the reserved content-type tag is refused."""
    if tags and CONTENT_TYPE_TAG in tags:
        raise InvalidInput(f"the tag name {CONTENT_TYPE_TAG!r} is reserved (it holds the Key Vault contentType)")
    return dict(tags or {})


def with_content_tag(tags: Mapping[str, str], content_tag: str | None) -> dict[str, str]:
    return {**tags, CONTENT_TYPE_TAG: content_tag} if content_tag is not None else dict(tags)


def described(info: VersionInfo) -> dict[str, Any]:
    """contentType and tags of a version as Key Vault shows them."""
    tags = dict(info.attributes.tags)
    content_type = tags.pop(CONTENT_TYPE_TAG, None)
    if content_type is None and info.attributes.content_type != DEFAULT_CONTENT_TYPE:
        content_type = info.attributes.content_type
    doc: dict[str, Any] = {} if content_type is None else {"contentType": content_type}
    return {**doc, "tags": tags} if tags else doc


# -- documents ------------------------------------------------------------------------------------------------
def attributes(info: VersionInfo, recovery: Recovery) -> dict[str, Any]:
    attrs = info.attributes
    doc: dict[str, Any] = {"enabled": attrs.enabled}
    if attrs.not_before is not None:
        doc["nbf"] = int(attrs.not_before)
    if attrs.expires is not None:
        doc["exp"] = int(attrs.expires)
    return {**doc, "created": int(info.created), "updated": int(info.updated), **recovery.doc()}


def secret_bundle(place: Place, name: str, info: VersionInfo, value: str | None = None) -> dict[str, Any]:
    attrs = attributes(info, place.recovery)
    doc = {"id": place.secret_id(name, info.version), "attributes": attrs, **described(info)}
    return doc if value is None else {"value": value, **doc}


def secret_item(place: Place, name: str, info: VersionInfo, *, versioned: bool) -> dict[str, Any]:
    secret_id = place.secret_id(name, info.version if versioned else None)
    return {"id": secret_id, "attributes": attributes(info, place.recovery), **described(info)}


def summary_bundle(place: Place, name: str, info: SecretInfo) -> dict[str, Any]:
    """A secret known only by its secret-level facts (deleted secrets: kinko does not show their versions)."""
    attrs = {"created": int(info.created), "updated": int(info.updated), **place.recovery.doc()}
    return {"id": place.secret_id(name, info.current_version), "attributes": attrs}


def deleted_bundle(place: Place, name: str, info: SecretInfo, *, versioned: bool = True) -> dict[str, Any]:
    doc = summary_bundle(place, name, info)
    if not versioned:
        doc["id"] = place.secret_id(name)
    return {
        "recoveryId": place.recovery_id(name), "deletedDate": int(info.deleted or 0),
        "scheduledPurgeDate": int(info.scheduled_purge or 0), **doc,
    }


# -- paging ---------------------------------------------------------------------------------------------------
Key = TypeVar("Key", str, int)


def page(keys: Sequence[Key], after: Key | None, size: int | None) -> tuple[list[Key], bool]:
    """The next `size` keys (sorted) after `after`, and whether more follow."""
    size = size or MAX_RESULTS
    rest = [k for k in sorted(keys) if after is None or k > after]
    return rest[:size], len(rest) > size
