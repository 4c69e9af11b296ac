"""KMS v2 Encrypt+Decrypt round trips over the plugin's Unix socket, p50 and p99, against the floor: a bare
AES-256-GCM wrap and unwrap of the same 32-byte seed in the same process.

The plugin runs in this process on a Unix socket, talking to `kinko server --dev --workers 2` over HTTP with a
least-privilege token (read the key, encrypt and decrypt with it); the client is the generated gRPC stub, one
call at a time (the API server calls the plugin when it creates or first reads a DEK, not per Secret).
Usage: .venv/bin/python bench/kms.py [--calls 2000] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).parent))
from vault_peer import start_kinko, write_section

from kinko.client import RemoteVault
from kinko.deliver.kms.plugin import KmsPlugin, serve
from kinko.deliver.kms.proto import api_pb2 as pb
from kinko.deliver.kms.proto import api_pb2_grpc as pb_grpc
from kinko.deliver.unix_grpc import stop

SECTION = "## kms (bench/kms.py)"
POLICY = {"name": "kms-plugin", "rules": [{"path": "transit/keys/k8s-etcd", "capabilities": ["read"]},
                                          {"path": "transit/encrypt/k8s-etcd", "capabilities": ["update"]},
                                          {"path": "transit/decrypt/k8s-etcd", "capabilities": ["update"]}]}


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def plugin_round_trips(stub: pb_grpc.KeyManagementServiceStub, calls: int) -> list[float]:
    seed, times = secrets.token_bytes(32), []
    for n in range(calls):
        start = time.perf_counter()
        sealed = stub.Encrypt(pb.EncryptRequest(plaintext=seed, uid=str(n)))
        opened = stub.Decrypt(pb.DecryptRequest(ciphertext=sealed.ciphertext, uid=str(n), key_id=sealed.key_id,
                                                annotations=sealed.annotations))
        times.append(time.perf_counter() - start)
        assert opened.plaintext == seed
    return times


def floor_round_trips(calls: int) -> list[float]:
    aead, seed, times = AESGCM(AESGCM.generate_key(256)), secrets.token_bytes(32), []
    for _ in range(calls):
        start = time.perf_counter()
        nonce = os.urandom(12)
        assert aead.decrypt(nonce, aead.encrypt(nonce, seed, None), None) == seed
        times.append(time.perf_counter() - start)
    return times


def measure(calls: int, work: Path) -> tuple[list[float], list[float]]:
    import re

    proc, addr, _reader = start_kinko(work, False)
    try:
        found = re.search(r"Root token: (\S+)", (work / "kinko.out").read_text())
        assert found
        admin = RemoteVault.connect(addr, found.group(1))
        admin.create_key("k8s-etcd")
        admin.write_policy(POLICY)
        token, _ = admin.create_token(policies=["kms-plugin"])
        session = RemoteVault.connect(addr, token)
        server = serve(work / "kms.sock", KmsPlugin(session, "k8s-etcd"))
        try:
            with grpc.insecure_channel(f"unix:{work / 'kms.sock'}") as channel:
                stub = pb_grpc.KeyManagementServiceStub(channel)
                plugin_round_trips(stub, 100)  # warm-up
                measured = plugin_round_trips(stub, calls)
        finally:
            stop(server)
            session.close()
            admin.close()
        return measured, floor_round_trips(calls)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def report(plugin: list[float], floor: list[float], calls: int) -> str:
    (p50, p99), (f50, f99) = percentiles(plugin), percentiles(floor)
    return "\n".join([
        SECTION, "", f"Command: `.venv/bin/python bench/kms.py --calls {calls}`. {os.cpu_count()} CPUs; the plugin in "
        "the benchmark's process on a Unix socket, `kinko server --dev --workers 2` (SQLite) over HTTP, a token "
        "limited to the key; Encrypt then Decrypt of a 32-byte seed, one call at a time.", "",
        "| round trip | p50 ms | p99 ms |", "|---|---|---|",
        f"| KMS v2 Encrypt+Decrypt over the socket | {p50:.2f} | {p99:.2f} |",
        f"| floor: bare AES-256-GCM wrap+unwrap in process | {f50:.4f} | {f99:.4f} |", "",
        f"- the plugin's round trip is {p50 / f50:,.0f}x the floor at p50: two gRPC calls, and per call one HTTPS "
        "request to kinko (token, policy, audit, the sealed key document, the AEAD). The API server pays it when it "
        "creates a DEK or first reads one, not per Secret (KMS v2 caches DEKs).",
    ]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="Print only; leave bench/RESULTS.md alone.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kinko-kms-") as tmp:
        plugin, floor = measure(args.calls, Path(tmp))
    text = report(plugin, floor, args.calls)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
