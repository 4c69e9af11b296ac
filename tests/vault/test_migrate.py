"""`kinko operator migrate`: a vault copied SQLite -> PostgreSQL -> SQLite as stored, compared row by row,
a sample decrypted with the unseal material; a non-empty target and wrong material are refused before copying."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.crypto.seal import SealType
from kinko.errors import AlreadyExists, UnsealFailed
from kinko.vault import UnsealMaterial, Vault, migrate, open_vault
from tests.cli.conftest import run
from tests.conftest import FixedClock, dump_storage, new_keyfile_vault

ROOT = Caller.local_operator()


def _fill(vault: Vault) -> str:
    for i in range(30):
        vault.put(ROOT, f"team/s{i}", f"value-{i}".encode())
    vault.put(ROOT, "team/s0", b"value-0-v2")
    vault.update_attributes(ROOT, "team/s1", 1, enabled=False)
    vault.delete(ROOT, "team/s2")
    vault.write_policy(ROOT, {"name": "app", "rules": [{"path": "team/*", "capabilities": ["read"]}]})
    token, _ = vault.create_token(ROOT, policies=["app"], ttl=3600)
    vault.rotate(ROOT)
    vault.put(ROOT, "team/after-rotation", b"new-term")
    for n in range(2):
        vault.kv.write(ROOT, "secret", "team/kv", {"n": str(n)}, None)
    vault.kv.destroy(ROOT, "team/kv", [1])  # a row with no ciphertext left: copied, checked, never decrypted
    return token


def _same_answers(vault: Vault, token: str) -> None:
    assert vault.get(ROOT, "team/s0").value == b"value-0-v2" and vault.get(ROOT, "team/s0", 1).value == b"value-0"
    assert vault.get(ROOT, "team/after-rotation").value == b"new-term"
    assert [i.path for i in vault.list_deleted(ROOT)] == ["team/s2"]
    app = vault.authenticate(token)
    assert vault.get(app, "team/s5").value == b"value-5"


def test_sqlite_to_postgresql_and_back_as_stored(tmp_path: Path, clock: FixedClock, pg_url: str) -> None:
    source = new_keyfile_vault(tmp_path, clock)
    token = _fill(source)
    source.close()
    report = migrate(tmp_path / "vault.db", pg_url, material=UnsealMaterial(), sample=10)
    assert report.rows["secrets"] == 32 and report.rows["versions"] == 34 and report.rows["tokens"] == 2
    assert (report.decrypted, report.versions, report.unsealed_with) == (10, 34, "the key file")
    assert dump_storage(pg_url) == dump_storage(tmp_path / "vault.db")
    on_postgres = open_vault(pg_url, clock=clock)  # auto-unseals from the same key file
    _same_answers(on_postgres, token)
    on_postgres.put(ROOT, "team/written-on-postgres", b"pg")
    on_postgres.close()
    back = migrate(pg_url, f"sqlite:{tmp_path / 'back.db'}", material=UnsealMaterial(), sample=100)
    assert back.decrypted == back.versions == 35
    again = open_vault(tmp_path / "back.db", clock=clock)
    _same_answers(again, token)
    assert again.get(ROOT, "team/written-on-postgres").value == b"pg"
    again.close()


def test_a_non_empty_target_is_refused_and_left_alone(tmp_path: Path, clock: FixedClock, pg_url: str) -> None:
    new_keyfile_vault(tmp_path, clock).close()
    other = new_keyfile_vault(tmp_path, clock, name="other.db", storage=pg_url)
    other.close()
    before = dump_storage(pg_url)
    with pytest.raises(AlreadyExists, match="not empty"):
        migrate(tmp_path / "vault.db", pg_url)
    assert dump_storage(pg_url) == before


def test_without_material_counts_only_and_wrong_material_copies_nothing(tmp_path: Path, pg_url: str) -> None:
    vault = open_vault(tmp_path / "p.db", create=True)
    vault.init(seal=SealType.PASSPHRASE, passphrase="correct horse battery")
    vault.unseal(passphrase="correct horse battery")
    vault.put(ROOT, "a/b", b"v")
    vault.seal(ROOT)  # an operator's seal: the copy keeps its marker
    vault.close()
    with pytest.raises(UnsealFailed):
        migrate(tmp_path / "p.db", tmp_path / "copy.db", material=UnsealMaterial(passphrase="not the right passphrase"))
    assert not (tmp_path / "copy.db").exists()
    report = migrate(tmp_path / "p.db", pg_url, material=UnsealMaterial())
    assert (report.decrypted, report.unsealed_with) == (0, "")
    checked = migrate(pg_url, tmp_path / "copy.db", material=UnsealMaterial(passphrase="correct horse battery"))
    assert checked.decrypted == 1 and checked.unsealed_with == "the passphrase"
    copy = open_vault(tmp_path / "copy.db")
    assert copy.operator_sealed() and dump_storage(tmp_path / "copy.db") == dump_storage(tmp_path / "p.db")
    copy.close()


def test_the_cli_copies_and_says_what_it_checked(tmp_path: Path, clock: FixedClock, pg_url: str) -> None:
    new_keyfile_vault(tmp_path, clock).put(ROOT, "a/b", b"v")
    env = {"KINKO_ADDR": "", "HOME": str(tmp_path)}
    result = run(env, "operator", "migrate", "--from", f"sqlite:{tmp_path / 'vault.db'}", "--to", pg_url)
    assert result.exit_code == 0, result.output
    assert "secrets 1, versions 1" in result.output and "byte for byte" in result.output
    assert "decrypted: 1 of 1 versions" in result.output and "the key file" in result.output
    refused = run(env, "operator", "migrate", "--from", str(tmp_path / "vault.db"), "--to",
                  pg_url.replace("kinko@", "kinko:pw@"))
    assert refused.exit_code == 2 and "passfile" in refused.output
    again = run(env, "operator", "migrate", "--from", str(tmp_path / "vault.db"), "--to", pg_url)
    assert again.exit_code == 1 and "already_exists" in again.output
