"""Soak: a real `kinko server` (2 workers, audit file on) under mixed load for a set time.

Load: reads of existing secrets, writes (new versions), token create + lookup-self + revoke, listings, an occasional
key rotation, and intended refusals (a missing secret: 404; a bad token: 403). Reports requests served, errors (any
5xx, or a status the operation did not expect), the server's RSS (parent + workers) after warm-up and at the end,
and whether the audit chain verifies with the vault's key at the end.
Usage: .venv/bin/python bench/soak.py [--seconds 120] [--clients 8] [--no-write]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from kinko.access.audit import chain_key
from kinko.access.audit_chain import check_chain
from kinko.vault import Caller, SealType, open_vault

KINKO = str(Path(sys.executable).parent / "kinko")
SECTION = "## soak (bench/soak.py)"
SECRETS = 200
#: operation -> (weight, statuses it expects)
MIX = {"read": (70, {200}), "write": (12, {200}), "token": (5, {200}), "list": (5, {200}),
       "missing": (4, {404}), "bad-token": (3, {403}), "rotate": (1, {200})}


def start(work: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    vault = open_vault(work / "vault.db", create=True)
    root = vault.init(seal=SealType.KEY_FILE, key_file=work / "key").root_token
    vault.unseal(key_file=work / "key")
    session = vault.session(Caller.local_operator())
    for i in range(SECRETS):
        session.put(f"soak/s{i}", os.urandom(48).hex().encode())
    vault.close()
    err = work / "server.err"
    proc = subprocess.Popen([KINKO, "server", "--vault", str(work / "vault.db"), "--listen", "127.0.0.1:0",
                             "--workers", "2", "--audit-file", str(work / "audit.log"), "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=err.open("wb"), start_new_session=True,
                            env={**os.environ, "KINKO_AUTH_FAIL_LIMIT": "1000000"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+)", err.read_text())
        if found:
            try:
                if httpx.get(found.group(1) + "/v1/sys/health").status_code == 200:
                    return proc, found.group(1), root
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start: " + err.read_text()[-1000:])


def rss_kib(pid: int) -> int:
    """VmRSS of the process and its children (the workers)."""
    total = 0
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    for each in [pid, *map(int, children.split())]:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(found.group(1)) if found else 0
    return total


class Load:
    def __init__(self, addr: str, root: str) -> None:
        self.addr, self.root = addr, root
        self.counts: collections.Counter[tuple[str, int]] = collections.Counter()
        self.unexpected: collections.Counter[tuple[str, int]] = collections.Counter()
        self.lock = threading.Lock()

    def run(self, stop: threading.Event, seed: int) -> None:
        rnd = random.Random(seed)
        names, weights = zip(*((name, weight) for name, (weight, _) in MIX.items()), strict=True)
        with httpx.Client(base_url=self.addr, timeout=30, headers={"X-Kinko-Token": self.root}) as c:
            while not stop.is_set():
                op = rnd.choices(names, weights)[0]
                status = self.one(c, op, rnd)
                with self.lock:
                    self.counts[(op, status)] += 1
                    if status not in MIX[op][1]:
                        self.unexpected[(op, status)] += 1

    def one(self, c: httpx.Client, op: str, rnd: random.Random) -> int:
        path = f"soak/s{rnd.randrange(SECRETS)}"
        if op == "read":
            return c.get(f"/v1/secrets/{path}").status_code
        if op == "write":
            return c.put(f"/v1/secrets/{path}", json={"value": os.urandom(48).hex(), "max_versions": 5}).status_code
        if op == "token":
            made = c.post("/v1/auth/token/create", json={"policies": ["secrets-reader"], "ttl": 600})
            if made.status_code != 200:
                return made.status_code
            token = made.json()["token"]
            looked = c.get("/v1/auth/token/lookup-self", headers={"X-Kinko-Token": token})
            revoked = c.post("/v1/auth/token/revoke", json={"token": token})
            return max(looked.status_code, revoked.status_code)
        if op == "list":
            return c.get("/v1/secrets-list/soak").status_code
        if op == "missing":
            return c.get(f"/v1/secrets/soak/missing{rnd.randrange(1000)}").status_code
        if op == "bad-token":
            return c.get(f"/v1/secrets/{path}", headers={"X-Kinko-Token": "kinko_s_" + "Z" * 43}).status_code
        return c.post("/v1/sys/rotate").status_code


def verify_audit(work: Path) -> str:
    vault = open_vault(work / "vault.db")
    try:
        report = check_chain(work / "audit.log", chain_key(vault._access.audit_salt()))
    finally:
        vault.close()
    lines = sum(1 for _ in (work / "audit.log").open("rb"))
    return (f"intact ({report.keyed} keyed records, {lines} lines)" if report.ok
            else f"BROKEN at line {report.first_bad_line}: {report.reason}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--no-write", action="store_true", help="Print only; leave bench/RESULTS.md alone.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kinko-soak-") as tmp:
        work = Path(tmp)
        proc, addr, root = start(work)
        load, stop = Load(addr, root), threading.Event()
        threads = [threading.Thread(target=load.run, args=(stop, seed)) for seed in range(args.clients)]
        try:
            for t in threads:
                t.start()
            time.sleep(min(10.0, args.seconds / 6))  # warm-up: imports, caches, connection pools
            rss_start, started, served_start = rss_kib(proc.pid), time.monotonic(), sum(load.counts.values())
            time.sleep(max(0.0, args.seconds - min(10.0, args.seconds / 6)))
            rss_end, elapsed = rss_kib(proc.pid), time.monotonic() - started
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
            proc.terminate()
            proc.wait(timeout=30)
        served = sum(load.counts.values())
        audit = verify_audit(work)
    text = report(args, served, served - served_start, elapsed, load, rss_start, rss_end, audit)
    print(text)
    if not args.no_write:
        write_section(text)
    return 0 if not load.unexpected and audit.startswith("intact") else 1


def report(args: argparse.Namespace, served: int, measured: int, elapsed: float, load: Load, rss_start: int,
           rss_end: int, audit: str) -> str:
    by_op: collections.Counter[str] = collections.Counter()
    for (op, _status), n in load.counts.items():
        by_op[op] += n
    growth = (rss_end - rss_start) / max(rss_start, 1) * 100
    lines = [SECTION, "",
             f"Command: `.venv/bin/python bench/soak.py --seconds {args.seconds:g} --clients {args.clients}` "
             f"(2 workers, audit file on, {SECRETS} secrets, {os.cpu_count()} CPUs shared with the load).", "",
             f"- requests served: **{served}** ({measured / elapsed:.0f}/s after warm-up); by operation: "
             + ", ".join(f"{op} {n}" for op, n in sorted(by_op.items())),
             f"- unexpected statuses (5xx or not what the operation expects): **{sum(load.unexpected.values())}**"
             + (" — " + ", ".join(f"{op} {st}: {n}" for (op, st), n in sorted(load.unexpected.items()))
                if load.unexpected else ""),
             f"- intended refusals: missing secret 404 x{load.counts[('missing', 404)]}, "
             f"bad token 403 x{load.counts[('bad-token', 403)]}",
             f"- server RSS (parent + 2 workers): {rss_start / 1024:.1f} MiB after warm-up, {rss_end / 1024:.1f} MiB "
             f"at the end ({growth:+.1f}%)",
             f"- audit chain at the end: {audit}", ""]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace (or append) only this script's section of bench/RESULTS.md."""
    path = Path(__file__).with_name("RESULTS.md")
    current = path.read_text()
    start = current.find(SECTION)
    if start == -1:
        current = current.rstrip("\n") + "\n\n" + text
    else:
        following = current.find("\n## ", start + len(SECTION))
        current = current[:start] + text + ("" if following == -1 else current[following:])
    path.write_text(current)


if __name__ == "__main__":
    sys.exit(main())
