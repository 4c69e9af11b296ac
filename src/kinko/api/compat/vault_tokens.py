"""Vault's token shapes: the `auth` block a create/renew/login answers with and the `data` of a lookup, and the
Vault-only fields of a create request (empty strings mean "not given", as the `vault`/`bao` CLI sends them)."""

from __future__ import annotations

import time
from typing import Any

from kinko.api.compat.vault_shapes import parse_vault_duration, rfc3339
from kinko.errors import InvalidInput
from kinko.vault import TokenInfo


def remaining(info: TokenInfo, now: float | None = None) -> int:
    """Seconds left before the token expires (0: it does not)."""
    if info.expires is None:
        return 0
    return max(0, round(info.expires - (time.time() if now is None else now)))  # a fresh 1h token: 3600


def vault_policies(info: TokenInfo) -> list[str]:
    """The policies as Vault lists them: sorted, with `default`, which every kinko token holds implicitly (not the
    root token, whose `root` is everything)."""
    if "root" in info.policies:
        return sorted(info.policies)
    return sorted({"default", *info.policies})


def auth_block(info: TokenInfo, token: str | None) -> dict[str, Any]:
    """Vault's `auth` object for a token just created or renewed (`token` None: renewed, not shown again)."""
    policies = vault_policies(info)
    return {"client_token": token or "", "accessor": info.accessor, "policies": policies,
            "token_policies": list(policies), "metadata": dict(info.metadata) or None,
            "lease_duration": remaining(info), "renewable": info.renewable, "entity_id": "",
            "token_type": "service", "orphan": info.parent is None, "mfa_requirement": None,
            "num_uses": info.num_uses}


def lookup_data(info: TokenInfo) -> dict[str, Any]:
    """Vault's lookup `data`. `id` stays empty: kinko never sends a token back after creating it (Vault echoes the
    token it was asked about; no client we test needs that, and an answer without it can be logged safely)."""
    return {"accessor": info.accessor, "creation_time": int(info.created), "creation_ttl": int(info.ttl or 0),
            "display_name": info.display_name, "entity_id": "",
            "expire_time": rfc3339(info.expires) or None,
            "explicit_max_ttl": int(info.max_expires - info.created) if info.max_expires else 0,
            "id": "", "issue_time": rfc3339(info.created), "meta": dict(info.metadata) or None,
            "num_uses": info.uses_left if info.num_uses else 0, "orphan": info.parent is None,
            "path": "auth/token/create", "policies": vault_policies(info), "renewable": info.renewable,
            "ttl": remaining(info), "type": "service"}


def optional_duration(value: Any, name: str) -> float | None:
    """A duration field that may be absent, null, "" or "0" (= not given)."""
    if value is None or value == "":
        return None
    seconds = parse_vault_duration(value, name)
    return seconds or None


def refuse_unsupported(body: dict[str, Any]) -> None:
    """Vault token options kinko does not implement: refused by name rather than silently ignored."""
    if body.get("no_default_policy"):
        raise InvalidInput("no_default_policy is not supported: every kinko token holds the default policy")
    if body.get("no_parent"):
        raise InvalidInput("no_parent (orphan tokens) is not supported: every kinko token is a child of its creator")
    if body.get("period") not in (None, "", 0, "0", "0s"):
        raise InvalidInput("period (periodic tokens) is not supported; use ttl and max_ttl")
    if body.get("type") not in (None, "", "service", "default"):
        raise InvalidInput("only service tokens are supported (type=service)")
    if body.get("id") not in (None, ""):
        raise InvalidInput("choosing a token's id is not supported")
