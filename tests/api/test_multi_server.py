"""Several real `kinko server` processes on one real PostgreSQL: check-and-set across servers, a change on one
honoured by the others at once, rotation without restart, kill -9 of a server during writes, each server
unsealed on its own, and PostgreSQL restarted under load."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kinko.crypto.seal import SealType
from kinko.storage.pg_listener import STALE_AFTER
from kinko.vault import open_vault
from tests.api.conftest import Server, start_server, stop_server
from tests.pg import PgCluster

ENV = {"KINKO_AUTH_FAIL_LIMIT": "100000"}


@dataclass
class Fleet:
    """Servers on one database, and the root token of the vault they serve."""

    url: str
    servers: list[Server]
    root: str
    work: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"X-Kinko-Token": self.root}

    def client(self, index: int) -> httpx.Client:
        return httpx.Client(base_url=self.servers[index].addr, headers=self.auth, timeout=10)

    def start(self, index: int) -> Server:
        where = self.work / f"server-{index}-{time.monotonic_ns()}"
        where.mkdir()
        return start_server(["--storage", self.url], where, env=ENV, expect_token=False)

    def start_all(self, count: int) -> list[Server]:
        """Start `count` servers at once (each takes a while to import and open the vault)."""
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(self.start, range(count)))

    def stop(self) -> None:
        for server in self.servers:
            if server.proc.poll() is None:
                stop_server(server.proc)


def keyfile_fleet(url: str, work: Path, count: int) -> Fleet:
    """A key-file vault in the database (each server auto-unseals from the key file) and `count` servers."""
    vault = open_vault(url, create=True)
    root = vault.init(seal=SealType.KEY_FILE, key_file=work / "unseal.key", retention_days=7).root_token
    vault.close()
    fleet = Fleet(url, [], root, work)
    fleet.servers = fleet.start_all(count)
    return fleet


@pytest.fixture(scope="module")
def fleet(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    servers = keyfile_fleet(pg_cluster.create_database("fleet"), tmp_path_factory.mktemp("fleet"), 3)
    yield servers
    servers.stop()


def test_of_concurrent_writers_with_the_same_cas_exactly_one_wins(fleet: Fleet) -> None:
    clients = [fleet.client(i) for i in range(3)]
    for round_ in range(5):
        path = f"/v1/secrets/cas/r{round_}"
        assert clients[round_ % 3].put(path, json={"value": "v1"}).status_code == 200
        start, statuses = threading.Barrier(12), []

        def write(i: int, path: str = path, start: threading.Barrier = start, statuses: list[int] = statuses) -> None:
            start.wait()
            reply = clients[i % 3].put(path, json={"value": f"w{i}", "cas": 1})
            statuses.append(reply.status_code)
            if reply.status_code != 200:
                assert reply.json()["error"]["code"] == "version_conflict"

        threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200] + [409] * 11
        versions = clients[(round_ + 1) % 3].get(f"/v1/versions/cas/r{round_}").json()["versions"]
        assert [v["version"] for v in versions] == [1, 2]
    for c in clients:
        c.close()


def _refused_at_once(fleet: Fleet, change: str, path: str, token: str, expect: int) -> float:
    """Make `change` on server A while server B is polled by a reader with `token`. B honours it once its listener
    has the notification (milliseconds; docs/server.md): no request to B that starts later than the hard bound
    (STALE_AFTER) after A acknowledged the change is served, and none after B's first refusal; returns the
    seconds from A's answer to B's first refusal."""
    reader = {"X-Kinko-Token": token}
    observed: list[tuple[float, float, int]] = []  # (start, end, status) of every read on B
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=fleet.servers[1].addr, headers=reader, timeout=10) as b:
            while not stop.is_set():
                begun = time.monotonic()
                status = b.get(path).status_code
                observed.append((begun, time.monotonic(), status))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    with fleet.client(0) as a:
        if change == "revoke":
            assert a.post("/v1/auth/token/revoke", json={"token": token}).status_code in (200, 204)
        elif change == "policy":
            doc = {"rules": [{"path": "ha/other/*", "capabilities": ["read"]}]}
            assert a.put("/v1/sys/policies/ha-reader", json=doc).status_code == 200
        else:
            assert a.patch(f"/v1/attributes/{path.removeprefix('/v1/secrets/')}",
                           json={"enabled": False}).status_code == 200
        acknowledged = time.monotonic()
    time.sleep(STALE_AFTER + 0.3)
    stop.set()
    poller.join()
    assert any(status == 200 for begun, _, status in observed if begun < acknowledged)
    after = [(begun, end, status) for begun, end, status in observed if begun > acknowledged]
    late = [status for begun, _, status in after if begun > acknowledged + STALE_AFTER]
    assert late and all(status == expect for status in late), late[:5]
    first = next(i for i, (_, _, status) in enumerate(after) if status == expect)
    assert all(status == expect for _, _, status in after[first:]), after[first:first + 5]  # never stale again
    return after[first][1] - acknowledged


@pytest.mark.parametrize("change, expect", [("revoke", 403), ("policy", 403), ("disable", 403)])
def test_a_change_on_one_server_is_honoured_by_the_next_request_to_another(fleet: Fleet, change: str,
                                                                          expect: int) -> None:
    with fleet.client(0) as a:
        path = f"ha/{change}/s"
        assert a.put(f"/v1/secrets/{path}", json={"value": "x"}).status_code == 200
        doc = {"rules": [{"path": "ha/*", "capabilities": ["read"]}]}
        assert a.put("/v1/sys/policies/ha-reader", json=doc).status_code == 200
        token = a.post("/v1/auth/token/create", json={"policies": ["ha-reader"], "ttl": 3600}).json()["token"]
    seconds = _refused_at_once(fleet, change, f"/v1/secrets/{path}", token, expect)
    assert seconds < 1.0


def test_a_rotation_on_one_server_is_used_by_the_others_without_restart(fleet: Fleet) -> None:
    with fleet.client(0) as a, fleet.client(1) as b, fleet.client(2) as c:
        assert b.put("/v1/secrets/rot/old", json={"value": "before"}).status_code == 200
        term = a.post("/v1/sys/rotate").json()["key_term"]
        assert b.put("/v1/secrets/rot/by-b", json={"value": "b"}).json()["key_term"] == term
        assert c.put("/v1/secrets/rot/by-c", json={"value": "c"}).json()["key_term"] == term
        assert a.get("/v1/secrets/rot/by-b").json()["value"] == "b"
        assert b.get("/v1/secrets/rot/by-c").json()["value"] == "c"
        assert c.get("/v1/secrets/rot/old").json()["value"] == "before"  # older terms still open


def _write_until(stop: threading.Event, client: httpx.Client, prefix: str, acked: dict[str, str]) -> None:
    i = 0
    while not stop.is_set():
        path, value = f"{prefix}/s{i % 20}", f"{prefix}-{i}"
        try:
            if client.put(f"/v1/secrets/{path}", json={"value": value}).status_code == 200:
                acked[path] = value  # acknowledged: it (or a later value) must be readable everywhere
        except httpx.HTTPError:
            pass  # its server died mid-request: not acknowledged
        i += 1


def test_kill_9_of_a_server_during_writes_loses_no_acknowledged_write(pg_cluster: PgCluster,
                                                                     tmp_path: Path) -> None:
    fleet = keyfile_fleet(pg_cluster.create_database("kill"), tmp_path, 2)
    try:
        stop, acked_a, acked_b = threading.Event(), {}, {}
        with fleet.client(0) as a, fleet.client(1) as b:
            writers = [threading.Thread(target=_write_until, args=(stop, a, "via-a", acked_a)),
                       threading.Thread(target=_write_until, args=(stop, b, "via-b", acked_b))]
            for w in writers:
                w.start()
            time.sleep(1.0)
            os.killpg(fleet.servers[0].proc.pid, signal.SIGKILL)
            time.sleep(0.5)
            stop.set()
            for w in writers:
                w.join()
            assert acked_a and acked_b
            for path, value in {**acked_a, **acked_b}.items():
                got = b.get(f"/v1/secrets/{path}")
                assert got.status_code == 200 and int(got.json()["value"].rsplit("-", 1)[1]) >= int(
                    value.rsplit("-", 1)[1]), (path, value)
        fleet.servers[0] = fleet.start(0)  # restart rejoins: auto-unsealed, serving the same vault
        with fleet.client(0) as again:
            for path in acked_b:
                assert again.get(f"/v1/secrets/{path}").status_code == 200
            assert again.put("/v1/secrets/via-a/after", json={"value": "back"}).status_code == 200
    finally:
        fleet.stop()


def test_each_server_is_unsealed_on_its_own(pg_cluster: PgCluster, tmp_path: Path) -> None:
    url = pg_cluster.create_database("shamir")
    vault = open_vault(url, create=True)
    result = vault.init(seal=SealType.SHAMIR, shares=3, threshold=2)
    vault.close()
    fleet = Fleet(url, [], result.root_token, tmp_path)
    fleet.servers = fleet.start_all(2)
    try:
        with fleet.client(0) as a, fleet.client(1) as b:
            for share in result.shares[:2]:
                a.post("/v1/sys/unseal", json={"share": share})
            assert a.get("/v1/sys/health").status_code == 200
            assert b.get("/v1/sys/health").status_code == 503  # sealed until unsealed itself
            assert b.get("/v1/secrets/x").status_code == 503
            assert a.put("/v1/secrets/x", json={"value": "v"}).status_code == 200
            for share in result.shares[1:]:
                b.post("/v1/sys/unseal", json={"share": share})
            assert b.get("/v1/secrets/x").json()["value"] == "v"
    finally:
        fleet.stop()


def test_postgresql_restarted_under_load_is_503_then_recovers(tmp_path: Path) -> None:
    cluster = PgCluster()  # its own: this one is stopped mid-test
    try:
        cluster.start()
        fleet = keyfile_fleet(cluster.create_database("restart"), tmp_path, 2)
        statuses: dict[int, int] = {}
        errors: list[dict[str, str]] = []
        stop = threading.Event()

        def load(index: int) -> None:
            with fleet.client(index) as c:
                i = 0
                while not stop.is_set():
                    try:
                        reply = (c.put(f"/v1/secrets/load/{index}", json={"value": f"v{i}"}) if i % 2
                                 else c.get(f"/v1/secrets/load/{1 - index}"))
                    except httpx.HTTPError as exc:  # no answer at all: counted, and fails the test below
                        statuses[0] = statuses.get(0, 0) + 1
                        errors.append({"code": type(exc).__name__, "message": ""})
                        continue
                    statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
                    if reply.status_code >= 500:
                        errors.append(reply.json()["error"])
                    i += 1

        try:
            for c in (fleet.client(0), fleet.client(1)):
                for index in (0, 1):
                    c.put(f"/v1/secrets/load/{index}", json={"value": "start"})
            threads = [threading.Thread(target=load, args=(i,)) for i in (0, 1)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            cluster.restart(down_for=2.0)
            back = time.monotonic()
            recovered = _recovery(fleet, back)
            stop.set()
            for t in threads:
                t.join()
        finally:
            fleet.stop()
        assert errors and {e["code"] for e in errors} <= {"storage_unavailable"}, (statuses, errors[:3])
        assert all("PostgreSQL database" in e["message"] for e in errors)
        assert set(statuses) <= {200, 503}, statuses
        assert recovered < 10.0
    finally:
        cluster.remove()


def _recovery(fleet: Fleet, back: float) -> float:
    """Seconds until both servers answer reads and writes again, by themselves."""
    with fleet.client(0) as a, fleet.client(1) as b:
        while time.monotonic() - back < 30:
            replies = [a.get("/v1/secrets/load/1"), b.put("/v1/secrets/load/probe", json={"value": "p"})]
            if all(r.status_code == 200 for r in replies):
                return time.monotonic() - back
            time.sleep(0.1)
    raise AssertionError("the servers did not recover within 30 s of PostgreSQL's restart")
