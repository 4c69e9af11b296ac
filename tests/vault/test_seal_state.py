"""Key lifecycle through the Vault service: init, unseal, seal, rotate and rewrap, for each seal type."""

from __future__ import annotations

import gc
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kinko.access.audit import chain_key
from kinko.core.model import Caller
from kinko.crypto.seal import UNSEAL_PROGRESS_TTL, SealType, ShareCollector
from kinko.errors import (
    AlreadyInitialized,
    InvalidInput,
    InvalidShare,
    KinkoError,
    NotInitialized,
    Sealed,
    SharesDoNotCombine,
    UnsealFailed,
)
from kinko.vault import Vault, open_vault
from tests.conftest import Dump, FixedClock, dump_db, new_keyfile_vault

PASSPHRASE = "correct horse battery staple"


def _shamir_vault(path: Path, clock: FixedClock, shares: int = 5, threshold: int = 3) -> tuple[Vault, list[str]]:
    vault = open_vault(path, create=True, clock=clock)
    result = vault.init(seal=SealType.SHAMIR, shares=shares, threshold=threshold)
    return vault, list(result.shares)


# -- init ----------------------------------------------------------------------------------------------------


def test_init_shamir_defaults_give_five_shares_threshold_three(vault_path: Path, clock: FixedClock) -> None:
    vault = open_vault(vault_path, create=True, clock=clock)
    result = vault.init()
    assert len(result.shares) == 5 and len(set(result.shares)) == 5 and result.threshold == 3
    assert result.root_token.startswith("kinko_root_")
    status = vault.status()
    assert status.initialized and status.sealed  # init does not unseal
    assert (status.seal_type, status.shares, status.threshold) == ("shamir", 5, 3)
    assert (status.retention_days, status.purge_protection) == (90, False)
    with pytest.raises(AlreadyInitialized):
        vault.init()


def test_init_result_repr_hides_shares_and_root_token(vault_path: Path, clock: FixedClock) -> None:
    result = open_vault(vault_path, create=True, clock=clock).init()
    text = repr(result) + str(result)
    assert result.root_token not in text
    assert not any(share in text for share in result.shares)


@pytest.mark.parametrize("options", [
    {"retention_days": 6}, {"retention_days": 91},
    {"seal": SealType.SHAMIR, "shares": 3, "threshold": 4},
    {"seal": SealType.SHAMIR, "shares": 5, "threshold": 1},
    {"seal": SealType.PASSPHRASE},  # no passphrase
    {"seal": SealType.PASSPHRASE, "passphrase": "short"},
    {"seal": SealType.KEY_FILE},  # no key file
])
def test_bad_init_options_leave_vault_uninitialised(
    vault_path: Path, clock: FixedClock, snapshot: Callable[[], Dump], options: dict[str, Any]
) -> None:
    vault = open_vault(vault_path, create=True, clock=clock)
    before = snapshot()
    with pytest.raises(InvalidInput):
        vault.init(**options)
    assert snapshot() == before
    assert not vault.status().initialized


def test_key_file_init_refuses_to_overwrite_existing_key_file(tmp_path: Path, clock: FixedClock) -> None:
    key = tmp_path / "existing.key"
    key.write_bytes(b"precious")
    vault = open_vault(tmp_path / "v.db", create=True, clock=clock)
    with pytest.raises(InvalidInput, match="already exists"):
        vault.init(seal=SealType.KEY_FILE, key_file=key)
    assert key.read_bytes() == b"precious"


def test_uninitialised_vault_refuses_seal_and_unseal_then_still_initialises(
    vault_path: Path, clock: FixedClock, caller: Caller
) -> None:
    vault = open_vault(vault_path, create=True, clock=clock)
    with pytest.raises(NotInitialized):
        vault.seal(caller)
    with pytest.raises(NotInitialized):
        vault.unseal(share="anything")
    with pytest.raises(NotInitialized):
        vault.put(caller, "a/b", b"v")
    assert len(vault.init().shares) == 5  # a refused seal must not have made init impossible


# -- sealed ----------------------------------------------------------------------------------------------------

