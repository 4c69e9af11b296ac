"""Vault get/put of a 1 KiB secret vs. a baseline measured in the same run, interleaved.

Baseline for get: one bare sqlite3 SELECT of the same row + one raw AES-256-GCM decrypt (the irreducible work).
Baseline for put: one bare sqlite3 INSERT in its own transaction with the same PRAGMAs (synchronous=FULL: the fsync).
kinko is called through a `VaultSession` (`Vault.session(caller).get`), as every interface calls it.

Each round times `--calls` calls of every operation in turn and the report keeps each one's fastest round: short
interleaved rounds see the same load, so the ratio holds on a machine shared with other work (two long phases one
after the other do not: one may get a busy second and the other a quiet one).
Usage: .venv/bin/python bench/core.py [--rounds 60] [--calls 500]
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kinko.vault import Caller, SealType, open_vault


def best_per_call(operations: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, float]:
    """Seconds per call of each operation: its fastest round, rounds interleaved across operations."""
    best = dict.fromkeys(operations, float("inf"))
    for _ in range(rounds):
        for name, operation in operations.items():
            start = time.perf_counter()
            for _ in range(calls):
                operation()
            best[name] = min(best[name], (time.perf_counter() - start) / calls)
    return best


def interpreter() -> str:
    shared = "shared libpython" if sysconfig.get_config_var("Py_ENABLE_SHARED") else "static libpython"
    return (f"{platform.python_implementation()} {platform.python_version()} ({shared}, {sys.executable}); "
            f"cryptography {cryptography.__version__}; SQLite {sqlite3.sqlite_version}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kinko-bench-"))
    value = os.urandom(1024)

    vault = open_vault(workdir / "vault.db", create=True)
    vault.init(seal=SealType.KEY_FILE, key_file=workdir / "key")
    vault.unseal(key_file=workdir / "key")
    session = vault.session(Caller.local_operator())
    session.put("bench/one-kib", value)

    conn = sqlite3.connect(workdir / "base.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (path TEXT, version INTEGER, ct BLOB, PRIMARY KEY (path, version))")
    aead, nonce = AESGCM(AESGCM.generate_key(256)), os.urandom(12)
    conn.execute("INSERT INTO t VALUES (?, ?, ?)", ("bench/one-kib", 1, nonce + aead.encrypt(nonce, value, b"aad")))
    versions = count(2)

    def base_get() -> bytes:
        blob = conn.execute("SELECT ct FROM t WHERE path = ? AND version = ?", ("bench/one-kib", 1)).fetchone()[0]
        return aead.decrypt(blob[:12], blob[12:], b"aad")

    def base_put() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", ("bench/put", next(versions), value))
        conn.execute("COMMIT")

    gets = best_per_call({"kinko": lambda: session.get("bench/one-kib"), "baseline": base_get},
                         args.rounds, args.calls)
    puts = best_per_call({"kinko": lambda: session.put("bench/put", value, max_versions=5), "baseline": base_put},
                         max(3, args.rounds // 6), max(20, args.calls // 25))
    print(interpreter())
    print(f"{'operation':<10}{'kinko ops/s':>14}{'baseline ops/s':>17}{'µs/call':>16}{'cost ratio':>12}")
    for name, best in (("get 1KiB", gets), ("put 1KiB", puts)):
        kinko, base = best["kinko"], best["baseline"]
        print(f"{name:<10}{1 / kinko:>14,.0f}{1 / base:>17,.0f}{kinko * 1e6:>8.1f} / {base * 1e6:<6.1f}"
              f"{kinko / base:>11.2f}x")
    print("get target: >= 50,000/s and <= 2x baseline cost; put is bounded by the fsync of synchronous=FULL")
    vault.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
