"""Per-call µs of Vault.get, its steps, and the bench/core.py baseline, measured interleaved in one process.

Every round times each step for `--calls` calls in turn; the report keeps each step's fastest round. Short rounds,
interleaved, make the numbers (and the get/baseline ratio) stable on a machine shared with other work, where
two back-to-back long phases can see different load. Steps are timed alone (their cost inside a whole
get is higher: more code and data compete for the caches).
Usage: .venv/bin/python bench/get_steps.py [--rounds 150] [--calls 400]
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

from kinko.core.model import Secret, decode_payload
from kinko.vault import Caller, SealType, open_vault
from kinko.vault.records import _live_info

PATH = "bench/one-kib"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kinko-bench-"))
    value, caller = os.urandom(1024), Caller.local_operator()
    vault = open_vault(workdir / "vault.db", create=True)
    vault.init(seal=SealType.KEY_FILE, key_file=workdir / "key")
    vault.unseal(key_file=workdir / "key")
    vault.put(caller, PATH, value)
    vault.get(caller, PATH)
    store, barrier, records = vault._store, vault._seal_state.barrier(), vault._records
    row = store.get_live_version(PATH, None)
    assert row is not None
    checked = records._verified[PATH]  # tags, row, aad, change marker, version asked
    tags, aad = checked.tags, checked.aad
    payload = barrier.open_aad(row.value_ct, aad)
    plain, metadata = decode_payload(payload)

    conn = sqlite3.connect(workdir / "base.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (path TEXT, version INTEGER, ct BLOB, PRIMARY KEY (path, version))")
    aead, nonce = AESGCM(AESGCM.generate_key(256)), os.urandom(12)
    conn.execute("INSERT INTO t VALUES (?, ?, ?)", (PATH, 1, nonce + aead.encrypt(nonce, value, b"aad")))
    blob = conn.execute("SELECT ct FROM t WHERE path = ? AND version = ?", (PATH, 1)).fetchone()[0]

    def base_get() -> bytes:
        ct = conn.execute("SELECT ct FROM t WHERE path = ? AND version = ?", (PATH, 1)).fetchone()[0]
        return aead.decrypt(ct[:12], ct[12:], b"aad")

    def remembered_row() -> object:
        entry = records._verified.get(PATH)
        return entry is not None and entry.tags == tags

    steps: dict[str, Callable[[], object]] = {
        "(empty call)": lambda: None,
        "kinko Vault.get": lambda: vault.get(caller, PATH),
        "baseline get": base_get,
        "baseline: SELECT": lambda: conn.execute("SELECT ct FROM t WHERE path = ? AND version = ?",
                                                 (PATH, 1)).fetchone(),
        "baseline: decrypt": lambda: aead.decrypt(blob[:12], blob[12:], b"aad"),
        "path check (remembered)": lambda: type(PATH) is not str or PATH not in records._valid_paths,
        "authorize + audit (guard)": lambda: vault._guard.check(caller, "read", PATH, "secret.get"),
        "seal check (barrier)": vault._seal_state.barrier,
        "full live read (on a change)": lambda: store.get_live_version(PATH, None),
        "live tags (get_live_tags)": lambda: store.get_live_tags(PATH, None),
        "verified row, remembered": remembered_row,
        "AAD, encoded (_record_aad)": lambda: records._record_aad(PATH, row.version, "value", row.incarnation),
        "open (barrier.open_aad)": lambda: barrier.open_aad(row.value_ct, aad),
        "decode_payload": lambda: decode_payload(payload),
        "Secret.deferred": lambda: Secret.deferred(_live_info, (PATH, row), plain, metadata),
    }
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                step()
            best[name] = min(best[name], (time.perf_counter() - start) / args.calls * 1e6)
    for name, micros in best.items():
        print(f"{name:<30}{micros:8.2f} µs")
    print(f"get cost ratio (kinko / baseline): {best['kinko Vault.get'] / best['baseline get']:.2f}x")
    vault.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
