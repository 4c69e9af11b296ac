"""`--known-from-vault` cost: the vault's stored values looked for in text and binary data, next to the rule pass.

    .venv/bin/python bench/known_values.py [--mib 64] [--values 50] [--lengths distinct|few]

The data is the scanner tests' filler (code, logs, JSON, YAML, random binaries; tests/scan/data/filler.py) with the
stored values planted in it. `--lengths distinct` gives every stored value its own length (8, 9, ... bytes: the
worst case, since every token of a stored length is hashed); `few` draws them from 16/24/32/40/64 bytes, as API
keys and generated passwords are. Printed: MiB/s of `KnownValues.find` (BLAKE2b and HMAC-SHA256 fingerprints) and
of the rule detector's pass on the same buffers, one process, and how many planted values were found.
"""

from __future__ import annotations

import argparse
import random
import secrets
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scan.data.filler import filler_files  # noqa: E402

from kinko.core.fingerprints import BLAKE2B, HMAC_SHA256, KEY_BYTES, fingerprint  # noqa: E402
from kinko.scan.detect import HyperscanDetector, load_rules  # noqa: E402
from kinko.scan.detect.known import KnownValues  # noqa: E402

ALPHABET = string.ascii_letters + string.digits


def _plant(files: list[bytes], values: list[bytes], rng: random.Random) -> list[bytes]:
    out = list(files)
    for value in values:
        i = rng.randrange(len(out))
        out[i] = out[i] + b"\nDB_PASSWORD=" + value + b"\n"
    return out


def _rate(fn: object, files: list[bytes], mib: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    found = sum(len(fn(f)) for f in files)  # type: ignore[operator]
    return mib / (time.perf_counter() - t0), found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--values", type=int, default=50)
    ap.add_argument("--lengths", choices=["distinct", "few"], default="distinct")
    args = ap.parse_args()
    rng = random.Random(11)
    sizes = [8 + i for i in range(args.values)] if args.lengths == "distinct" else [
        rng.choice((16, 24, 32, 40, 64)) for _ in range(args.values)]  # fmt: skip
    values = ["".join(rng.choice(ALPHABET) for _ in range(n)).encode() for n in sizes]
    files = _plant(filler_files(args.mib * 1024 * 1024), values, rng)
    mib = sum(map(len, files)) / 2**20
    key = secrets.token_bytes(KEY_BYTES)
    rows = []
    for algorithm in (BLAKE2B, HMAC_SHA256):
        prints = [fp for i, v in enumerate(values) if (fp := fingerprint(key, f"s/{i}", v, algorithm)) is not None]
        rate, found = _rate(KnownValues(prints, key).find, files, mib)
        rows.append(f"| known values, {algorithm} | {rate:.1f} | {found}/{len(values)} planted found |")
    detector = HyperscanDetector(load_rules())
    rate, _ = _rate(detector.scan, files, mib)
    rows.append(f"| rule detector (hyperscan + confirm) | {rate:.1f} | — |")
    print(f"{mib:.0f} MiB of filler, {len(values)} stored values, lengths {args.lengths}, one process\n")
    print("| pass | MiB/s | found |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
