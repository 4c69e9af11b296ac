"""Several servers, one vault: secret GET and PUT throughput over HTTP for (a) one server on SQLite, (b) one server
on PostgreSQL, (c) two servers on the same PostgreSQL with the load spread over both, and how long a token revoked
through one server stays usable through the other (p99).

Every server is a real `kinko server` process (1 worker) on a key-file vault, on 127.0.0.1; PostgreSQL is a
throwaway cluster started here (tests/pg.py: initdb + pg_ctl, fsync off). Load: wrk (GET of a 1 KiB secret with a
read-only token; PUT of 1 KiB values spread over 100 paths with the root token), 64 connections in all — in (c)
two wrk processes of 32, one per server. The load generator, the servers and PostgreSQL share this machine's CPUs.
Propagation: a token revoked through A is used through B until B refuses it (B's caches are kept fresh by
LISTEN/NOTIFY, kinko.storage.pg_listener); the time from A's answer to B's first refusal, and every request B
still served meanwhile (none may come later than the bound pg_listener.STALE_AFTER).
Usage: .venv/bin/python bench/ha.py [--seconds 5] [--rounds 200] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.pg: the throwaway PostgreSQL cluster the tests use

import httpx  # noqa: E402
from benchlib import parse_wrk, write_section, wrk_command  # noqa: E402
from tests.pg import PgCluster, missing  # noqa: E402

from kinko.crypto.seal import SealType  # noqa: E402
from kinko.storage.pg_listener import STALE_AFTER  # noqa: E402
from kinko.vault import open_vault  # noqa: E402

SECTION = "## ha (bench/ha.py)"
CONNECTIONS = 64
KINKO = str(Path(sys.executable).parent / "kinko")
PUT_SCRIPT = """
counter = 0
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"value": "%s"}'
request = function()
  counter = counter + 1
  return wrk.format(nil, "/v1/secrets/bench/w" .. (counter %% 100))
