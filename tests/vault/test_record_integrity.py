"""Review findings 7 and 20: access records written straight into the database file are refused, and a value
ciphertext from a purged earlier secret at the same path does not open as the re-created secret."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kinko.access.tokens import new_accessor, new_token
from kinko.core.model import Caller
from kinko.crypto.seal import SealType
from kinko.errors import IntegrityError, InvalidInput, NotFound, PermissionDenied
from kinko.vault import Vault, open_vault
from tests.conftest import ENGINES, FixedClock, raw_sql, storage_for

#: An edit made in the database by hand reaches a PostgreSQL store's caches by notification, a few milliseconds
#: later (docs/server.md); until then the genuine row it verified is what is served, never the edited one.
NOTICED_WITHIN = 2.0


def _refused_soon(call: Callable[[], object], genuine: Callable[[object], bool],
                  error: type[Exception] = PermissionDenied) -> None:
    """`call` raises `error` within NOTICED_WITHIN seconds; every answer before that is the genuine one."""
    deadline = time.monotonic() + NOTICED_WITHIN
    while True:
        try:
            answer = call()
        except error:
            return
        assert genuine(answer), answer
        assert time.monotonic() < deadline, "the edited row was not noticed"
        time.sleep(0.002)

APP = 'name: app\nrules: [{path: "team/app/*", capabilities: [read]}]\n'


@pytest.fixture(params=ENGINES)
def vault_storage(request: pytest.FixtureRequest) -> Path | str:
    """The edits below are made on a SQLite file and in a real PostgreSQL database (a DBA's UPDATE)."""
    return storage_for(request)


@pytest.fixture
def setup(tmp_path: Path, clock: FixedClock, vault_storage: Path | str) -> Iterator[tuple[Vault, Caller, Path | str]]:
    vault = open_vault(vault_storage, create=True, clock=clock)
    result = vault.init(seal=SealType.KEY_FILE, key_file=tmp_path / "k")
    vault.unseal(key_file=tmp_path / "k")
    yield vault, vault.authenticate(result.root_token), vault_storage
    vault.close()


_sql = raw_sql  # what an attacker with write access to the database does: plain SQL, no kinko


def _forge_root_row(db: Path | str, mac: str | None = None) -> str:
    token = new_token()
    _sql(db, "INSERT INTO tokens (accessor, token_hash, parent, policies_json, display_name, meta_json, created, "
             "expires, max_expires, ttl, renewable, num_uses, uses_left, mac) "
             "VALUES (?, ?, NULL, ?, 'x', '{}', 0, NULL, NULL, NULL, 0, 0, 0, ?)",
         (new_accessor(), hashlib.sha256(token.encode()).hexdigest(), json.dumps(["root"]), mac))
    return token


def test_a_token_row_inserted_into_the_file_is_refused(setup: tuple[Vault, Caller, Path | str]) -> None:
    vault, root, db = setup
    forged = _forge_root_row(db)
    with pytest.raises(PermissionDenied):
        vault.authenticate(forged)
    # A tag copied from a genuine row does not fit another row either.
    real = vault._store.list_tokens()[0]
    with pytest.raises(PermissionDenied):
        vault.authenticate(_forge_root_row(db, real.mac))
    assert [t.policies for t in vault.list_tokens(root)] == [("root",)]  # forged rows are not listed


def test_editing_a_genuine_tokens_policies_or_expiry_breaks_it(setup: tuple[Vault, Caller, Path | str],
                                                                clock: FixedClock) -> None:
    vault, root, db = setup
    token, info = vault.create_token(root, policies=["secrets-reader"], ttl=60)
    assert vault.authenticate(token).policies == {"secrets-reader"}
    _sql(db, "UPDATE tokens SET policies_json = ? WHERE accessor = ?", (json.dumps(["root"]), info.accessor))
    _refused_soon(lambda: vault.authenticate(token), lambda c: c.policies == {"secrets-reader"})  # type: ignore
    token, info = vault.create_token(root, policies=["secrets-reader"], ttl=60)
    _sql(db, "UPDATE tokens SET expires = expires + 1e6 WHERE accessor = ?", (info.accessor,))
    _refused_soon(lambda: vault.authenticate(token), lambda c: c.policies == {"secrets-reader"})  # type: ignore


def test_a_planted_root_token_hash_is_never_adopted(tmp_path: Path, clock: FixedClock) -> None:
    vault = open_vault(tmp_path / "v.db", create=True, clock=clock)
    vault.init(seal=SealType.KEY_FILE, key_file=tmp_path / "k")
    vault.unseal(key_file=tmp_path / "k")
    planted = new_token("kinko_root_")
    vault._store.put_meta("root_token_sha256", hashlib.sha256(planted.encode()).hexdigest().encode())
    with pytest.raises(PermissionDenied):
        vault.authenticate(planted)
    vault.close()


def test_normal_token_flows_still_work(setup: tuple[Vault, Caller, Path | str], clock: FixedClock) -> None:
    vault, root, _ = setup
    token, info = vault.create_token(root, policies=["secrets-reader"], ttl=60, num_uses=3)
    reader = vault.authenticate(token)  # use 1 (the new count is re-tagged)
    vault.authenticate(token)  # use 2
    clock.advance(30)
    assert vault.renew_token(root, accessor=info.accessor).expires == clock.now + 60
    assert vault.authenticate(token).accessor == reader.accessor  # use 3: the last
    with pytest.raises(PermissionDenied):
        vault.authenticate(token)
    parent, _ = vault.create_token(root, policies=["admin"])
    child, _ = vault.create_token(vault.authenticate(parent), policies=["secrets-reader"])
    assert vault.authenticate(child).policies == {"secrets-reader"}


def test_an_edited_policy_body_grants_nothing(setup: tuple[Vault, Caller, Path | str]) -> None:
    vault, root, db = setup
    vault.write_policy(root, APP)
    vault.put(root, "team/app/db", b"x")
    vault.put(root, "team/web/db", b"y")
    app = vault.authenticate(vault.create_token(root, policies=["app"])[0])
    assert vault.get(app, "team/app/db").value == b"x"
    _sql(db, "UPDATE policies SET document = ? WHERE name = 'app'", (APP.replace("team/app/*", "*"),))
    _sql(db, "UPDATE policy_revision SET revision = revision + 1")  # so caches reload it
    _refused_soon(lambda: vault.get(app, "team/app/db"), lambda secret: True)  # the genuine policy until noticed
    for path in ("team/web/db", "team/app/db"):
        with pytest.raises(PermissionDenied):
            vault.get(app, path)
    with pytest.raises(NotFound):
        vault.read_policy(root, "app")
    assert "app" not in vault.list_policies(root)
    with pytest.raises(InvalidInput):  # treated as absent: cannot be granted
        vault.create_token(root, policies=["app"])
    vault.write_policy(root, APP)  # rewriting it through kinko tags it again
    assert vault.get(app, "team/app/db").value == b"x"


def test_a_policy_row_inserted_into_the_file_is_refused(setup: tuple[Vault, Caller, Path | str]) -> None:
    vault, root, db = setup
    _sql(db, "INSERT INTO policies (name, document, updated) VALUES ('evil', ?, 0)",
         (APP.replace("name: app", "name: evil"),))
    with pytest.raises(NotFound):
        vault.read_policy(root, "evil")


# -- finding 20: incarnations -----------------------------------------------------------------------------------
def test_an_old_ciphertext_does_not_open_as_the_recreated_secret(setup: tuple[Vault, Caller, Path | str]) -> None:
    vault, root, db = setup
    vault.put(root, "team/app/db", b"old-password")
    old = vault._store.get_version("team/app/db", 1)
    assert old is not None and len(old.incarnation) == 32
    vault.delete(root, "team/app/db")
    vault.purge(root, "team/app/db")
    vault.put(root, "team/app/db", b"new-password")
    assert vault._store.get_version("team/app/db", 1).incarnation != old.incarnation  # type: ignore[union-attr]
    _sql(db, "UPDATE versions SET value_ct = ? WHERE path = 'team/app/db' AND version = 1", (old.value_ct,))
    with pytest.raises(IntegrityError):
        vault.get(root, "team/app/db")


def test_backup_restore_and_rewrap_keep_the_incarnation(setup: tuple[Vault, Caller, Path | str]) -> None:
    vault, root, _ = setup
    vault.put(root, "a/b", b"v1")
    vault.put(root, "a/b", b"v2")
    incarnation = vault._store.get_secret("a/b").incarnation  # type: ignore[union-attr]
    blob = vault.backup(root, "a/b")
    vault.delete(root, "a/b")
    vault.purge(root, "a/b")
    vault.restore(root, blob)
    assert vault._store.get_secret("a/b").incarnation == incarnation  # type: ignore[union-attr]
    vault.rotate(root)
    assert vault.rewrap(root) == 2
    assert [vault.get(root, "a/b", v).value for v in (1, 2)] == [b"v1", b"v2"]


def test_secrets_from_before_incarnations_still_open(setup: tuple[Vault, Caller, Path | str]) -> None:
    vault, root, db = setup
    # A secret written before the migration: incarnation '' and the value sealed with the old AAD.
    barrier = vault._seal_state.barrier()
    vault.put(root, "legacy/x", b"first")
    row = vault._store.get_version("legacy/x", 1)
    assert row is not None
    payload = vault._records._open(row.value_ct, "legacy/x", 1, "value", row.incarnation)
    legacy_ct = barrier.seal(payload, [vault._seal_state.vault_id(), "legacy/x", 1, "value"])
    _sql(db, "UPDATE secrets SET incarnation = '', mac = NULL WHERE path = 'legacy/x'")
    _sql(db, "UPDATE versions SET value_ct = ?, mac = NULL WHERE path = 'legacy/x'", (legacy_ct,))
    _sql(db, "DELETE FROM meta WHERE key = 'lifecycle_tags'")  # a vault from before integrity tags
    vault.drop_keys()
    vault.auto_unseal()  # the first unseal after the upgrade tags its rows
    assert vault.get(root, "legacy/x").value == b"first"
    vault.put(root, "legacy/x", b"second")  # new versions of a legacy secret keep ''
    assert vault.get(root, "legacy/x").value == b"second"


# -- finding 7: Kubernetes auth config and roles -----------------------------------------------------------------
def test_a_tampered_kubernetes_role_or_config_refuses_login(tmp_path: Path, clock: FixedClock) -> None:
    from tests.access.test_identity import ISSUER, Issuer
    from tests.conftest import new_keyfile_vault

    issuer, vault, root = Issuer(), new_keyfile_vault(tmp_path, clock), Caller.local_operator()
    try:
        vault.configure_kubernetes_auth(root, issuer=ISSUER, jwks=issuer.jwks())
        vault.write_kubernetes_role(root, "web", service_account_names=["web"], namespaces=["shop"],
                                    audience=None, policies=["secrets-reader"], ttl=600)
        assert vault.login_kubernetes("web", issuer.mint(issuer.claims(aud="kinko"))).policies == (
            "secrets-reader",)
        # Grant the role root by editing the stored document, keeping its tag: refused, role reads as absent.
        raw = vault._store.get_meta("k8s_auth/roles") or b""
        vault._store.put_meta("k8s_auth/roles", raw.replace(b'"secrets-reader"', b'"root"'))
        with pytest.raises(PermissionDenied):
            vault.login_kubernetes("web", issuer.mint(issuer.claims(aud="kinko")))
        with pytest.raises(NotFound):
            vault.read_kubernetes_role(root, "web")
        vault.write_kubernetes_role(root, "web", service_account_names=["web"], namespaces=["shop"],
                                    audience=None, policies=["secrets-reader"], ttl=600)
        vault.login_kubernetes("web", issuer.mint(issuer.claims(aud="kinko")))
        # A config swapped for the attacker's own signing keys (no valid tag): login refused.
        attacker = Issuer()
        config = vault._store.get_meta("k8s_auth/config") or b""
        tag, _, body = config.partition(b"\n")
        doc = json.loads(body)
        doc["jwks"] = attacker.jwks()
        vault._store.put_meta("k8s_auth/config", tag + b"\n" + json.dumps(doc).encode())
        with pytest.raises(PermissionDenied):
            vault.login_kubernetes("web", attacker.mint(attacker.claims(aud="kinko")))
        with pytest.raises(NotFound):
            vault.read_kubernetes_auth_config(root)
    finally:
        vault.close()


def test_a_non_blob_ciphertext_planted_in_the_file_is_an_integrity_error(
        setup: tuple[Vault, Caller, Path | str]) -> None:
    vault, root, path = setup
    vault.put(root, "planted/s", b"genuine")
    _sql(path, "UPDATE versions SET value_ct = 'k1AAAA-not-a-blob-but-text-of-the-right-length' "
               "WHERE path = 'planted/s'")
    with pytest.raises(IntegrityError):
        vault.get(root, "planted/s")


# -- the lifecycle state of secrets and versions is tagged too ---------------------------------------------------
def _reopened(db: Path | str, clock: FixedClock) -> Vault:
    """Another process on the same file (key-file vault: it auto-unseals)."""
    return open_vault(db, clock=clock)


def test_re_enabling_a_disabled_version_in_the_file_is_an_integrity_error(
        setup: tuple[Vault, Caller, Path | str], clock: FixedClock) -> None:
    vault, root, db = setup
    vault.put(root, "life/a", b"retired")
    assert vault.get(root, "life/a").value == b"retired"  # read (and remembered) while enabled
    other = _reopened(db, clock)
    other.update_attributes(root, "life/a", 1, enabled=False)  # disabled by another process
    _sql(db, "UPDATE versions SET enabled = 1 WHERE path = 'life/a'")  # the attacker turns it back on
    for reader in (vault, other, _reopened(db, clock)):  # the one that remembered it, the writer, a fresh one
        with pytest.raises(IntegrityError, match="integrity check"):
            reader.get(root, "life/a")
    other.close()


def test_rolling_back_the_current_version_in_the_file_is_an_integrity_error(
        setup: tuple[Vault, Caller, Path | str], clock: FixedClock) -> None:
    vault, root, db = setup
    vault.put(root, "life/b", b"rotated-out")
    vault.put(root, "life/b", b"current")
    assert vault.get(root, "life/b").value == b"current"
    _sql(db, "UPDATE secrets SET current_version = 1 WHERE path = 'life/b'")
    with pytest.raises(IntegrityError):
        vault.get(root, "life/b")
    with pytest.raises(IntegrityError):
        vault.put(root, "life/b", b"next")  # a write never builds on a row that does not verify


@pytest.mark.parametrize("statement", [
    "UPDATE secrets SET deleted = NULL, scheduled_purge = NULL WHERE path = 'life/c'",  # undelete
    "UPDATE secrets SET deleted = NULL WHERE path = 'life/c'",
])
def test_undeleting_in_the_file_is_an_integrity_error(setup: tuple[Vault, Caller, Path | str], clock: FixedClock,
                                                      statement: str) -> None:
    vault, root, db = setup
    vault.put(root, "life/c", b"deleted-value")
    assert vault.get(root, "life/c").value == b"deleted-value"  # remembered before the delete
    _reopened(db, clock).delete(root, "life/c")  # deleted by another process
    _sql(db, statement)
    with pytest.raises(IntegrityError):
        vault.get(root, "life/c")
    assert vault.list(root, "life").keys == ()  # and it does not reappear in listings


@pytest.mark.parametrize("statement", [
    "UPDATE versions SET expires = NULL WHERE path = 'life/d'",  # lift the expiry
    "UPDATE versions SET not_before = NULL WHERE path = 'life/d'",
    "UPDATE versions SET mac = NULL WHERE path = 'life/d'",  # strip the tag
    "UPDATE secrets SET max_versions = 1 WHERE path = 'life/d'",  # the next write would prune every old version
])
def test_other_edits_of_the_lifecycle_state_are_integrity_errors(setup: tuple[Vault, Caller, Path | str],
                                                                 statement: str) -> None:
    vault, root, db = setup
    vault.put(root, "life/d", b"v", not_before=1.0, expires=4102444800.0)
    _sql(db, statement)
    with pytest.raises(IntegrityError):
        vault.get(root, "life/d")
        vault.put(root, "life/d", b"w")


def test_an_integrity_error_names_the_secret_never_the_value(setup: tuple[Vault, Caller, Path | str]) -> None:
    vault, root, db = setup
    vault.put(root, "life/e", b"CANARY-life-e")
    _sql(db, "UPDATE versions SET tags_json = '{\"owner\":\"mallory\"}' WHERE path = 'life/e'")
    with pytest.raises(IntegrityError) as caught:
        vault.get(root, "life/e")
    assert "life/e" in caught.value.message and "CANARY" not in caught.value.message
