"""Transit encrypt and decrypt of 1 KiB over HTTP, kinko vs the real OpenBao server, in one run: same wrk, same
connections, same request bodies (Vault's transit wire format on both), a non-root token whose policy grants
exactly the operation. Plus the in-process floor: a bare AES-256-GCM encrypt of 1 KiB with a fresh nonce.

OpenBao is `bao server -dev` (in-memory storage, transit mounted); kinko is `kinko server --dev --workers 2`
(SQLite). No audit device on either. wrk: 2 threads, 64 connections, sharing the machine's cores with the server
under test (one server runs at a time). Servers are started as in bench/vault_peer.py.
Usage: .venv/bin/python bench/keys.py [--seconds 10] [--rounds 2] [--no-write]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import run_wrk, write_section
from vault_peer import CONNECTIONS, start_kinko, start_openbao

SECTION = "## keys (bench/keys.py)"
KEY = "bench-key"
PLAINTEXT = base64.b64encode(secrets.token_bytes(1024)).decode()
POLICY_HCL = f'path "transit/encrypt/{KEY}" {{ capabilities = ["update"] }}\n' \
             f'path "transit/decrypt/{KEY}" {{ capabilities = ["update"] }}'
POLICY_KINKO = {"rules": [{"path": f"transit/encrypt/{KEY}", "capabilities": ["update"]},
                          {"path": f"transit/decrypt/{KEY}", "capabilities": ["update"]}]}


def _root(name: str, work: Path) -> str:
    if name == "openbao":
        return "bench-root"
    import re

    found = re.search(r"Root token: (\S+)", (work / "kinko.out").read_text())
    assert found
    return found.group(1)


def _prepare(name: str, addr: str, work: Path) -> tuple[str, str]:
    """Create the key and a token allowed to encrypt and decrypt with it; (token, a 1 KiB ciphertext)."""
    headers = {"X-Vault-Token": _root(name, work)}
    if name == "openbao":
        httpx.post(f"{addr}/v1/sys/mounts/transit", headers=headers, json={"type": "transit"}).raise_for_status()
        httpx.put(f"{addr}/v1/sys/policies/acl/bench-keys", headers=headers,
                  json={"policy": POLICY_HCL}).raise_for_status()
    else:
        httpx.put(f"{addr}/v1/sys/policies/bench-keys", headers=headers, json=POLICY_KINKO).raise_for_status()
    httpx.post(f"{addr}/v1/transit/keys/{KEY}", headers=headers, json={}).raise_for_status()
    token = httpx.post(f"{addr}/v1/auth/token/create", headers=headers,
                       json={"policies": ["bench-keys"]}).json()["auth"]["client_token"]
    sealed = httpx.post(f"{addr}/v1/transit/encrypt/{KEY}", headers={"X-Vault-Token": token},
                        json={"plaintext": PLAINTEXT})
    sealed.raise_for_status()
    return token, sealed.json()["data"]["ciphertext"]


def _script(work: Path, body: dict[str, str]) -> Path:
    script = work / f"post-{len(list(work.glob('post-*')))}.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    return script


def measure(name: str, seconds: float, work: Path) -> dict[str, dict[str, float]]:
    starter = start_openbao if name == "openbao" else start_kinko
    proc, addr, _reader = starter(work, False)
    try:
        token, ciphertext = _prepare(name, addr, work)
        opened = httpx.post(f"{addr}/v1/transit/decrypt/{KEY}", headers={"X-Vault-Token": token},
                            json={"ciphertext": ciphertext}).json()["data"]["plaintext"]
        assert opened == PLAINTEXT
        out = {}
        for op, body in (("encrypt", {"plaintext": PLAINTEXT}), ("decrypt", {"ciphertext": ciphertext})):
            url = f"{addr}/v1/transit/{op}/{KEY}"
            script = _script(work, body)
            run_wrk(url, f"X-Vault-Token: {token}", 2, CONNECTIONS, script=script)  # warm-up
            out[op] = run_wrk(url, f"X-Vault-Token: {token}", seconds, CONNECTIONS, script=script)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def floor(count: int = 50_000) -> float:
    """Bare AES-256-GCM encryptions of 1 KiB per second in this process (fresh nonce each)."""
    aead, data = AESGCM(AESGCM.generate_key(256)), secrets.token_bytes(1024)
    start = time.perf_counter()
    for _ in range(count):
        aead.encrypt(os.urandom(12), data, None)
    return count / (time.perf_counter() - start)


def report(rounds: list[dict[str, dict[str, dict[str, float]]]], seconds: float, bare: float) -> str:
    lines = [SECTION, "", f"Command: `.venv/bin/python bench/keys.py --seconds {seconds:g}`. wrk 2 threads, "
             f"{CONNECTIONS} connections, {os.cpu_count()} CPUs shared by server and load generator; OpenBao 2.7.2 "
             "`server -dev` (in-memory, transit mounted) vs `kinko server --dev --workers 2` (SQLite); a token "
             "allowed exactly encrypt and decrypt on the key; 1 KiB plaintext, aes256-gcm96. Best of the rounds.",
             "", "| operation | server | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    summary = []
    for op in ("encrypt", "decrypt"):
        best = {name: max((r[name][op] for r in rounds), key=lambda m: m["rps"]) for name in ("openbao", "kinko")}
        for name, m in best.items():
            lines.append(f"| {op} | {name} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} |")
        ratio = best["kinko"]["rps"] / best["openbao"]["rps"]
        summary.append(f"- transit {op} 1 KiB: kinko / OpenBao = **{ratio:.2f}x** req/s (target >= 1.0x)")
    summary.append(f"- floor: bare AES-256-GCM encrypt of 1 KiB in one Python process: {bare:,.0f}/s "
                   "(what the HTTP, token, policy and audit work is measured against)")
    return "\n".join([*lines, "", *summary]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the servers this many times")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave bench/RESULTS.md alone.")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/keys.py needs wrk (apt-get install wrk)")
    rounds: list[dict[str, dict[str, dict[str, float]]]] = []
    with tempfile.TemporaryDirectory(prefix="kinko-keys-") as tmp:
        for n in range(args.rounds):
            result: dict[str, dict[str, dict[str, float]]] = {}
            for name in ("openbao", "kinko"):
                work = Path(tmp) / f"{n}-{name}"
                work.mkdir()
                result[name] = measure(name, args.seconds, work)
                print(name, result[name], flush=True)
            rounds.append(result)
    text = report(rounds, args.seconds, floor())
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
