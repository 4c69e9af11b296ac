"""Authorization of listings (list and list_deleted: per path, deny subtrees hidden) and audit of refused restore
attempts."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kinko.core.model import Caller
from kinko.errors import InvalidInput, PermissionDenied
from kinko.vault import Vault
from kinko.vault.backups import BACKUP_MAGIC
from tests.conftest import ENGINES, FixedClock, new_keyfile_vault, storage_for

ROOT = Caller.local_operator()
LISTER = {"name": "lister", "rules": [
    {"path": "team/*", "capabilities": ["list", "create", "read"]},
    {"path": "team/secret/*", "capabilities": ["deny"]},
]}


@pytest.fixture(params=ENGINES)
def vault_storage(request: pytest.FixtureRequest) -> Path | str:
    """This module's vaults run on SQLite and on a real PostgreSQL."""
    return storage_for(request)


@pytest.fixture
def env(tmp_path: Path, clock: FixedClock, vault_storage: Path | str) -> Iterator[tuple[Vault, Path]]:
    vault = new_keyfile_vault(tmp_path, clock, storage=vault_storage)
    log = tmp_path / "audit.log"
    vault.enable_audit(log)
    yield vault, log
    vault.close()


def _lister(vault: Vault) -> Caller:
    vault.write_policy(ROOT, LISTER)
    token, _ = vault.create_token(ROOT, policies=["lister"])
    return vault.authenticate(token)


def _records(log: Path, operation: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["operation"] == operation]


# -- listings show only what the caller may list -------------------------------------------------------------------
def test_list_hides_names_and_folders_under_deny(env: tuple[Vault, Path]) -> None:
    vault, _ = env
    for path in ("team/app/a", "team/app/b", "team/secret/b", "team/secret/deep/c", "team/top", "other/d"):
        vault.put(ROOT, path, b"v")
    lister = _lister(vault)
    assert vault.list(lister, "team").keys == ("app/", "top")  # no "secret/": everything under it is denied
    assert vault.list(lister, "team/app").keys == ("a", "b")
    assert vault.list(ROOT, "team").keys == ("app/", "secret/", "top")  # the filter is authorization only
    with pytest.raises(PermissionDenied):
        vault.list(lister, "team/secret")


def test_list_deleted_hides_paths_under_deny(env: tuple[Vault, Path]) -> None:
    vault, _ = env
    for path in ("team/app/a", "team/secret/b", "team/secret/deep/c", "other/d"):
        vault.put(ROOT, path, b"v")
        vault.delete(ROOT, path)
    lister = _lister(vault)
    assert [i.path for i in vault.list_deleted(lister, "team")] == ["team/app/a"]
    # root still sees every deleted path under the prefix (the filter is authorization, not a lost row)
    assert {i.path for i in vault.list_deleted(ROOT, "team")} == {"team/app/a", "team/secret/b",
                                                                   "team/secret/deep/c"}
    with pytest.raises(PermissionDenied):
        vault.list_deleted(lister, "team/secret")


# -- a refused restore is audited --------------------------------------------------------------------------------
def test_corrupt_backup_attempt_is_audited(env: tuple[Vault, Path]) -> None:
    vault, log = env
    vault.put(ROOT, "team/app/a", b"v")
    blob = vault.backup(ROOT, "team/app/a")
    sealed = bytearray(base64.b64decode(blob[len(BACKUP_MAGIC):]))
    sealed[-1] ^= 1
    lister = _lister(vault)
    for bad in (BACKUP_MAGIC + base64.b64encode(bytes(sealed)), b"not a backup", BACKUP_MAGIC + b"!!"):
        with pytest.raises(InvalidInput):
            vault.restore(lister, bad)
    failed = _records(log, "secret.restore")
    assert len(failed) == 3 and {r["outcome"] for r in failed} == {"invalid_input"}
    assert all(r["accessor"] == lister.accessor for r in failed)


def test_another_vaults_backup_is_refused_and_audited(env: tuple[Vault, Path], tmp_path: Path,
                                                      clock: FixedClock) -> None:
    vault, log = env
    other = new_keyfile_vault(tmp_path, clock, name="other.db")
    try:
        other.put(ROOT, "team/app/a", b"v")
        blob = other.backup(ROOT, "team/app/a")
    finally:
        other.close()
    with pytest.raises(InvalidInput, match="another vault"):
        vault.restore(ROOT, blob)
    assert [r["outcome"] for r in _records(log, "secret.restore")] == ["invalid_input"]


def test_valid_restore_is_still_authorized_per_path(env: tuple[Vault, Path]) -> None:
    vault, log = env
    for path in ("team/app/a", "team/secret/b"):
        vault.put(ROOT, path, b"v")
    blobs = {p: vault.backup(ROOT, p) for p in ("team/app/a", "team/secret/b")}
    for path in blobs:
        vault.delete(ROOT, path)
        vault.purge(ROOT, path)
    lister = _lister(vault)
    assert vault.restore(lister, blobs["team/app/a"]).path == "team/app/a"
    with pytest.raises(PermissionDenied):
        vault.restore(lister, blobs["team/secret/b"])
    outcomes = [(r["path"], r["outcome"]) for r in _records(log, "secret.restore")]
    assert outcomes == [("team/app/a", "allowed"), ("team/secret/b", "denied")]