SECRET_OPS: dict[str, Callable[[Vault, Caller], object]] = {
    "put": lambda v, c: v.put(c, "a/b", b"v2"),
    "get": lambda v, c: v.get(c, "a/b"),
    "info": lambda v, c: v.info(c, "a/b"),
    "list": lambda v, c: v.list(c, ""),
    "versions": lambda v, c: v.versions(c, "a/b"),
    "update_attributes": lambda v, c: v.update_attributes(c, "a/b", enabled=False),
    "delete": lambda v, c: v.delete(c, "a/b"),
    "list_deleted": lambda v, c: v.list_deleted(c),
    "recover": lambda v, c: v.recover(c, "gone/x"),
    "purge": lambda v, c: v.purge(c, "gone/x"),
    "backup": lambda v, c: v.backup(c, "a/b"),
    "restore": lambda v, c: v.restore(c, b"kinko-backup-1:AAAA"),
    "rotate": lambda v, c: v.rotate(c),
    "rewrap": lambda v, c: v.rewrap(c),
}


@pytest.mark.parametrize("op", sorted(SECRET_OPS))
def test_every_secret_operation_is_refused_while_sealed(
    vault: Vault, caller: Caller, snapshot: Callable[[], Dump], op: str
) -> None:
    vault.put(caller, "a/b", b"v1")
    vault.put(caller, "gone/x", b"v1")
    vault.delete(caller, "gone/x")
    vault.seal(caller)
    before = snapshot()
    with pytest.raises(Sealed) as err:
        SECRET_OPS[op](vault, caller)
    assert "vault is sealed" in err.value.message and err.value.code == "sealed"
    assert snapshot() == before


def test_seal_drops_keys(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "a/b", b"v1")
    vault.seal(caller)
    assert vault.status().sealed and vault.status().key_term is None
    with pytest.raises(Sealed):
        vault._seal_state.barrier()
    with pytest.raises(Sealed):
        vault.get(caller, "a/b")


# -- key file --------------------------------------------------------------------------------------------------


def _reachable_bytes(root: object) -> list[bytes]:
    """Every bytes/bytearray reachable from `root` through object references (not through modules, classes or
    functions' globals, which reach the whole process)."""
    skip = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.CodeType)
    seen: set[int] = set()
    found: list[bytes] = []
    stack: list[object] = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, bytes | bytearray):
            found.append(bytes(obj))
            continue
        stack.extend(gc.get_referents(obj))
    return found


@pytest.mark.parametrize("how", ["seal", "drop_keys"])
def test_a_sealed_vault_holds_no_key_material_of_any_kind(tmp_path: Path, clock: FixedClock, caller: Caller,
                                                          how: str) -> None:
    vault = new_keyfile_vault(tmp_path, clock)
    vault.enable_audit(tmp_path / "audit.log")
    vault.put(caller, "k/a", b"value")  # audit records: the salt and the chain key are derived
    vault.get(caller, "k/a")
    vault.create_token(caller, policies=["default"])  # the record-integrity key is derived
    state = vault._seal_state
    keyring = state.barrier().keyring
    salt = vault._access.audit_salt()
    material = {"root key": bytes(state._root_key or b""), "audit salt": salt, "audit chain key": chain_key(salt),
                "record-integrity key": state.record_mac().key,
                **{f"key term {t}": keyring.key(t) for t in keyring.terms}}
    assert all(len(key) == 32 for key in material.values())
    assert any(key in blob for blob in _reachable_bytes(vault) for key in material.values())  # the probe works
    if how == "seal":
        vault.seal(caller)
    else:
        vault.drop_keys()  # another worker sealed
    left = [name for name, key in material.items() for blob in _reachable_bytes(vault) if key in blob]
    assert left == []
    vault.close()


def test_key_file_auto_unseals_at_open_and_operator_seal_blocks_it(
    tmp_path: Path, clock: FixedClock, caller: Caller
) -> None:
    vault = new_keyfile_vault(tmp_path, clock)
    vault.put(caller, "a/b", b"v1")
    vault.close()
    again = open_vault(tmp_path / "vault.db", clock=clock)
    assert not again.status().sealed and again.get(caller, "a/b").value == b"v1"
    again.seal(caller)
    again.close()
    blocked = open_vault(tmp_path / "vault.db", clock=clock)
    assert blocked.status().sealed and blocked.operator_sealed()
    with pytest.raises(Sealed):
        blocked.get(caller, "a/b")
    blocked.unseal()  # explicit unseal (recorded key file) lifts the operator seal
    blocked.close()
    back = open_vault(tmp_path / "vault.db", clock=clock)
    assert not back.status().sealed and back.get(caller, "a/b").value == b"v1"
    back.close()


