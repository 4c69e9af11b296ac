"""Token lifecycle on a real SQLite store: hashing, TTL via an injected clock, renew cap, uses, revocation."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from kinko.access.tokens import ROOT_TOKEN_META, TokenManager, TokenRequest, new_token
from kinko.errors import InvalidInput, NotFound, PermissionDenied
from kinko.storage.sqlite import SqliteStore
from tests.conftest import FixedClock

HOUR = 3600.0


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "v.db")


@pytest.fixture
def tokens(store: SqliteStore, clock: FixedClock) -> TokenManager:
    return TokenManager(store, clock)


def make(tokens: TokenManager, parent: str | None = None, **options: object) -> tuple[str, str]:
    request = TokenRequest(**{"policies": ["app"], **options})  # type: ignore[arg-type]
    token, info = tokens.create(request, parent)
    return token, info.accessor


def test_token_format_and_only_the_hash_is_stored(tokens: TokenManager, tmp_path: Path) -> None:
    token, accessor = make(tokens, display_name="ci")
    assert token.startswith("kinko_s_") and len(token) == len("kinko_s_") + 43
    assert accessor not in token
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("v.db*"))  # the database and its WAL
    assert token.encode() not in raw and token[8:].encode() not in raw
    assert hashlib.sha256(token.encode()).hexdigest().encode() in raw
    caller = tokens.authenticate(token, "10.0.0.1")
    assert caller.accessor == accessor and caller.policies == {"app"} and caller.remote_addr == "10.0.0.1"
    assert caller.subject == "token:ci"


def test_ttl_expiry_with_injected_clock(tokens: TokenManager, clock: FixedClock) -> None:
    token, _ = make(tokens, ttl=HOUR)
    clock.advance(HOUR - 1)
    tokens.authenticate(token)
    clock.advance(1)
    with pytest.raises(PermissionDenied):
        tokens.authenticate(token)


def test_renew_extends_but_never_past_max_ttl(tokens: TokenManager, clock: FixedClock) -> None:
    token, accessor = make(tokens, ttl=HOUR, max_ttl=2.5 * HOUR)
    clock.advance(0.9 * HOUR)
    info = tokens.renew(accessor)
    assert info.expires == pytest.approx(clock.now + HOUR)
    clock.advance(0.9 * HOUR)
    assert tokens.renew(accessor, increment=10 * HOUR).expires == pytest.approx(clock.now - 1.8 * HOUR + 2.5 * HOUR)
    clock.advance(0.7 * HOUR)  # 2.5 h after creation: the hard limit
    with pytest.raises(PermissionDenied):
        tokens.authenticate(token)
    with pytest.raises(NotFound):
        tokens.renew(accessor)


def test_non_renewable_token_refuses_renew(tokens: TokenManager) -> None:
    _, accessor = make(tokens, renewable=False)
    with pytest.raises(InvalidInput, match="not renewable"):
        tokens.renew(accessor)


def test_use_limit(tokens: TokenManager) -> None:
    token, accessor = make(tokens, num_uses=2)
    tokens.authenticate(token)
    tokens.authenticate(token)
    with pytest.raises(PermissionDenied):
        tokens.authenticate(token)
    with pytest.raises(NotFound):
        tokens.row(accessor)


def test_use_limited_token_cannot_have_children(tokens: TokenManager) -> None:
    _, accessor = make(tokens, num_uses=3)
    with pytest.raises(InvalidInput, match="use limit"):
        make(tokens, accessor)


def test_revoking_a_parent_revokes_all_descendants(tokens: TokenManager) -> None:
    parent, parent_acc = make(tokens)
    child, child_acc = make(tokens, parent_acc)
    grandchild, _ = make(tokens, child_acc)
    sibling, _ = make(tokens)
    assert tokens.revoke(parent_acc) == 3
    for token in (parent, child, grandchild):
        with pytest.raises(PermissionDenied):
            tokens.authenticate(token)
    tokens.authenticate(sibling)


def test_child_is_capped_by_parent_and_dies_with_an_expired_parent(tokens: TokenManager,
                                                                  clock: FixedClock) -> None:
    _, parent_acc = make(tokens, ttl=HOUR, max_ttl=2 * HOUR)
    child, child_acc = make(tokens, parent_acc, ttl=10 * HOUR, max_ttl=20 * HOUR)
    assert tokens.row(child_acc).max_expires == tokens.row(parent_acc).max_expires
    clock.advance(HOUR + 1)  # parent expired (not renewed), child's own TTL still running
    with pytest.raises(PermissionDenied):
        tokens.authenticate(child)


def test_init_root_token_is_adopted_and_revocable(store: SqliteStore, tokens: TokenManager) -> None:
    root = new_token("kinko_root_")
    store.put_meta(ROOT_TOKEN_META, hashlib.sha256(root.encode()).hexdigest().encode())
    caller = tokens.authenticate(root)
    assert caller.policies == {"root"}
    assert store.get_meta(ROOT_TOKEN_META) is None  # the meta hash is gone: the row is the only record
    row = tokens.row(caller.accessor or "")
    assert row.expires is None and row.display_name == "root"
    child, _ = make(tokens, caller.accessor)
    tokens.revoke(caller.accessor or "")
    for token in (root, child):
        with pytest.raises(PermissionDenied):
            TokenManager(store, lambda: 0.0).authenticate(token)  # a fresh process does not bring it back


@pytest.mark.parametrize("bad", [
    None, "", "kinko_s_", "kinko_s_short", "not-a-token", "kinko_s_" + "A" * 43, "kinko_x_" + "A" * 43,
    "kinko_s_" + "A" * 42 + "!", " kinko_s_" + "A" * 43, 12345,
])
def test_every_bad_token_gets_the_same_error(tokens: TokenManager, bad: object) -> None:
    with pytest.raises(PermissionDenied) as info:
        tokens.authenticate(bad)
    assert str(info.value) == "permission_denied: permission denied"


def test_expired_revoked_exhausted_look_identical(tokens: TokenManager, clock: FixedClock) -> None:
    expired, _ = make(tokens, ttl=1.0)
    revoked, revoked_acc = make(tokens)
    exhausted, _ = make(tokens, num_uses=1)
    tokens.authenticate(exhausted)
    tokens.revoke(revoked_acc)
    clock.advance(2)
    messages = set()
    for token in (expired, revoked, exhausted, new_token()):
        with pytest.raises(PermissionDenied) as info:
            tokens.authenticate(token)
        messages.add((type(info.value), info.value.message))
    assert messages == {(PermissionDenied, "permission denied")}


def test_request_validation(tokens: TokenManager) -> None:
    for options, message in [({"ttl": 0}, "ttl must be"), ({"ttl": 10, "max_ttl": 5}, "max_ttl must be"),
                             ({"num_uses": -1}, "num_uses"), ({"display_name": ""}, "display_name"),
                             ({"policies": "root"}, "policies must be a list"),
                             ({"metadata": {"k": 1}}, "metadata")]:
        with pytest.raises(InvalidInput, match=message):
            make(tokens, **options)


def test_expired_tokens_are_cleaned_up(tokens: TokenManager, clock: FixedClock, tmp_path: Path) -> None:
    token, _ = make(tokens, ttl=1.0)
    clock.advance(5)
    with pytest.raises(PermissionDenied):
        tokens.authenticate(token)
    count = sqlite3.connect(tmp_path / "v.db").execute("SELECT count(*) FROM tokens").fetchone()[0]
    assert count == 0
