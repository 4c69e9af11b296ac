"""Access control through the Vault service: tokens, policies, audit, fail-closed, canary redaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.crypto.seal import SealType
from kinko.errors import AuditFailed, InvalidInput, NotFound, PermissionDenied, Sealed
from kinko.vault import Vault, open_vault
from tests.conftest import ENGINES, FixedClock, first_bad_line, storage_for

CANARY = b"kinko-canary-7f3a9c1e"
APP = """
name: app
rules:
  - {path: "team/app/*", capabilities: [read, list, create, update]}
  - {path: "team/app/admin", capabilities: [deny]}
"""


@pytest.fixture(params=ENGINES)
def vault_storage(request: pytest.FixtureRequest) -> Path | str:
    """This module's vaults run on SQLite and on a real PostgreSQL."""
    return storage_for(request)


@pytest.fixture
def setup(tmp_path: Path, clock: FixedClock, vault_storage: Path | str) -> Iterator[tuple[Vault, Caller]]:
    vault = open_vault(vault_storage, create=True, clock=clock)
    result = vault.init(seal=SealType.KEY_FILE, key_file=tmp_path / "k")
    vault.unseal(key_file=tmp_path / "k")
    yield vault, vault.authenticate(result.root_token)
    vault.close()


def test_policy_token_grants_exactly_its_rules(setup: tuple[Vault, Caller]) -> None:
    vault, root = setup
    vault.write_policy(root, APP)
    token, info = vault.create_token(root, policies=["app"], display_name="app")
    app = vault.authenticate(token)
    vault.put(app, "team/app/db", b"x")
    assert vault.get(app, "team/app/db").value == b"x"
    assert vault.list(app, "team/app").keys == ("db",)
    for action in (lambda: vault.put(app, "team/app/admin", b"x"), lambda: vault.get(app, "team/web/db"),
                   lambda: vault.delete(app, "team/app/db"), lambda: vault.rotate(app),
                   lambda: vault.write_policy(app, APP.replace("name: app", "name: mine")),
                   lambda: vault.lookup_token(app, accessor=vault.lookup_token(root).accessor)):
        with pytest.raises(PermissionDenied):
            action()
    assert vault.lookup_token(app).accessor == info.accessor  # `default`: a token may look itself up


def test_grant_rules_for_create_token(setup: tuple[Vault, Caller]) -> None:
    vault, root = setup
    vault.write_policy(root, APP)
    officer = vault.authenticate(vault.create_token(root, policies=["secrets-officer"])[0])
    with pytest.raises(PermissionDenied):  # creating tokens needs a rule on sys/tokens/create
        vault.create_token(officer, policies=["secrets-officer"])
    admin = vault.authenticate(vault.create_token(root, policies=["admin"])[0])
    vault.create_token(admin, policies=["app"])  # admin has sudo: may grant what it does not hold
    for request in ({"policies": ["root"]}, {"policies": ["app"], "ttl": None}):  # root-only
        with pytest.raises(PermissionDenied):
            vault.create_token(admin, **request)  # type: ignore[arg-type]
    vault.write_policy(root, 'name: minter\nrules: [{path: "sys/tokens/create", capabilities: [create]}]')
    minter = vault.authenticate(vault.create_token(root, policies=["minter", "app"])[0])
    vault.create_token(minter, policies=["app"])  # a subset of its own policies: fine
    with pytest.raises(PermissionDenied):
        vault.create_token(minter, policies=["admin"])
    with pytest.raises(InvalidInput, match="unknown policy 'nope'"):
        vault.create_token(root, policies=["nope"])


def test_revoking_the_root_token_and_cascade(setup: tuple[Vault, Caller], vault_storage: Path | str,
                                             clock: FixedClock) -> None:
    vault, root = setup
    child_token, _ = vault.create_token(root, policies=["admin"])
    child = vault.authenticate(child_token)
    assert vault.revoke_token(root) == 2  # itself and the admin token it created
    again = open_vault(vault_storage, clock=clock)  # another process
    with pytest.raises(PermissionDenied):
        again.authenticate(child_token)
    with pytest.raises(NotFound):
        vault.lookup_token(child)  # a stale in-memory Caller finds its token gone
    assert Caller.local_operator().policies == {"root"}
    vault.put(Caller.local_operator(), "still/works", b"v")  # the local operator is unaffected


def test_lookup_renew_revoke_by_accessor(setup: tuple[Vault, Caller], clock: FixedClock) -> None:
    vault, root = setup
    _, info = vault.create_token(root, policies=["secrets-reader"], ttl=60, max_ttl=120)
    assert vault.lookup_token(root, accessor=info.accessor).policies == ("secrets-reader",)
    clock.advance(50)
    assert vault.renew_token(root, accessor=info.accessor).expires == clock.now + 60
    assert [t.accessor for t in vault.list_tokens(root)].count(info.accessor) == 1
    assert vault.revoke_accessor(root, info.accessor) == 1
    with pytest.raises(NotFound):
        vault.lookup_token(root, accessor=info.accessor)


