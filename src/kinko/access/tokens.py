"""Tokens: creation, authentication, renewal and revocation. Only a token's SHA-256 hash is ever stored.

A token is `kinko_s_` (service) or `kinko_root_` (the init root token) + 43 base64url characters (256 random
bits). The accessor is an independent random id, safe to log and to revoke by. Every way a token can be bad
(missing, malformed, unknown, expired, revoked, used up, or a parent that is gone) raises the same
PermissionDenied("permission denied"), so a caller learns nothing about why.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kinko.access.integrity import RecordMac
from kinko.core.model import Caller, check_text, iso
from kinko.errors import InvalidInput, NotFound, PermissionDenied
from kinko.storage.fresh import FreshCache
from kinko.storage.interface import Store, TokenRow

SERVICE_PREFIX, ROOT_PREFIX = "kinko_s_", "kinko_root_"
_TOKEN = re.compile(r"kinko_(?:s|root)_[A-Za-z0-9_-]{43}")
#: Meta key where lifecycle.init leaves the root token's hash until it is adopted into the tokens table.
ROOT_TOKEN_META = "root_token_sha256"
#: Its integrity tag (kind "root_token"), written by init: a hash planted in the meta table is never adopted.
ROOT_TOKEN_MAC_META = "root_token_sha256.mac"
DEFAULT_TTL = 24 * 3600.0
DEFAULT_MAX_TTL = 32 * 24 * 3600.0
MAX_DEPTH = 16
MAX_META = 32
def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = SERVICE_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_accessor() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class TokenInfo:
    """Everything about a token except the token itself (safe to show, log and return from lookups)."""

    accessor: str
    policies: tuple[str, ...]
    display_name: str
    metadata: Mapping[str, str]
    created: float
    expires: float | None
    max_expires: float | None
    ttl: float | None
    renewable: bool
    num_uses: int
    uses_left: int
    parent: str | None

    @classmethod
    def from_row(cls, row: TokenRow) -> TokenInfo:
        return cls(row.accessor, tuple(json.loads(row.policies_json)), row.display_name,
                   json.loads(row.meta_json), row.created, row.expires, row.max_expires, row.ttl, row.renewable,
                   row.num_uses, row.uses_left, row.parent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accessor": self.accessor, "policies": list(self.policies), "display_name": self.display_name,
            "metadata": dict(self.metadata), "created": iso(self.created), "expires": iso(self.expires),
            "max_expires": iso(self.max_expires), "ttl": self.ttl, "renewable": self.renewable,
            "num_uses": self.num_uses, "uses_left": self.uses_left, "parent": self.parent,
        }


@dataclass(frozen=True)
class TokenRequest:
    """What a caller asks for; validated by TokenManager.create."""

    policies: Sequence[str]
    ttl: float | None = DEFAULT_TTL
    max_ttl: float | None = None
    num_uses: int = 0
    display_name: str = "token"
    renewable: bool = True
    metadata: Mapping[str, str] = field(default_factory=dict)


def check_request(req: TokenRequest) -> None:
    if isinstance(req.policies, str) or not all(isinstance(p, str) and p for p in req.policies):
        raise InvalidInput("policies must be a list of policy names")
    for name, value in (("ttl", req.ttl), ("max_ttl", req.max_ttl)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
            raise InvalidInput(f"{name} must be a positive number of seconds")
    if req.ttl is not None and req.max_ttl is not None and req.max_ttl < req.ttl:
        raise InvalidInput("max_ttl must be at least ttl")
    if req.ttl is None and req.max_ttl is not None:
        raise InvalidInput("a token without ttl cannot have a max_ttl")
    if isinstance(req.num_uses, bool) or not isinstance(req.num_uses, int) or req.num_uses < 0:
        raise InvalidInput("num_uses must be 0 (unlimited) or a positive count")
    if not isinstance(req.display_name, str) or not 0 < len(req.display_name) <= 128:
        raise InvalidInput("display_name must be 1-128 characters")
    meta = req.metadata
    if not isinstance(meta, Mapping) or len(meta) > MAX_META or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 128 and len(v) <= 512 for k, v in meta.items()):
        raise InvalidInput(f"metadata maps at most {MAX_META} text keys (<=128) to text values (<=512)")
    check_text(req.display_name, "display_name")
    for meta_key, meta_value in meta.items():
        check_text(meta_key, "a metadata key")
        check_text(meta_value, f"metadata {meta_key!r}")


class TokenManager:
    """Token rules on top of the store. No authorization here: the Vault checks capabilities first.

    With `macs` (the Vault always passes it) every row written carries an integrity tag and every row read
    must verify: a row inserted or edited in the database file directly is treated as absent.
    """

    def __init__(self, store: Store, clock: Callable[[], float],
                 macs: Callable[[], RecordMac] | None = None) -> None:
        self._store = store
        self._clock = clock
        self._macs = macs
        self._adopted = False
        # Verified rows by token hash / accessor, while nothing was committed anywhere (a revocation, a use spent
        # or an expiry clean-up in any process empties it): the hot path's SELECT and tag check, skipped.
        self._fresh: FreshCache[TokenRow | None] = FreshCache(store)

    def forget(self) -> None:
        """Drop cached rows (on seal: their tags were checked with keys the vault no longer holds)."""
        self._fresh.clear()

    # -- integrity ---------------------------------------------------------------------------------------------
    def _signed(self, row: TokenRow) -> TokenRow:
        return row if self._macs is None else replace(row, mac=self._macs().token_tag(row))

    def _verified(self, row: TokenRow | None) -> TokenRow | None:
        """The row if its tag verifies (or tags are off), else None: a forged row is no row."""
        if row is None or self._macs is None or self._macs().token_ok(row):
            return row
        return None

    def _get(self, accessor: str) -> TokenRow | None:
        return self._fresh.get(("accessor", accessor), lambda: self._verified(self._store.get_token(accessor)))

    def adopt_root_token(self) -> None:
        """Turn init's root-token hash (a meta key) into a real token row once, so it can be revoked."""
        if self._adopted:
            return
        stored = self._store.get_meta(ROOT_TOKEN_META)
        if stored is not None and self._macs is not None:
            tag = self._store.get_meta(ROOT_TOKEN_MAC_META)
            if not self._macs().verify(tag.decode(errors="replace") if tag else None, "root_token", stored.decode()):
                stored = None  # planted, or left by a vault initialised before tags existed: not adopted
        if stored is not None:
            row = TokenRow(new_accessor(), stored.decode(), None, json.dumps(["root"]), "root", "{}",
                           self._clock(), None, None, None, False, 0, 0)
            self._store.adopt_root_token(ROOT_TOKEN_META, self._signed(row))  # False = another process won the race
        self._adopted = True

    # -- authentication ----------------------------------------------------------------------------------------
    def _live(self, row: TokenRow | None, now: float) -> bool:
        return row is not None and (row.expires is None or now < row.expires) and (
            row.num_uses == 0 or row.uses_left > 0)

    def resolve(self, token: object, *, cached: bool = True) -> TokenRow:
        """The live row for a token string, without consuming a use. PermissionDenied for anything else.
        `cached` False: read the row even if nothing seems to have changed (a retry after a lost race)."""
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise PermissionDenied()
        self.adopt_root_token()
        digest = token_hash(token)

        def load() -> TokenRow | None:
            return self._verified(self._store.get_token_by_hash(digest))

        row = self._fresh.get(("hash", digest), load) if cached else load()
        # The index finds the row; compare_digest keeps the final comparison constant-time.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise PermissionDenied()
        now = self._clock()
        if not self._live(row, now):
            self._store.revoke_token_tree(row.accessor)  # expired: clean it and its children up now
            raise PermissionDenied()
        self._check_ancestors(row, now)
        return row

    def _check_ancestors(self, row: TokenRow, now: float) -> None:
        """A child is only valid while every ancestor is (parents that expired take their children along)."""
        parent, depth = row.parent, 0
        while parent is not None and depth <= MAX_DEPTH:
            ancestor = self._get(parent)
            if ancestor is None or not self._live(ancestor, now):
                self._store.revoke_token_tree(parent if ancestor is not None else row.accessor)
                raise PermissionDenied()
            parent, depth = ancestor.parent, depth + 1

    def authenticate(self, token: object, remote_addr: str | None = None, *, consume: bool = True) -> Caller:
        """The Caller a token stands for; spends one use of a use-limited token unless `consume` is False (a
        token's self-lookup and self-renewal spend none: Vault's rule)."""
        row = self.resolve(token)
        if row.num_uses > 0 and consume:
            self._consume(row, token)
        return Caller(subject=f"token:{row.display_name}", policies=frozenset(json.loads(row.policies_json)),
                      accessor=row.accessor, remote_addr=remote_addr)

    def _consume(self, row: TokenRow, token: object) -> None:
        """Spend one use. The count is part of the tag, so this is a compare-and-set on it (re-read on a race)."""
        for _ in range(20):
            spent = self._signed(replace(row, uses_left=row.uses_left - 1))
            if self._store.consume_token_use(row.accessor, row.uses_left, spent.mac):
                return
            row = self.resolve(token, cached=False)  # another request used it meanwhile (denied once all are gone)
        raise PermissionDenied()

    # -- management --------------------------------------------------------------------------------------------
    def row(self, accessor: str) -> TokenRow:
        self.adopt_root_token()
        row = self._get(accessor) if isinstance(accessor, str) else None
        if row is None or not self._live(row, self._clock()):
            raise NotFound("no such token (unknown accessor, expired or revoked)")
        return row

    def accessor_of(self, token: str) -> str:
        try:
            return self.resolve(token).accessor
        except PermissionDenied:
            raise NotFound("no such token (unknown, expired or revoked)") from None

    def create(self, request: TokenRequest, parent: str | None) -> tuple[str, TokenInfo]:
        """Store a new token (the child of `parent` if given). Returns the token, shown only this once."""
        check_request(request)
        self.adopt_root_token()
        now = self._clock()
        ttl = None if request.ttl is None else float(request.ttl)
        max_ttl = None if ttl is None else float(request.max_ttl or max(DEFAULT_MAX_TTL, ttl))
        max_expires = None if max_ttl is None else now + max_ttl
        if parent is not None:
            parent_row = self.row(parent)
            if parent_row.num_uses > 0:
                raise InvalidInput("a token with a use limit cannot create child tokens")
            if self._depth(parent_row) >= MAX_DEPTH:
                raise InvalidInput(f"tokens may be nested at most {MAX_DEPTH} deep")
            # A child never outlives its parent's hard limit.
            if parent_row.max_expires is not None:
                max_expires = parent_row.max_expires if max_expires is None else min(max_expires,
                                                                                     parent_row.max_expires)
        expires = None if ttl is None else now + ttl
        if expires is not None and max_expires is not None:
            expires = min(expires, max_expires)
        token = new_token()
        policies = sorted(set(request.policies))
        row = self._signed(TokenRow(
            new_accessor(), token_hash(token), parent, json.dumps(policies), request.display_name,
            json.dumps(dict(request.metadata), sort_keys=True), now, expires, max_expires, ttl,
            bool(request.renewable), request.num_uses, request.num_uses))
        self._store.insert_token(row)
        return token, TokenInfo.from_row(row)

    def _depth(self, row: TokenRow) -> int:
        depth, parent = 0, row.parent
        while parent is not None and depth <= MAX_DEPTH:
            ancestor = self._get(parent)
            parent, depth = (ancestor.parent if ancestor else None), depth + 1
        return depth

    def renew(self, accessor: str, increment: float | None = None) -> TokenInfo:
        """Push expiry to now + increment (default: the token's ttl), never past its max TTL."""
        row = self.row(accessor)
        if row.ttl is None:
            return TokenInfo.from_row(row)  # never expires: nothing to renew
        if not row.renewable:
            raise InvalidInput("this token is not renewable")
        if increment is not None and (isinstance(increment, bool) or not isinstance(increment, int | float)
                                      or increment <= 0):
            raise InvalidInput("increment must be a positive number of seconds")
        expires = self._clock() + float(increment or row.ttl)
        if row.max_expires is not None:
            expires = min(expires, row.max_expires)
        renewed = self._signed(replace(row, expires=expires))
        self._store.set_token_expiry(row.accessor, expires, renewed.mac)
        return TokenInfo.from_row(self._get(row.accessor) or renewed)

    def revoke(self, accessor: str) -> int:
        """Revoke a token and every token created under it; returns how many were revoked."""
        self.row(accessor)
        return self._store.revoke_token_tree(accessor)

    def list(self) -> list[TokenInfo]:
        self.adopt_root_token()
        now = self._clock()
        return [TokenInfo.from_row(r) for r in self._store.list_tokens()
                if self._live(r, now) and self._verified(r) is not None]
