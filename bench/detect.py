"""Detector throughput on mixed filler: hyperscan engine vs keyword fallback vs a `bytes.count` floor."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from tests.scan.data.filler import filler_files

from kinko.config import scan_cache_dir
from kinko.scan.detect import HyperscanDetector, KeywordDetector, load_rules
from kinko.scan.interface import Detector

MIB = 1024 * 1024


def _time_detector(detector: Detector, files: list[bytes]) -> tuple[float, int]:
    start = time.perf_counter()
    hits = sum(len(detector.scan(buf, path="filler")) for buf in files)
    return time.perf_counter() - start, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=64, help="filler size in MiB")
    parser.add_argument("--skip-keyword", action="store_true", help="skip the (slower) keyword engine")
    args = parser.parse_args()
    files = filler_files(args.mib * MIB)
    size = sum(map(len, files)) / MIB
    rules = load_rules()

    start = time.perf_counter()
    sum(buf.count(b"\n") for buf in files)
    floor = time.perf_counter() - start
    print(f"filler: {size:.1f} MiB in {len(files)} buffers, {len(rules)} rules")
    print(f"floor (bytes.count):  {size / floor:10.1f} MiB/s")
    # The user's rule cache, as `kinko scan` uses it (only the scans are timed).
    hs_time, hs_hits = _time_detector(HyperscanDetector(rules, cache_dir=scan_cache_dir(os.environ)), files)
    print(f"hyperscan engine:     {size / hs_time:10.1f} MiB/s  false positives: {hs_hits}"
          f"  ratio to floor: {floor / hs_time:.3f}")
    if not args.skip_keyword:
        kw_time, kw_hits = _time_detector(KeywordDetector(rules), files)
        print(f"keyword engine:       {size / kw_time:10.1f} MiB/s  false positives: {kw_hits}"
              f"  hyperscan speedup: {kw_time / hs_time:.1f}x")


if __name__ == "__main__":
    main()