def test_policy_management(setup: tuple[Vault, Caller]) -> None:
    vault, root = setup
    vault.write_policy(root, APP)
    assert "app" in vault.list_policies(root) and "secrets-reader" in vault.list_policies(root)
    assert vault.read_policy(root, "app").rules[1].capabilities == {"deny"}
    assert vault.read_policy(root, "admin").builtin
    for name in ("root", "admin", "secrets-reader"):
        with pytest.raises(InvalidInput, match="built in"):
            vault.delete_policy(root, name)
        with pytest.raises(InvalidInput, match="built in"):
            vault.write_policy(root, APP.replace("name: app", f"name: {name}"))
    vault.delete_policy(root, "app")
    with pytest.raises(NotFound):
        vault.read_policy(root, "app")


def test_a_deleted_policy_stops_granting_immediately(setup: tuple[Vault, Caller]) -> None:
    vault, root = setup
    vault.write_policy(root, APP)
    app = vault.authenticate(vault.create_token(root, policies=["app"])[0])
    vault.put(app, "team/app/x", b"1")
    vault.delete_policy(root, "app")
    with pytest.raises(PermissionDenied):
        vault.get(app, "team/app/x")


def test_audit_records_every_request_and_never_the_canary(setup: tuple[Vault, Caller], tmp_path: Path) -> None:
    vault, root = setup
    log = tmp_path / "audit.log"
    vault.enable_audit(log)
    token, _ = vault.create_token(root, policies=["secrets-reader"])
    reader = vault.authenticate(token)
    vault.put(root, "team/app/db", {"password": CANARY}, content_type="Opaque")
    vault.get(reader, "team/app/db")
    with pytest.raises(PermissionDenied):
        vault.put(reader, "team/app/db", CANARY)
    with pytest.raises(PermissionDenied):
        vault.authenticate("kinko_s_" + "x" * 43)
    text = log.read_text()
    assert CANARY.decode() not in text and token not in text and token[8:] not in text
    records = [json.loads(line) for line in text.splitlines()]
    ops = [(r["operation"], r["outcome"], r["accessor"]) for r in records]
    assert ("secret.get", "allowed", reader.accessor) in ops
    assert ("secret.put", "denied", reader.accessor) in ops
    assert ("token.authenticate", "denied", None) in ops
    hashed = vault.audit_hash(root, CANARY)
    assert hashed.startswith("hmac-sha256:") and hashed in text  # the admin can check "was this written?"
    assert first_bad_line(log) is None


def test_audit_fail_closed_leaves_nothing_done(setup: tuple[Vault, Caller]) -> None:
    vault, root = setup
    vault.enable_audit("/dev/full")
    with pytest.raises(AuditFailed):
        vault.put(root, "team/app/db", CANARY)
    with pytest.raises(AuditFailed):
        vault.create_token(root, policies=["admin"])
    vault._guard.audit = None  # audit off again, to look at what is stored
    with pytest.raises(NotFound):
        vault.get(root, "team/app/db")
    assert [t.display_name for t in vault.list_tokens(root)] == ["root"]


def test_audit_salt_is_sealed_per_vault(setup: tuple[Vault, Caller], tmp_path: Path, clock: FixedClock,
                                        vault_storage: Path | str) -> None:
    vault, root = setup
    first = vault.audit_hash(root, b"v")
    assert vault.audit_hash(root, b"v") == first != vault.audit_hash(root, b"w")
    assert len(vault._store.get_meta("audit_salt") or b"") > 32  # stored sealed (frame + nonce + tag)
    other = open_vault(vault_storage, clock=clock)  # another process: same salt once unsealed
    other.unseal(key_file=tmp_path / "k")
    assert other.audit_hash(Caller.local_operator(), b"v") == first
    reader = vault.authenticate(vault.create_token(Caller.local_operator(), policies=["secrets-reader"])[0])
    vault.seal(root)
    with pytest.raises(Sealed):
        vault._access.audit_salt()
    with pytest.raises(Sealed):  # tokens are verified with a key behind the barrier: none is served sealed
        vault.create_token(Caller.local_operator(), policies=["secrets-reader"])
    with pytest.raises(PermissionDenied):
        vault.audit_hash(reader, b"v")


def test_every_token_may_renew_and_revoke_itself_only(setup: tuple[Vault, Caller], clock: FixedClock) -> None:
    vault, root = setup
    token, _ = vault.create_token(root, policies=["secrets-reader"], ttl=60)
    other_token, other = vault.create_token(root, policies=["secrets-reader"])
    reader = vault.authenticate(token)
    clock.advance(30)
    assert vault.renew_token(reader).expires == clock.now + 60
    with pytest.raises(PermissionDenied):
        vault.revoke_accessor(reader, other.accessor)
    with pytest.raises(PermissionDenied):
        vault.revoke_token(reader, other_token)
    assert vault.revoke_token(reader) == 1
    with pytest.raises(PermissionDenied):
        vault.authenticate(token)
    vault.authenticate(other_token)
