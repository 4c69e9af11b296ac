"""The scan pipeline as a library: `scan` runs a source with the shipped rules and a baseline, `exit_code` judges it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kinko.config import ScanEngine
from kinko.scan.baseline import Baseline
from kinko.scan.detect import default_detector
from kinko.scan.detect.known import KnownValues, KnownValuesDetector
from kinko.scan.interface import Detector, ScanResult, Severity, Source


def scan(
    source: Source,
    *,
    baseline: str | Path | None = None,
    write_baseline: str | Path | None = None,
    on_finding: Callable[[ScanResult], None] | None = None,
    baseline_key: bytes | None = None,
    engine: ScanEngine = "auto",
    cache_dir: Path | None = None,
    known_values: KnownValues | None = None,
) -> ScanResult:
    """Scan `source` with the shipped rules, then apply the baseline files.

    `write_baseline` saves every finding (keyed like `baseline` when one is given) and accepts them all:
    they no longer fail `exit_code`. Findings listed in `baseline` are dropped from the result. `on_finding` runs after
    each finding is added (a progress display reads the counts). `baseline_key` is KINKO_BASELINE_KEY's key
    (`baseline.parse_key`): new baselines name it instead of holding a key, and reports fingerprint with it.
    `engine` and `cache_dir` choose the detector (`detect.default_detector`); `known_values` adds the vault's
    stored values (`detect.known`, `--known-from-vault`).
    """
    detector: Detector = default_detector(engine, cache_dir)
    if known_values is not None:
        detector = KnownValuesDetector(detector, known_values)
    result = ScanResult(rules=getattr(detector, "rules", ()))
    for finding in source.scan(detector, result):
        result.findings.append(finding)
        if on_finding is not None:
            on_finding(result)
    known = Baseline.load(baseline, env_key=baseline_key) if baseline else None
    if write_baseline:
        accepted = Baseline.from_findings(result.findings, key=known.key if known else None, env_key=baseline_key)
        accepted.save(write_baseline)
        result.accepted = len(result.findings)
    if known is not None:
        result.findings = known.filter(result.findings)
    # Keyed fingerprints (the baseline's hashes) only with a stable key; else hashes of where, never of what.
    result.fingerprint_key = known.key if known else baseline_key
    return result


#: Exit statuses of `kinko scan` (and `exit_code`); 2 is a usage error (click's own).
CLEAN, FINDINGS, INCOMPLETE = 0, 1, 3


def exit_code(result: ScanResult, fail_on: Severity, allow_incomplete: bool = False) -> int:
    """1 when a finding is at least `fail_on` severe; else 3 when part of the artifact was not scanned (unless
    `allow_incomplete`); else 0.

    Findings win over incompleteness: what was found is certain whatever was skipped, and it is the more urgent
    thing to fix. Writing a baseline accepts the findings (they no longer give 1), not the skipped parts.
    """
    if result.accepted is None and any(f.severity >= fail_on for f in result.findings):
        return FINDINGS
    if result.incomplete and not allow_incomplete:
        return INCOMPLETE
    return CLEAN
