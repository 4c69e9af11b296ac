"""The keyed audit chain: a deleted record with the rest of the chain recomputed is caught only with the key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kinko.access.audit import GENESIS, AuditLog, chain_key
from kinko.access.audit_chain import check_chain
from kinko.core.model import Caller
from tests.conftest import last_hash

SALT = b"k" * 32
KEY = chain_key(SALT)
CALLER = Caller("token:ci", frozenset({"app"}), accessor="acc1")


def _write(path: Path, count: int, salt: bytes = SALT) -> None:
    log = AuditLog(path, lambda: salt)
    for i in range(count):
        log(CALLER, "secret.get", f"team/app/s{i}", "allowed")
    log.close()


def _serialise(record: dict[str, object]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def _rechain_unkeyed(records: list[dict[str, object]]) -> bytes:
    """What an attacker without the key can do: recompute every link with plain SHA-256 (the old v1 scheme)."""
    out, prev = [], GENESIS
    for record in records:
        body = {k: v for k, v in record.items() if k not in ("hash", "v")} | {"prev": prev}
        line = _serialise({**body, "hash": hashlib.sha256(_serialise(body)).hexdigest()})
        out.append(line + b"\n")
        prev = hashlib.sha256(line).hexdigest()
    return b"".join(out)


def _rechain_v2_with(key: bytes, records: list[dict[str, object]]) -> bytes:
    import hmac

    out, prev = [], GENESIS
    for record in records:
        body = {k: v for k, v in record.items() if k != "hash"} | {"prev": prev, "v": 2}
        digest = hmac.new(key, prev.encode() + _serialise(body), hashlib.sha256).hexdigest()
        out.append(_serialise({**body, "hash": digest}) + b"\n")
        prev = digest
    return b"".join(out)


def test_records_are_v2_and_chained_by_a_keyed_hash(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _write(path, 3)
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert all(r["v"] == 2 for r in records)
    assert records[1]["prev"] == records[0]["hash"] and last_hash(path) == records[2]["hash"]
    report = check_chain(path, KEY)
    assert report.ok and (report.keyed, report.unkeyed) == (3, 0)


def test_deleted_record_with_a_recomputed_chain_is_caught_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _write(path, 5)
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    del records[2]
    for forged in (_rechain_v2_with(chain_key(b"x" * 32), records), _rechain_v2_with(b"", records)):
        path.write_bytes(forged)
        assert check_chain(path).ok  # structure-only cannot tell
        report = check_chain(path, KEY)
        assert report.first_bad_line == 1 and "edited" in (report.reason or "")


def test_a_downgrade_to_an_unkeyed_chain_fails_a_keyed_check(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _write(path, 4)
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    path.write_bytes(_rechain_unkeyed(records[:1] + records[2:]))  # a record removed, the rest re-chained as v1
    report = check_chain(path, KEY)
    assert not report.ok and report.first_bad_line == 1 and "unkeyed (v1)" in (report.reason or "")
    old = check_chain(path, KEY, allow_unkeyed=True)  # only for a genuinely old file, asked for explicitly
    assert old.ok and (old.keyed, old.unkeyed) == (0, 3)


def test_v1_file_continued_by_v2_records_and_a_v1_record_after_v2_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _write(path, 2)
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    path.write_bytes(_rechain_unkeyed(records))
    _write(path, 2)  # a new kinko continues an old file
    assert check_chain(path, KEY).first_bad_line == 1  # the old part is unkeyed: refused unless accepted
    report = check_chain(path, KEY, allow_unkeyed=True)
    assert report.ok and (report.keyed, report.unkeyed) == (2, 2)
    old = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(old) + _rechain_unkeyed([json.loads(old[-1])]).replace(
        f'"prev":"{GENESIS}"'.encode(), f'"prev":"{last_hash(path)}"'.encode()))
    bad = check_chain(path, KEY, allow_unkeyed=True)
    assert bad.first_bad_line == 5 and "after keyed" in (bad.reason or "")


def test_a_record_written_with_another_vaults_salt_fails(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _write(path, 2)
    _write(path, 1, salt=b"o" * 32)
    assert check_chain(path, KEY).first_bad_line == 3


def test_checking_with_another_vaults_key_says_so_instead_of_claiming_an_edit(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _write(path, 3)
    report = check_chain(path, chain_key(b"x" * 32))
    assert report.first_bad_line == 1
    assert report.reason is not None and "another vault" in report.reason
    edited = check_chain(path, KEY)  # the right key: intact, so a later failure is a real edit
    assert edited.first_bad_line is None
