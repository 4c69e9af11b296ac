"""Secret records' pure rules: a write's arguments, attribute changes, readable versions, and a row's info."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NamedTuple

from kinko.core.model import (
    Attributes,
    SecretInfo,
    SecretValue,
    VersionInfo,
    check_tags,
    check_time,
    check_value,
    encode_payload,
    iso,
)
from kinko.core.names import validate_path
from kinko.crypto.barrier import term_of
from kinko.errors import InvalidInput, SecretDisabled, SecretExpired, SecretNotYetValid, VersionDestroyed
from kinko.storage.interface import LiveVersion, SecretRow, VersionRow
from kinko.vault.types import KEEP, Keep


class PutArguments(NamedTuple):
    """A write's checked arguments: the encoded value and its attributes as stored."""

    payload: bytes
    tags_json: str
    not_before: float | None
    expires: float | None


def put_arguments(
    path: str, value: SecretValue, content_type: str, not_before: float | None, expires: float | None,
    tags: Mapping[str, str] | None, cas: int | None, max_versions: int | None,
) -> PutArguments:
    """Check a write's arguments (before it is authorized) and encode its value with the type's metadata."""
    validate_path(path)
    check_value(value)
    from kinko.core.types import validate_secret  # lazy: x509 parsing is only needed on writes

    metadata = validate_secret(content_type, value)
    not_before, expires = check_time("not_before", not_before), check_time("expires", expires)
    check_window(not_before, expires)
    tags = check_tags(tags or {})
    if cas is not None and (isinstance(cas, bool) or cas < 0):
        raise InvalidInput("cas must be a version number >= 0")
    if max_versions is not None and not 0 <= max_versions <= 10_000:
        raise InvalidInput("max_versions must be between 0 (unlimited) and 10000")
    return PutArguments(encode_payload(value, metadata), json.dumps(tags, sort_keys=True), not_before, expires)


def check_window(not_before: float | None, expires: float | None) -> None:
    """Refuse a validity window that ends before it starts."""
    if not_before is not None and expires is not None and expires <= not_before:
        raise InvalidInput("expires must be later than not_before")


def changed_attributes(
    row: VersionRow, enabled: bool | None, not_before: float | Keep | None, expires: float | Keep | None,
    tags: Mapping[str, str] | None, content_type: str | None,
) -> VersionRow:
    """The version with the attributes asked for (unset ones keep their value); `updated` and the tag not yet."""
    nbf = row.not_before if not_before is KEEP else check_time("not_before", not_before)
    exp = row.expires if expires is KEEP else check_time("expires", expires)
    check_window(nbf, exp)
    if content_type is not None and content_type != row.content_type:
        raise InvalidInput("content_type is fixed per version; write a new version to change it")
    return row._replace(
        enabled=row.enabled if enabled is None else bool(enabled), not_before=nbf, expires=exp,
        tags_json=row.tags_json if tags is None else json.dumps(check_tags(tags), sort_keys=True),
    )


def check_readable(path: str, row: LiveVersion | VersionRow, now: float) -> None:
    """Refuse a version that is destroyed, disabled, not yet valid or expired at `now`."""
    nbf, exp = row.not_before, row.expires
    if row.value_ct and row.enabled and (nbf is None or now >= nbf) and (exp is None or now < exp):
        return  # the common case, without building the error context below
    where = f"secret {path!r} version {row.version}"
    if not row.value_ct:  # destroyed: whatever its flags say, there is nothing left to open
        raise VersionDestroyed(f"{where} was destroyed")
    if not row.enabled:
        raise SecretDisabled(f"{where} is disabled")
    if row.not_before is not None and now < row.not_before:
        raise SecretNotYetValid(f"{where} is not valid before {iso(row.not_before)}")
    if row.expires is not None and now >= row.expires:
        raise SecretExpired(f"{where} expired at {iso(row.expires)}")


def live_matches(row: LiveVersion, secret: SecretRow, stored: VersionRow, asked: int | None) -> bool:
    """Whether a live row is the one the tagged secret and version rows describe (`asked`: the version asked for,
    None for the current one)."""
    return (secret.mac == row.secret_mac and stored.mac == row.mac and secret.incarnation == row.incarnation
            and (asked is not None or secret.current_version == row.version)
            and (stored.value_ct, stored.enabled, stored.not_before, stored.expires, stored.content_type,
                 stored.tags_json, stored.created, stored.updated)
            == (row.value_ct, row.enabled, row.not_before, row.expires, row.content_type, row.tags_json,
                row.created, row.updated))


def version_info(row: VersionRow) -> VersionInfo:
    """What a stored version says about itself (no decryption)."""
    return _version_info(row.path, row, row.key_term)


def secret_info(row: SecretRow) -> SecretInfo:
    return SecretInfo(row.path, row.current_version, row.max_versions, row.created, row.updated,
                      row.deleted, row.scheduled_purge)


def live_info(source: tuple[str, LiveVersion | VersionRow]) -> VersionInfo:
    """The info of a version read by `get` (the live read has no path or key term: the term is in the header)."""
    path, row = source
    return _version_info(path, row, term_of(row.value_ct))


def _version_info(path: str, row: LiveVersion | VersionRow, key_term: int) -> VersionInfo:
    tags = {} if row.tags_json == "{}" else json.loads(row.tags_json)
    attributes = Attributes(bool(row.enabled), row.not_before, row.expires, row.content_type, tags)
    return VersionInfo(path, row.version, attributes, row.created, row.updated, key_term, not row.value_ct)
