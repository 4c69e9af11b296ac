"""The audit log on real files: chain verification, HMAC redaction, file mode, multi-process appends."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest

from kinko.access.audit import (
    GENESIS,
    AuditLog,
    chain_key,
    hmac_value,
    request_context,
)
from kinko.access.audit_chain import check_chain
from kinko.core.model import Caller
from kinko.errors import AuditFailed
from tests.conftest import first_bad_line, last_hash

SALT = b"s" * 32
KEY = chain_key(SALT)
CALLER = Caller("token:ci", frozenset({"app"}), accessor="acc123", remote_addr="10.1.2.3")


def write(path: Path, count: int, start: int = 0) -> None:
    log = AuditLog(path, lambda: SALT)
    for i in range(start, start + count):
        log(CALLER, "secret.get", f"team/app/s{i}", "allowed")
    log.close()


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_record_fields_and_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path, lambda: SALT)
    with request_context("req-1", "192.0.2.9"):
        log(Caller("local-operator", frozenset({"root"})), "secret.put", "a/b", "allowed", {"value": b"v"})
    record = json.loads(path.read_text())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert record["request_id"] == "req-1" and record["client"] == "192.0.2.9"
    assert record["operation"] == "secret.put" and record["path"] == "a/b" and record["outcome"] == "allowed"
    assert record["accessor"] is None and record["prev"] == GENESIS
    assert record["time"].endswith("Z") and "T" in record["time"]
    assert record["data"] == {"value": hmac_value(SALT, b"v")}


def test_sensitive_data_is_hmaced_recursively(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    AuditLog(path, lambda: SALT)(CALLER, "x", "p", "allowed",
                                 {"value": {"user": b"CANARY-1", "pass": b"CANARY-2"}, "token": "CANARY-3"})
    text = path.read_text()
    assert "CANARY" not in text
    data = json.loads(text)["data"]
    assert data["value"]["user"] == hmac_value(SALT, b"CANARY-1") and data["token"] == hmac_value(SALT, "CANARY-3")
    assert json.loads(text)["client"] == "10.1.2.3"


def test_intact_chain_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    write(path, 5)
    write(path, 3, start=5)  # a second writer continues the chain from the file's last line
    assert first_bad_line(path, KEY) is None
    assert json.loads(lines(path)[0])["prev"] == GENESIS
    assert last_hash(path) != GENESIS


@pytest.mark.parametrize(("tamper", "expected"), [
    (lambda ls: ls[:2] + ls[3:], 3),                                    # delete line 3
    (lambda ls: [*ls[:1], ls[2], ls[1], *ls[3:]], 2),                   # swap lines 2 and 3
    (lambda ls: [*ls[:3], ls[3].replace(b"s3", b"s9"), *ls[4:]], 4),    # edit line 4
    (lambda ls: [*ls[:5], ls[5].replace(b"allowed", b"denied_")], 6),   # edit the last line
    (lambda ls: ls[1:], 1),                                             # delete the first line
    (lambda ls: [*ls, b"{}\n"], 7),                                     # append garbage
    (lambda ls: [*ls[:2], b"not json\n", *ls[3:]], 3),
])
def test_verify_finds_the_first_bad_record(tmp_path: Path, tamper: object, expected: int) -> None:
    path = tmp_path / "audit.log"
    write(path, 6)
    path.write_bytes(b"".join(tamper(lines(path))))  # type: ignore[operator]
    assert first_bad_line(path, KEY) == expected


def test_edit_with_recomputed_self_hash_is_caught_by_the_next_record(tmp_path: Path) -> None:
    from kinko.access.audit import _finish

    path = tmp_path / "audit.log"
    write(path, 4)
    ls = lines(path)
    record = json.loads(ls[1])
    record.pop("hash")
    record["outcome"] = "denied"
    ls[1] = _finish(record, KEY)[0] + b"\n"  # even with the key, the next record's prev no longer matches
    path.write_bytes(b"".join(ls))
    assert first_bad_line(path, KEY) == 3


def test_fail_closed_on_a_full_disk() -> None:
    log = AuditLog("/dev/full", lambda: SALT)
    with pytest.raises(AuditFailed) as info:
        log(CALLER, "secret.get", "a", "allowed")
    assert info.value.code == "audit_failed" and info.value.http_status == 503


def test_fail_closed_when_the_path_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(AuditFailed):
        AuditLog(tmp_path / "file" / "audit.log", lambda: SALT)  # parent is not a directory


def test_a_rotated_or_removed_file_is_continued_not_restarted(tmp_path: Path) -> None:
    path, old = tmp_path / "audit.log", tmp_path / "audit.log.1"
    log = AuditLog(path, lambda: SALT)
    log(CALLER, "a", "p", "allowed")
    path.rename(old)
    log(CALLER, "b", "p", "allowed")
    first = json.loads(path.read_text())
    assert first["prev"] == first["rotated_from"] == last_hash(old)  # chained to the old file's last record
    alone = check_chain(path, KEY)
    assert not alone.ok and "continues an earlier one" in (alone.reason or "")  # the records before it are gone
    assert check_chain([old, path], KEY).ok  # in order, the two files are one intact chain
    assert check_chain(path, KEY, allow_continued=True).continues_from == last_hash(old)
    assert not check_chain([path, old], KEY).ok  # out of order: a gap
    old.unlink()  # removed instead of rotated: the new file still says where it started
    log(CALLER, "c", "p", "allowed")
    assert first_bad_line(path, KEY) == 1


def test_a_new_file_continues_the_head_the_vault_kept(tmp_path: Path) -> None:
    path, heads = tmp_path / "audit.log", []
    log = AuditLog(path, lambda: SALT, on_head=heads.append)
    log(CALLER, "a", "p", "allowed")
    log.close()  # a server stopping: the chain's last link is kept (by the vault, in its database)
    path.unlink()  # removed while the server was down
    again = AuditLog(path, lambda: SALT, head=heads[-1])
    again(CALLER, "b", "p", "allowed")
    assert json.loads(path.read_text())["rotated_from"] == heads[-1]
    assert first_bad_line(path, KEY) == 1  # shows as a gap, not as a fresh, intact chain


def test_threads_keep_one_consistent_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path, lambda: SALT)
    workers = [threading.Thread(target=lambda: [log(CALLER, "t", "p", "allowed") for _ in range(50)])
               for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(lines(path)) == 200 and first_bad_line(path, KEY) is None


def _append_many(path: str) -> None:
    write(Path(path), 40)


def test_processes_keep_one_consistent_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path),)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(lines(path)) == 120 and first_bad_line(path, KEY) is None


def test_an_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"")
    path.chmod(0o644)
    AuditLog(path, lambda: SALT)(CALLER, "x", "p", "allowed")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
