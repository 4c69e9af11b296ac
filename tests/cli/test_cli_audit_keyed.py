"""`kinko audit verify`: keyed with the vault (catches a rewritten chain), --structure-only, v1 files, and
naming the line of a file that is not an audit log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kinko.access.audit import GENESIS, AuditLog
from kinko.core.model import Caller
from kinko.vault import open_vault
from tests.api.conftest import keyfile_vault
from tests.cli.conftest import run


def _ser(record: dict[str, object]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def _rewrite_unkeyed(records: list[dict[str, object]]) -> bytes:
    """An attacker without the vault: drop a record and recompute every link with plain SHA-256."""
    out, prev = [], GENESIS
    for record in records:
        body = {k: v for k, v in record.items() if k not in ("hash", "v")} | {"prev": prev}
        line = _ser({**body, "hash": hashlib.sha256(_ser(body)).hexdigest()})
        out.append(line + b"\n")
        prev = hashlib.sha256(line).hexdigest()
    return b"".join(out)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[dict[str, str], Path]:
    vault, _root = keyfile_vault(tmp_path)
    log = tmp_path / "audit.log"
    vault.enable_audit(log)
    for i in range(4):
        vault.put(Caller.local_operator(), f"team/s{i}", b"v")
    vault.close()
    return {"KINKO_VAULT": str(tmp_path / "vault.db")}, log


def test_intact_file_verifies_with_the_vault(setup: tuple[dict[str, str], Path]) -> None:
    env, log = setup
    result = run(env, "audit", "verify", str(log))
    assert result.exit_code == 0, result.output
    assert "chain intact" in result.stdout and "audit key" in result.stdout


def test_rewritten_chain_passes_structure_only_but_fails_with_the_key(setup: tuple[dict[str, str], Path],
                                                                      tmp_path: Path) -> None:
    env, log = setup
    records = [json.loads(line) for line in log.read_bytes().splitlines()]
    forged = [{**r, "v": 2} for r in records[:1] + records[2:]]
    # A v2-looking rewrite with a guessed key: the structure holds, the keyed hash does not.
    out, prev = [], GENESIS
    for record in forged:
        body = {k: v for k, v in record.items() if k != "hash"} | {"prev": prev}
        prev = hashlib.sha256(prev.encode() + _ser(body)).hexdigest()
        out.append(_ser({**body, "hash": prev}) + b"\n")
    log.write_bytes(b"".join(out))
    loose = run(env, "audit", "verify", "--structure-only", str(log))
    assert loose.exit_code == 0 and "structure only" in loose.stdout and "naive edits" in loose.stdout
    strict = run(env, "audit", "verify", str(log), "-o", "json")
    assert strict.exit_code == 1
    doc = json.loads(strict.stdout)
    assert doc["ok"] is False and doc["first_bad_line"] == 1


def test_a_downgraded_unkeyed_file_fails_unless_v1_is_allowed(setup: tuple[dict[str, str], Path]) -> None:
    env, log = setup
    records = [json.loads(line) for line in log.read_bytes().splitlines()]
    log.write_bytes(_rewrite_unkeyed(records[:1] + records[2:]))  # a denied record removed, re-chained as v1
    result = run(env, "audit", "verify", str(log))
    assert result.exit_code == 1 and "line 1: unkeyed (v1) record" in result.stdout
    allowed = run(env, "audit", "verify", "--allow-v1", str(log))
    assert allowed.exit_code == 0 and "unkeyed chain (v1): structure only" in allowed.stdout


def test_rotated_files_verify_together_in_order(setup: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, log = setup
    log.rename(tmp_path / "audit.log.1")  # rotated while the vault was closed
    vault = open_vault(tmp_path / "vault.db")
    vault.enable_audit(log)
    vault.put(Caller.local_operator(), "team/after", b"v")
    vault.close()
    alone = run(env, "audit", "verify", str(log))
    assert alone.exit_code == 1 and "continues an earlier one" in alone.stdout
    both = run(env, "audit", "verify", str(tmp_path / "audit.log.1"), str(log))
    assert both.exit_code == 0 and "chain intact" in both.stdout, both.stdout
    accepted = run(env, "audit", "verify", "--allow-continued", str(log))
    assert accepted.exit_code == 0 and "continuing an earlier file" in accepted.stdout


def test_usage_errors(setup: tuple[dict[str, str], Path]) -> None:
    env, _log = setup
    assert run(env, "audit", "verify").exit_code == 2
    assert run(env, "audit", "verify", "--structure-only").exit_code == 2


def test_audit_verify_names_a_line_that_is_not_a_record(local_env: dict[str, str], tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", lambda: b"s" * 32)
    log(Caller.local_operator(), "secret.get", "a/b", "allowed")
    log(Caller.local_operator(), "secret.put", "a/c", "allowed")
    log.close()
    good = (tmp_path / "audit.log").read_bytes()
    (tmp_path / "mixed.log").write_bytes(good + b"hello, not json\n")
    # --structure-only: these records were chained with a salt that is not this vault's.
    result = run(local_env, "audit", "verify", "--structure-only", str(tmp_path / "mixed.log"))
    assert result.exit_code == 1 and "line 3: not an audit record" in result.stdout
    (tmp_path / "notes.txt").write_text("just some notes\n")
    result = run(local_env, "audit", "verify", "--structure-only", str(tmp_path / "notes.txt"), "-o", "json")
    assert json.loads(result.stdout)["reason"] == "not an audit record"
    lines = good.splitlines(keepends=True)
    (tmp_path / "cut.log").write_bytes(lines[1] + lines[0])
    assert "line 1: record deleted or reordered before this line" in run(
        local_env, "audit", "verify", "--structure-only", str(tmp_path / "cut.log")).stdout