def test_key_file_must_be_private_and_right(tmp_path: Path, clock: FixedClock, caller: Caller) -> None:
    vault = new_keyfile_vault(tmp_path, clock)
    vault.seal(caller)
    before = dump_db(tmp_path / "vault.db")
    wrong = tmp_path / "wrong.key"
    wrong.write_text(os.urandom(32).hex() + "\n")
    wrong.chmod(0o400)
    with pytest.raises(UnsealFailed, match="do not open this vault"):
        vault.unseal(key_file=wrong)
    loose = tmp_path / "loose.key"
    loose.write_bytes((tmp_path / "vault.db.key").read_bytes())
    loose.chmod(0o644)
    with pytest.raises(UnsealFailed, match="chmod 0400"):
        vault.unseal(key_file=loose)
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not hex at all")
    garbage.chmod(0o400)
    with pytest.raises(UnsealFailed, match="not a kinko key file"):
        vault.unseal(key_file=garbage)
    with pytest.raises(UnsealFailed, match="cannot read"):
        vault.unseal(key_file=tmp_path / "missing.key")
    assert vault.status().sealed
    assert dump_db(tmp_path / "vault.db") == before
    vault.unseal(key_file=tmp_path / "vault.db.key")
    assert not vault.status().sealed


# -- shares ----------------------------------------------------------------------------------------------------


def test_shares_unseal_needs_threshold_distinct_shares(vault_path: Path, clock: FixedClock, caller: Caller) -> None:
    vault, shares = _shamir_vault(vault_path, clock)
    assert vault.unseal(share=shares[4]).progress == 1
    with pytest.raises(InvalidShare, match="already given"):
        vault.unseal(share=shares[4])
    status = vault.unseal(share=shares[1])
    assert status.sealed and status.progress == 2
    status = vault.unseal(share=shares[2])
    assert not status.sealed and status.progress == 0
    vault.put(caller, "a/b", b"v1")
    assert vault.get(caller, "a/b").value == b"v1"


def test_a_share_of_another_vault_is_refused_alone_and_progress_is_kept(
    tmp_path: Path, clock: FixedClock, snapshot: Callable[[], Dump]
) -> None:
    vault, mine = _shamir_vault(tmp_path / "vault.db", clock)
    _, theirs = _shamir_vault(tmp_path / "other.db", clock)
    before = snapshot()
    assert vault.unseal(share=mine[0]).progress == 1
    for foreign in theirs:
        with pytest.raises(InvalidShare, match="does not belong to this vault"):
            vault.unseal(share=foreign)  # identified on its own, by the share tag stored at init
        assert vault.status().progress == 1  # the operator's progress is untouched
    assert snapshot() == before
    for share in mine[1:3]:
        status = vault.unseal(share=share)
    assert not status.sealed


def test_shares_of_a_vault_without_share_tags_fail_together_as_nobodys_fault(
    tmp_path: Path, clock: FixedClock
) -> None:
    vault, mine = _shamir_vault(tmp_path / "vault.db", clock)
    _, theirs = _shamir_vault(tmp_path / "other.db", clock)
    vault._store.delete_meta("share_tags")  # as a vault initialised before share tags existed
    vault.unseal(share=mine[0])
    vault.unseal(share=theirs[1])
    with pytest.raises(SharesDoNotCombine) as err:
        vault.unseal(share=theirs[2])
    assert err.value.code == "unseal_failed"
    assert vault.status().sealed and vault.status().progress == 0  # progress is reset after a failed combine
    for share in mine[:3]:
        status = vault.unseal(share=share)
    assert not status.sealed


def test_partial_unseal_progress_expires(tmp_path: Path, clock: FixedClock) -> None:
    vault, mine = _shamir_vault(tmp_path / "vault.db", clock)
    now = [1000.0]
    vault._seal_state._collector = ShareCollector(3, clock=lambda: now[0])
    vault.unseal(share=mine[0])
    vault.unseal(share=mine[1])
    assert vault.status().progress == 2
    now[0] += UNSEAL_PROGRESS_TTL + 1  # the third share comes too late: the first two no longer count
    assert vault.status().progress == 0
    assert vault.unseal(share=mine[2]).progress == 1
    # A worker replaying shares keeps their original times: a share given late starts a new round there too.
    replay = ShareCollector(3, clock=lambda: UNSEAL_PROGRESS_TTL + 10)
    replay.add(mine[0], given_at=0.0)
    assert replay.add(mine[1], given_at=UNSEAL_PROGRESS_TTL + 5) is None and replay.progress == 1


@pytest.mark.parametrize("bad", ["", "not-a-share", "zzzz-zzzz-zzzz"])
def test_malformed_share_is_refused(vault_path: Path, clock: FixedClock, bad: str) -> None:
    vault, _ = _shamir_vault(vault_path, clock)
    with pytest.raises(UnsealFailed) as err:
        vault.unseal(share=bad)
    assert err.value.code in ("invalid_share", "unseal_failed")
    assert vault.status().sealed


