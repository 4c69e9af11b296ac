"""A real `kinko server` under faults: its audit file's disk fills up (it refuses to serve, then recovers), and
kill -9 of a worker and of the parent during writes (every acknowledged write survives, the file stays sound)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from kinko.access.audit import chain_key
from kinko.access.audit_chain import check_chain
from kinko.vault import open_vault
from tests.api.conftest import Server, keyfile_vault, start_server, stop_server
from tests.conftest import integrity_problems, small_filesystem


def _vault_server(tmp: Path, *args: str) -> tuple[Server, str]:
    vault, root = keyfile_vault(tmp)
    vault.close()
    server = start_server(["--vault", str(tmp / "vault.db"), *args], tmp, expect_token=False,
                          env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    return server, root


def test_a_full_audit_disk_stops_service_until_space_returns(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "auditdisk", "256k") as disk:
        server, root = _vault_server(tmp_path, "--audit-file", str(disk / "audit.log"))
        auth = {"X-Kinko-Token": root}
        try:
            with httpx.Client(base_url=server.addr, timeout=10) as c:
                assert c.put("/v1/secrets/faults/a", json={"value": "CANARY-fault"}, headers=auth).status_code == 200
                filler = disk / "filler"
                subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k", "count=1000"], capture_output=True,
                               check=False)  # fills the disk (dd stops at ENOSPC)
                for _ in range(20):  # the audit file's last page may still hold a record or two
                    refused = c.get("/v1/secrets/faults/a", headers=auth)
                    if refused.status_code != 200:
                        break
                assert refused.status_code == 503 and refused.json()["error"]["code"] == "audit_failed"
                assert "CANARY-fault" not in refused.text  # fail closed: no record, no value
                assert c.put("/v1/secrets/faults/b", json={"value": "x"}, headers=auth).status_code == 503
                filler.unlink()  # space returns
                served = c.get("/v1/secrets/faults/a", headers=auth)
                assert served.status_code == 200 and served.json()["value"] == "CANARY-fault"
                assert c.get("/v1/secrets/faults/b", headers=auth).status_code == 404  # the refused write: nothing
        finally:
            stop_server(server.proc)
        vault = open_vault(tmp_path / "vault.db")
        report = check_chain(disk / "audit.log", chain_key(vault._access.audit_salt()))
        vault.close()
        assert report.ok, report  # no torn record from the failed writes


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in out.stdout.split()]


def test_kill_9_of_a_worker_and_of_the_server_loses_no_acknowledged_write(tmp_path: Path) -> None:
    server, root = _vault_server(tmp_path, "--workers", "2")
    attempted: dict[str, list[str]] = {}  # every value sent to a path, in order (one writer per path)
    acked: dict[str, int] = {}  # path -> index of its last acknowledged value
    stop = threading.Event()

    def write(worker: int) -> None:
        with httpx.Client(base_url=server.addr, timeout=5, headers={"X-Kinko-Token": root}) as c:
            i = 0
            while not stop.is_set():
                path, value = f"kill/w{worker}/s{i % 25}", f"value-{worker}-{i}"
                attempted.setdefault(path, []).append(value)
                try:
                    if c.put(f"/v1/secrets/{path}", json={"value": value}).status_code == 200:
                        acked[path] = len(attempted[path]) - 1  # acknowledged: it (or a later one) must survive
                except httpx.HTTPError:
                    pass  # the worker serving it died mid-request: not acknowledged (it may still be committed)
                i += 1

    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in writers:
        t.start()
    try:
        time.sleep(1.0)
        workers = _children(server.proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)  # a worker dies mid-write; the parent starts a replacement
        time.sleep(1.0)
        survivors = _children(server.proc.pid)
        os.kill(server.proc.pid, signal.SIGKILL)  # then the whole server, with no chance to clean up
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
    finally:
        stop.set()
        for t in writers:
            t.join(timeout=10)
        server.proc.wait(timeout=10)
    assert len(acked) > 20
    assert integrity_problems(tmp_path / "vault.db") == []
    again = start_server(["--vault", str(tmp_path / "vault.db")], tmp_path, expect_token=False)
    try:
        with httpx.Client(base_url=again.addr, timeout=10, headers={"X-Kinko-Token": root}) as c:
            for path, index in acked.items():
                stored = c.get(f"/v1/secrets/{path}").json()["value"]
                assert stored in attempted[path][index:], (path, stored, attempted[path][index])
    finally:
        stop_server(again.proc)
