"""Vault get/put of a 1 KiB secret vs. a baseline measured in the same run.

Baseline for get: one bare sqlite3 SELECT of the same row + one raw AES-256-GCM decrypt (the irreducible work).
Baseline for put: one bare sqlite3 INSERT in its own transaction with the same PRAGMAs (synchronous=FULL: the fsync).
Usage: .venv/bin/python bench/core.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kinko.vault import Caller, SealType, open_vault


def rate(func: Callable[[], object], seconds: float) -> float:
    """Operations per second of `func` over about `seconds` (after a short warm-up)."""
    for _ in range(200):
        func()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            func()
        count += 100
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kinko-bench-"))
    value = os.urandom(1024)
    vault = open_vault(workdir / "vault.db", create=True)
    vault.init(seal=SealType.KEY_FILE, key_file=workdir / "key")
    vault.unseal(key_file=workdir / "key")
    # Through a session, as every interface calls the vault (cli, api, deliver).
    session = vault.session(Caller.local_operator())
    session.put("bench/one-kib", value)
    get_rate = rate(lambda: session.get("bench/one-kib"), args.seconds)
    put_rate = rate(lambda: session.put("bench/put", value, max_versions=5), args.seconds / 2)

    # Baseline: the same row, fetched and decrypted with nothing else.
    conn = sqlite3.connect(workdir / "base.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (path TEXT, version INTEGER, ct BLOB, PRIMARY KEY (path, version))")
    key = AESGCM.generate_key(256)
    aead, nonce = AESGCM(key), os.urandom(12)
    conn.execute("INSERT INTO t VALUES (?, ?, ?)", ("bench/one-kib", 1, nonce + aead.encrypt(nonce, value, b"aad")))

    def base_get() -> bytes:
        blob = conn.execute("SELECT ct FROM t WHERE path = ? AND version = ?", ("bench/one-kib", 1)).fetchone()[0]
        return aead.decrypt(blob[:12], blob[12:], b"aad")

    counter = iter(range(2, 10**9))

    def base_put() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", ("bench/put", next(counter), value))
        conn.execute("COMMIT")

    base_get_rate = rate(base_get, args.seconds)
    base_put_rate = rate(base_put, args.seconds / 2)
    print(f"{'operation':<10}{'kinko ops/s':>14}{'baseline ops/s':>17}{'cost ratio':>12}")
    print(f"{'get 1KiB':<10}{get_rate:>14,.0f}{base_get_rate:>17,.0f}{base_get_rate / get_rate:>11.2f}x")
    print(f"{'put 1KiB':<10}{put_rate:>14,.0f}{base_put_rate:>17,.0f}{base_put_rate / put_rate:>11.2f}x")
    print("get target: >= 50,000/s and <= 2x baseline cost; put is bounded by the fsync of synchronous=FULL")
    vault.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