def test_single_share_vault(vault_path: Path, clock: FixedClock) -> None:
    vault, shares = _shamir_vault(vault_path, clock, shares=1, threshold=1)
    assert len(shares) == 1
    assert not vault.unseal(share=shares[0]).sealed


def test_wrong_unseal_method_is_refused(vault_path: Path, clock: FixedClock) -> None:
    vault, _ = _shamir_vault(vault_path, clock)
    with pytest.raises(InvalidInput, match="shamir"):
        vault.unseal(passphrase=PASSPHRASE)


# -- passphrase (default argon2 parameters: the service takes no cost override, so only this one test) ----------


def test_passphrase_vault(vault_path: Path, clock: FixedClock, caller: Caller) -> None:
    vault = open_vault(vault_path, create=True, clock=clock)
    vault.init(seal=SealType.PASSPHRASE, passphrase=PASSPHRASE)
    vault.unseal(passphrase=PASSPHRASE)
    vault.put(caller, "a/b", b"v1")
    vault.close()
    other = open_vault(vault_path, clock=clock)
    assert other.status().sealed and other.status().seal_type == "passphrase"
    before = dump_db(vault_path)
    with pytest.raises(UnsealFailed) as err:
        other.unseal(passphrase=PASSPHRASE + "!")
    assert PASSPHRASE not in str(err.value)
    assert other.status().sealed and dump_db(vault_path) == before
    other.unseal(passphrase=PASSPHRASE)
    assert other.get(caller, "a/b").value == b"v1"
    other.close()


# -- rotation ----------------------------------------------------------------------------------------------------


def test_rotate_new_writes_use_newest_term_and_old_versions_read(vault: Vault, caller: Caller) -> None:
    assert vault.put(caller, "a/b", b"v1").key_term == 1
    assert vault.rotate(caller) == 2
    assert vault.status().key_term == 2
    assert vault.put(caller, "a/b", b"v2").key_term == 2
    assert vault.get(caller, "a/b", 1).value == b"v1"
    assert vault.get(caller, "a/b", 1).info.key_term == 1


def test_rewrap_moves_every_version_to_newest_term(vault: Vault, caller: Caller) -> None:
    for i in range(7):
        vault.put(caller, f"p/s{i % 3}", f"v{i}".encode())
    vault.rotate(caller)
    vault.rotate(caller)
    assert vault.rewrap(caller, batch=2) == 7
    terms = {v.key_term for p in ("p/s0", "p/s1", "p/s2") for v in vault.versions(caller, p)}
    assert terms == {3}
    assert vault.get(caller, "p/s0", 1).value == b"v0"
    assert vault.rewrap(caller) == 0


def test_second_instance_reads_term_it_has_not_seen(tmp_path: Path, clock: FixedClock, caller: Caller) -> None:
    first = new_keyfile_vault(tmp_path, clock)
    first.put(caller, "a/b", b"old")
    second = open_vault(tmp_path / "vault.db", clock=clock)  # another "process": keyring loaded now, term 1
    assert first.rotate(caller) == 2
    first.put(caller, "a/b", b"new")
    secret = second.get(caller, "a/b")
    assert secret.value == b"new" and secret.info.key_term == 2
    # a rotation from the stale instance must not lose the first instance's term
    assert second.rotate(caller) == 3
    assert first.get(caller, "a/b").value == b"new"
    second.put(caller, "c/d", b"three")
    assert first.get(caller, "c/d").value == b"three"
    first.close()
    second.close()


def test_errors_are_kinko_errors_with_codes() -> None:
    for error in (Sealed(), NotInitialized(), UnsealFailed("x"), InvalidShare("x")):
        assert isinstance(error, KinkoError) and str(error).startswith(error.code + ": ")


def test_stale_instance_restores_backup_made_under_newer_term(
    tmp_path: Path, clock: FixedClock, caller: Caller
) -> None:
    first = new_keyfile_vault(tmp_path, clock)
    second = open_vault(tmp_path / "vault.db", clock=clock)  # a long-running process that has not seen term 2
    first.rotate(caller)
    first.put(caller, "a/b", b"v1")
    blob = first.backup(caller, "a/b")
    first.delete(caller, "a/b")
    first.purge(caller, "a/b")
    assert second.restore(caller, blob).current_version == 1
    assert second.get(caller, "a/b").value == b"v1"
    first.close()
    second.close()