end
""" % ("v" * 1024)


class Server:
    def __init__(self, storage: list[str], work: Path, name: str) -> None:
        self.err = work / f"{name}.err"
        env = {**os.environ, "KINKO_AUTH_FAIL_LIMIT": "100000000", "HOME": str(work)}
        self.proc = subprocess.Popen([KINKO, "server", "--listen", "127.0.0.1:0", "--log-level", "warning", *storage],
                                     stdout=subprocess.DEVNULL, stderr=self.err.open("wb"), env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"listening on (http://\S+)", self.err.read_text())
            if found and httpx.get(found.group(1) + "/v1/sys/health").status_code == 200:
                self.addr = found.group(1)
                return
            time.sleep(0.1)
        raise SystemExit("server did not start: " + self.err.read_text()[-1000:])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def wrk(addr: str, path: str, token: str, seconds: float, connections: int, script: Path | None = None
        ) -> subprocess.Popen[str]:
    command = wrk_command(addr + path, f"X-Kinko-Token: {token}", seconds, connections, threads=1, script=script)
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen[str]) -> dict[str, float]:
    text, _ = proc.communicate()
    return parse_wrk(text)


def load(servers: list[Server], path: str, token: str, seconds: float, script: Path | None = None
         ) -> dict[str, float]:
    """wrk against every server at once, the connections split between them; throughput summed."""
    runs = [wrk(s.addr, path, token, seconds, CONNECTIONS // len(servers), script) for s in servers]
    parts = [result(r) for r in runs]
    return {"rps": sum(p["rps"] for p in parts), "p50": max(p["p50"] for p in parts),
            "p99": max(p["p99"] for p in parts)}


def setup(location: Path | str, work: Path) -> str:
    vault = open_vault(location, create=True)
    root = vault.init(seal=SealType.KEY_FILE, key_file=work / f"unseal-{time.monotonic_ns()}.key",
                      retention_days=7).root_token
    vault.close()
    return root


def measure(name: str, storage: list[str], count: int, root: str, work: Path, seconds: float,
            script: Path) -> dict[str, dict[str, float]]:
    servers = [Server(storage, work, f"{name}{i}") for i in range(count)]
    try:
        headers = {"X-Kinko-Token": root}
        with httpx.Client(base_url=servers[0].addr, headers=headers) as c:
            c.put("/v1/secrets/bench/one-kib", json={"value": "k" * 1024}).raise_for_status()
            reader = c.post("/v1/auth/token/create", json={"policies": ["secrets-reader"]}).json()["token"]
        load(servers, "/v1/secrets/bench/one-kib", reader, 1)  # warm-up
        get = load(servers, "/v1/secrets/bench/one-kib", reader, seconds)
        put = load(servers, "/v1/secrets/bench/w0", root, seconds, script)
        return {"get": get, "put": put}
    finally:
        for s in servers:
            s.stop()


def propagation(url: str, root: str, work: Path, rounds: int) -> dict[str, float]:
    """Revoke a token through A, then use it through B at once and again until B refuses it. Milliseconds from
    A's answer to B's first refusal; how many requests B served with the revoked token meanwhile ("stale", allowed
    within the bound) and how many of those began later than STALE_AFTER after A's answer ("late", must be 0)."""
    a, b = Server(["--storage", url], work, "pa"), Server(["--storage", url], work, "pb")
    times, stale, late, stale_rounds = [], 0, 0, 0
    try:
        with httpx.Client(base_url=a.addr, headers={"X-Kinko-Token": root}) as ca, \
                httpx.Client(base_url=b.addr) as cb:
            ca.put("/v1/secrets/bench/p", json={"value": "x"}).raise_for_status()
            for _ in range(rounds):
                token = ca.post("/v1/auth/token/create", json={"policies": ["secrets-reader"]}).json()["token"]
                assert cb.get("/v1/secrets/bench/p", headers={"X-Kinko-Token": token}).status_code == 200
                ca.post("/v1/auth/token/revoke", json={"token": token}).raise_for_status()
                acknowledged = time.perf_counter()
                served = 0
                while True:
                    began = time.perf_counter()
                    status = cb.get("/v1/secrets/bench/p", headers={"X-Kinko-Token": token}).status_code
                    if status != 200:
                        break
                    served += 1
                    late += began - acknowledged > STALE_AFTER
                    if began - acknowledged > 10:
                        raise SystemExit("B kept serving a revoked token for 10 s")
                times.append(time.perf_counter() - acknowledged)
                stale, stale_rounds = stale + served, stale_rounds + (served > 0)
    finally:
        a.stop()
        b.stop()
    times.sort()
    return {"p50": times[len(times) // 2] * 1000, "p99": times[int(len(times) * 0.99)] * 1000,
            "max": times[-1] * 1000, "stale": float(stale), "stale_rounds": float(stale_rounds),
            "late": float(late), "rounds": float(rounds)}


def report(results: dict[str, dict[str, dict[str, float]]], prop: dict[str, float], seconds: float,
           command: str) -> str:
    a, b, c = (results[k] for k in ("a", "b", "c"))
    lines = [SECTION, "", f"Command: `{command}`  ",
             f"wrk, {CONNECTIONS} connections in all, {seconds:g} s per run, loopback; each server 1 worker (one "
             f"process); {os.cpu_count()} CPUs shared by the servers, PostgreSQL and wrk "
             f"(load average before: {os.getloadavg()[0]:.1f}, other work running). PostgreSQL "
             "with fsync off (a throwaway cluster; the SQLite vault keeps synchronous=FULL).", "",
             "| setup | GET req/s | GET p50 / p99 ms | PUT req/s | PUT p50 / p99 ms |", "|---|---|---|---|---|"]
    names = {"a": "(a) 1 server, SQLite", "b": "(b) 1 server, PostgreSQL", "c": "(c) 2 servers, one PostgreSQL"}
    for key, name in names.items():
        g, p = results[key]["get"], results[key]["put"]
        lines.append(f"| {name} | {g['rps']:.0f} | {g['p50']:.1f} / {g['p99']:.1f} | {p['rps']:.0f} | "
                     f"{p['p50']:.1f} / {p['p99']:.1f} |")
    lines += ["",
              f"- GET (b)/(a): **{b['get']['rps'] / a['get']['rps']:.2f}x** (target >= 0.8x); "
              f"PUT (b)/(a): {b['put']['rps'] / a['put']['rps']:.2f}x",
              f"- GET (c)/(b): **{c['get']['rps'] / b['get']['rps']:.2f}x** (target >= 1.6x where the cores "
              f"allow); PUT (c)/(b): {c['put']['rps'] / b['put']['rps']:.2f}x",
              f"- Revocation through A honoured by B: {prop['rounds']:.0f} rounds; time from A's answer to B's "
              f"first refusal p50 {prop['p50']:.1f} ms, **p99 {prop['p99']:.1f} ms**, max {prop['max']:.1f} ms "
              f"(B's caches are kept fresh by LISTEN/NOTIFY). Requests B still served with the revoked token: "
              f"{prop['stale']:.0f} (in {prop['stale_rounds']:.0f} rounds), of which began later than the "
              f"bound ({STALE_AFTER:g} s): **{prop['late']:.0f}**."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="Print only; leave bench/RESULTS.md alone.")
    args = parser.parse_args()
    for reason in (missing(), None if shutil.which("wrk") else "wrk not found (apt-get install wrk)"):
        if reason:
            raise SystemExit(reason)
    cluster = PgCluster()
    try:
        cluster.start()
        with tempfile.TemporaryDirectory(prefix="kinko-ha-") as tmp:
            work = Path(tmp)
            script = work / "put.lua"
            script.write_text(PUT_SCRIPT)
            results = {}
            sqlite = work / "vault.db"
            results["a"] = measure("a", ["--vault", str(sqlite)], 1, setup(sqlite, work), work, args.seconds,
                                   script)
            for key, count in (("b", 1), ("c", 2)):
                url = cluster.create_database(key)
                results[key] = measure(key, ["--storage", url], count, setup(url, work), work, args.seconds,
                                       script)
            url = cluster.create_database("p")
            prop = propagation(url, setup(url, work), work, args.rounds)
    finally:
        cluster.remove()
    command = " ".join([".venv/bin/python", "bench/ha.py", *sys.argv[1:]])
    text = report(results, prop, args.seconds, command)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
