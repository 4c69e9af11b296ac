"""KV v2 reads, kinko vs the real OpenBao server, in one run: same wrk, same connections, same 1 KiB secret.

Both servers serve `GET /v1/secret/data/bench/one-kib` (KV v2, Vault's wire format) to a non-root token whose
policy grants read on it (OpenBao: an HCL policy; kinko: the built-in `secrets-reader`), so both evaluate a
policy on every request. Rows: (a) no audit device on either, (b) a file audit device on both (OpenBao:
`audit "file"` in its config file; kinko: `--audit-file`). OpenBao is `bao server -dev` (in-memory storage,
one process, all cores); kinko is `kinko server --dev` (SQLite) with --workers 2. wrk: 2 threads, 64
connections, sharing the machine's cores with the server under test (one server runs at a time).
Usage: .venv/bin/python bench/vault_peer.py [--seconds 10] [--rounds 2] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CONNECTIONS = 64
SECTION = "## vault peer (bench/vault_peer.py)"
PATH = "/v1/secret/data/bench/one-kib"
VALUE = {"value": "k" * 1024}
READER_HCL = 'path "secret/data/bench/*" { capabilities = ["read"] }'
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(addr: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(addr + "/v1/sys/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start: " + log.read_text()[-1000:])


def start_openbao(work: Path, audit: bool) -> tuple[subprocess.Popen[bytes], str, str]:
    port, root = free_port(), "bench-root"
    log = work / "bao.log"
    args = [str(BIN / "bao"), "server", "-dev", f"-dev-root-token-id={root}", f"-dev-listen-address=127.0.0.1:{port}"]
    if audit:  # OpenBao 2.x refuses audit devices through the API: they are declared in its config file
        config = work / "audit.hcl"
        config.write_text(f'audit "file" "bench" {{\n  options {{\n    file_path = "{work / "bao-audit.log"}"\n'
                          "  }\n}\n")
        args.append(f"-config={config}")
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    addr = f"http://127.0.0.1:{port}"
    wait_ready(addr, proc, log)
    headers = {"X-Vault-Token": root}
    httpx.put(f"{addr}/v1/sys/policies/acl/bench-reader", headers=headers,
              json={"policy": READER_HCL}).raise_for_status()
    reader = httpx.post(f"{addr}/v1/auth/token/create", headers=headers,
                        json={"policies": ["bench-reader"]}).json()["auth"]["client_token"]
    return proc, addr, reader


def start_kinko(work: Path, audit: bool) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    out, err = work / "kinko.out", work / "kinko.err"
    args = [str(BIN / "kinko"), "server", "--dev", "--workers", "2", "--listen", f"127.0.0.1:{port}"]
    if audit:
        args += ["--audit-file", str(work / "kinko-audit.log")]
    proc = subprocess.Popen(args, stdout=out.open("wb"), stderr=err.open("wb"), start_new_session=True)
    addr = f"http://127.0.0.1:{port}"
    wait_ready(addr, proc, err)
    root = re.search(r"Root token: (\S+)", out.read_text())
    assert root, out.read_text()
    headers = {"X-Vault-Token": root.group(1)}
    reader = httpx.post(f"{addr}/v1/auth/token/create", headers=headers,
                        json={"policies": ["secrets-reader"]}).json()["auth"]["client_token"]
    return proc, addr, reader


def wrk(url: str, token: str, seconds: float, script: str | None = None) -> dict[str, float]:
    """One wrk run; `script`: a Lua file setting the method and body (bench/keys.py's POSTs)."""
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency",
           "-H", f"X-Vault-Token: {token}", *(["-s", script] if script else []), url]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        raise SystemExit(f"errors during the run:\n{text}")

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        assert found, text
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    assert rps, text
    return {"rps": float(rps.group(1)), "p50": ms("50"), "p99": ms("99")}


def measure(name: str, audit: bool, seconds: float, work: Path) -> dict[str, float]:
    starter = start_openbao if name == "openbao" else start_kinko
    proc, addr, reader = starter(work, audit)
    try:
        root_headers = {"X-Vault-Token": reader}
        response = httpx.get(addr + PATH, headers=root_headers)
        if response.status_code == 404 or response.status_code == 403:
            _write(addr, work, name)
        assert httpx.get(addr + PATH, headers=root_headers).json()["data"]["data"] == VALUE
        wrk(addr + PATH, reader, 2)  # warm-up
        return wrk(addr + PATH, reader, seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _write(addr: str, work: Path, name: str) -> None:
    if name == "openbao":
        token = "bench-root"
    else:
        found = re.search(r"Root token: (\S+)", (work / "kinko.out").read_text())
        assert found
        token = found.group(1)
    httpx.post(addr + PATH, headers={"X-Vault-Token": token}, json={"data": VALUE}).raise_for_status()


def report(rows: dict[str, list[dict[str, dict[str, float]]]], seconds: float) -> str:
    lines = [SECTION, "", f"Command: `.venv/bin/python bench/vault_peer.py --seconds {seconds:g}`. wrk 2 threads, "
             f"{CONNECTIONS} connections, {os.cpu_count()} CPUs shared by server and load generator; OpenBao 2.7.2 "
             "`server -dev` (in-memory) vs `kinko server --dev --workers 2` (SQLite); a policy-limited token on "
             "both. Best of the rounds for each server.", "",
             "| audit | server | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    summary = []
    for audit, rounds in rows.items():
        best = {name: max((r[name] for r in rounds), key=lambda m: m["rps"]) for name in ("openbao", "kinko")}
        for name, m in best.items():
            lines.append(f"| {audit} | {name} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} |")
        ratio = best["kinko"]["rps"] / best["openbao"]["rps"]
        summary.append(f"- {audit}: kinko / OpenBao = **{ratio:.2f}x** req/s (target >= 1.0x); p99 "
                       f"{best['kinko']['p99']:.1f} ms vs {best['openbao']['p99']:.1f} ms")
    return "\n".join([*lines, "", *summary]) + "\n"


def write_section(text: str, section: str = SECTION) -> None:
    path = Path(__file__).with_name("RESULTS.md")
    current = path.read_text()
    start = current.find(section)
    if start == -1:
        current = current.rstrip("\n") + "\n\n" + text
    else:
        following = current.find("\n## ", start + len(section))
        current = current[:start] + text + ("" if following == -1 else current[following:])
    path.write_text(current)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the servers this many times")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave bench/RESULTS.md alone.")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/vault_peer.py needs wrk (apt-get install wrk)")
    rows: dict[str, list[dict[str, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="kinko-peer-") as tmp:
        for audit, label in ((False, "none"), (True, "file")):
            rows[label] = []
            for n in range(args.rounds):
                result = {}
                for name in ("openbao", "kinko"):
                    work = Path(tmp) / f"{label}-{n}-{name}"
                    work.mkdir()
                    result[name] = measure(name, audit, args.seconds, work)
                    print(label, name, result[name], flush=True)
                rows[label].append(result)
    text = report(rows, args.seconds)
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
