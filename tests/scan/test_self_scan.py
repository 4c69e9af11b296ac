"""kinko scans its own source tree clean: the false positives a user test found stay fixed (review #8)."""

from __future__ import annotations

from pathlib import Path

from kinko.scan.detect import default_detector
from kinko.scan.interface import ScanResult, Severity
from kinko.scan.sources.directory import DirectorySource

REPO = Path(__file__).parents[2]


def _scan(root: Path) -> ScanResult:
    result = ScanResult()
    result.findings.extend(DirectorySource(root).scan(default_detector(), result))
    return result


def test_own_source_has_no_findings_at_medium_or_above() -> None:
    result = _scan(REPO / "src")
    loud = [(f.rule_id, f.location.path, f.location.line) for f in result.findings if f.severity >= Severity.MEDIUM]
    assert loud == []


def test_own_source_files_are_not_mistaken_for_dockerfiles() -> None:
    result = _scan(REPO / "src")
    assert [w.message for w in result.warnings if "Dockerfile" in w.message] == []
