"""What the HTTP benchmarks share: wrk's command line and parsed summary, and bench/RESULTS.md sections."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def wrk_command(url: str, header: str | None, seconds: float, connections: int, *, threads: int = 2,
                script: Path | None = None) -> list[str]:
    """`header`: one "Name: value" line (a token) or None."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
           "--timeout", "10s"]
    if header:
        cmd += ["-H", header]
    if script:
        cmd += ["-s", str(script)]
    return [*cmd, url]


def parse_wrk(text: str) -> dict[str, float]:
    """{rps, p50, p99} (ms) from wrk's --latency summary; a run with errors stops the benchmark."""
    if re.search(r"Non-2xx or 3xx responses: (\d+)", text) or "Socket errors" in text:
        raise SystemExit(f"errors during the run:\n{text}")

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        assert found, text
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    assert rps, text
    return {"rps": float(rps.group(1)), "p50": ms("50"), "p99": ms("99")}


def run_wrk(url: str, header: str | None, seconds: float, connections: int, *,
            script: Path | None = None) -> dict[str, float]:
    """`script`: a Lua file setting the method and body (bench/keys.py's POSTs)."""
    command = wrk_command(url, header, seconds, connections, script=script)
    return parse_wrk(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def write_section(section: str, text: str) -> None:
    """Replace (or append) one script's section of bench/RESULTS.md, leaving the others alone."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start = current.find(section)
    if start == -1:
        current = current.rstrip("\n") + "\n\n" + text
    else:
        following = current.find("\n## ", start + len(section))
        current = current[:start] + text + ("" if following == -1 else current[following:])
    RESULTS.write_text(current)
