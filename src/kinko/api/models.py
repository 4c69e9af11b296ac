"""Request bodies of the /v1 API (pydantic, so the OpenAPI document is exact) and value/time encoding."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kinko.core.model import SecretValue, VersionInfo, check_text
from kinko.errors import InvalidInput

MAX_TS = 253402300799  # 9999-12-31T23:59:59Z: later times cannot be formatted back
MAX_INT = 2**31 - 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class B64(Strict):
    base64: str = Field(max_length=4 * 1024 * 1024)


Value = str | B64
Time = float | str | None


class PutBody(Strict):
    value: Value | None = None
    data: dict[str, Value] | None = None
    content_type: str | None = Field(None, max_length=256, description="default: text, or Opaque with data")
    cas: int | None = Field(None, ge=0, le=MAX_INT)
    max_versions: int | None = Field(None, ge=0, le=10_000)
    not_before: Time = None
    expires: Time = None
    tags: dict[str, str] | None = None
    enabled: bool = True


class AttributesBody(Strict):
    enabled: bool | None = None
    not_before: Time = None
    expires: Time = None
    tags: dict[str, str] | None = None


class RestoreBody(Strict):
    backup: str = Field(max_length=8 * 1024 * 1024)


class InitBody(Strict):
    seal: Literal["shamir", "passphrase"] = "shamir"
    shares: int | None = Field(None, ge=1, le=255, description="default 5")
    threshold: int | None = Field(None, ge=1, le=255, description="default 3")
    passphrase: str | None = Field(None, max_length=1024)
    retention_days: int = Field(90, ge=0, le=MAX_INT)
    purge_protection: bool = False
    # Vault's names (`vault operator init`); PGP-wrapped shares and recovery keys are not supported
    secret_shares: int | None = Field(None, ge=1, le=255)
    secret_threshold: int | None = Field(None, ge=1, le=255)
    pgp_keys: list[str] | None = Field(None, max_length=255)
    root_token_pgp_key: str | None = Field(None, max_length=64 * 1024)
    stored_shares: int | None = Field(None, ge=0, le=255)
    recovery_shares: int | None = Field(None, ge=0, le=255)
    recovery_threshold: int | None = Field(None, ge=0, le=255)
    recovery_pgp_keys: list[str] | None = Field(None, max_length=255)

    def counts(self) -> tuple[int, int]:
        """(shares, threshold) from kinko's or Vault's fields (not both), refusing what kinko cannot do."""
        if self.pgp_keys or self.root_token_pgp_key or self.recovery_pgp_keys:
            raise InvalidInput("PGP-encrypted unseal keys are not supported")
        if self.stored_shares or self.recovery_shares or self.recovery_threshold:
            raise InvalidInput("stored shares and recovery keys (auto-unseal) are not supported")
        if (self.shares is not None and self.secret_shares is not None) or (
                self.threshold is not None and self.secret_threshold is not None):
            raise InvalidInput("give shares/threshold or Vault's secret_shares/secret_threshold, not both")
        shares = self.shares if self.shares is not None else self.secret_shares
        threshold = self.threshold if self.threshold is not None else self.secret_threshold
        return (5 if shares is None else shares), (3 if threshold is None else threshold)


class UnsealBody(Strict):
    share: str | None = Field(None, max_length=4096)
    passphrase: str | None = Field(None, max_length=1024)
    key_file: bool = False
    # Vault's name for a share; `reset` (drop the shares given so far) and `migrate` are not supported
    key: str | None = Field(None, max_length=4096)
    reset: bool = False
    migrate: bool = False

    def material(self) -> dict[str, Any]:
        if self.reset or self.migrate:
            raise InvalidInput("unseal reset and seal migration are not supported "
                               "(unfinished progress expires by itself after 10 minutes)")
        if self.key is not None and self.share is not None:
            raise InvalidInput("give share or Vault's key, not both")
        doc = self.model_dump(exclude={"key", "reset", "migrate"})
        if self.key is not None:
            doc["share"] = self.key
        return doc


# -- encoding -----------------------------------------------------------------------------------------------
def decode_one(value: Value, where: str) -> bytes:
    if isinstance(value, str):
        return check_text(value, where).encode("utf-8")
    try:
        return base64.b64decode(value.base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where}: base64 is not valid") from None


def body_value(body: PutBody) -> SecretValue:
    if (body.value is None) == (body.data is None):
        raise InvalidInput("give exactly one of value or data")
    if body.value is not None:
        return decode_one(body.value, "value")
    assert body.data is not None
    return {key: decode_one(item, f"data.{key}") for key, item in body.data.items()}


def encode_one(raw: bytes) -> str | dict[str, str]:
    """Text stays text; anything that is not UTF-8 travels as {"base64": ...}."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode()}


def encode_value(value: SecretValue) -> dict[str, Any]:
    if isinstance(value, bytes):
        return {"value": encode_one(value)}
    return {"data": {key: encode_one(item) for key, item in value.items()}}


def version_doc(info: VersionInfo) -> dict[str, Any]:
    return {**info.to_dict(), "key_term": info.key_term}


def parse_time(name: str, value: Time) -> float | None:
    """A Unix timestamp or an ISO 8601 time (UTC if no offset), within years 1970-9999."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{name} is not an ISO 8601 time or a Unix timestamp") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            value = moment.timestamp()
        except (OverflowError, ValueError):
            raise InvalidInput(f"{name} is out of range") from None
    if not 0 <= value <= MAX_TS:
        raise InvalidInput(f"{name} must be between 1970 and 9999")
    return float(value)
