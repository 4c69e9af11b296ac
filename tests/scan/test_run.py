"""kinko.scan.run: the pipeline without the CLI — scan with the shipped rules, baselines, and the exit verdict."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kinko.errors import InvalidInput
from kinko.scan.interface import Finding, FindingKind, Location, ScanResult, ScanWarning, Severity
from kinko.scan.run import exit_code, scan
from kinko.scan.sources.directory import DirectorySource
from tests.scan.tokens import github_token


def _token() -> str:
    return github_token()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app.py").write_text(f'GITHUB_TOKEN = "{_token()}"\nDB_PASSWORD = "Zq8vN2kLp4Rt7wXy"\n')
    return root


def _result(*severities: Severity) -> ScanResult:
    location = Location("a", "a")
    return ScanResult(findings=[Finding("r", "t", s, FindingKind.SECRET, location) for s in severities])


def test_scan_runs_the_shipped_rules_and_reports_progress(repo: Path) -> None:
    seen: list[int] = []
    result = scan(DirectorySource(repo), on_finding=lambda r: seen.append(len(r.findings)))
    assert {f.rule_id for f in result.findings} >= {"github-pat"}
    assert seen == list(range(1, len(result.findings) + 1))
    assert any(rule.id == "github-pat" for rule in result.rules)  # what SARIF lists
    assert result.artifacts == [str(repo)] and result.bytes_scanned > 0
    assert result.fingerprint_key is None and result.accepted is None


def test_exit_code_follows_fail_on() -> None:
    result = _result(Severity.HIGH, Severity.LOW)
    assert exit_code(result, Severity.HIGH) == 1 and exit_code(result, Severity.LOW) == 1
    assert exit_code(result, Severity.CRITICAL) == 0
    assert exit_code(ScanResult(), Severity.INFO) == 0


def _incomplete(*severities: Severity) -> ScanResult:
    result = _result(*severities)
    result.skip("a", "layer 0: not scanned")
    return result


def test_an_incomplete_scan_exits_3_unless_allowed() -> None:
    assert exit_code(_incomplete(), Severity.HIGH) == 3
    assert exit_code(_incomplete(), Severity.HIGH, allow_incomplete=True) == 0
    assert exit_code(_incomplete(Severity.LOW), Severity.HIGH) == 3  # below --fail-on: the skipped part decides
    assert exit_code(_incomplete(Severity.LOW), Severity.HIGH, allow_incomplete=True) == 0
    assert _incomplete().incomplete == [ScanWarning("a", "layer 0: not scanned", skipped=True)]


def test_findings_win_over_incompleteness() -> None:
    assert exit_code(_incomplete(Severity.CRITICAL), Severity.HIGH) == 1
    assert exit_code(_incomplete(Severity.CRITICAL), Severity.HIGH, allow_incomplete=True) == 1


def test_plain_warnings_do_not_make_a_scan_incomplete() -> None:
    result = _result()
    result.warnings.append(ScanWarning("a", "2 absolute or `..` entry names"))
    assert result.incomplete == [] and exit_code(result, Severity.INFO) == 0


def test_a_written_baseline_accepts_findings_not_skipped_parts() -> None:
    result = _incomplete(Severity.CRITICAL)
    result.accepted = 1
    assert exit_code(result, Severity.HIGH) == 3
    assert exit_code(result, Severity.HIGH, allow_incomplete=True) == 0


def test_written_baseline_accepts_then_filters(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    written = scan(DirectorySource(repo), write_baseline=target)
    assert written.accepted == len(written.findings) > 0
    assert exit_code(written, Severity.INFO) == 0  # accepted, whatever the findings
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    again = scan(DirectorySource(repo), baseline=target)
    assert again.findings == [] and exit_code(again, Severity.INFO) == 0
    assert again.fingerprint_key is not None and again.accepted is None  # reports use the baseline's keyed hashes
    (repo / "new.py").write_text(f'GITHUB_TOKEN = "{_token()}"\n')
    changed = scan(DirectorySource(repo), baseline=target)
    assert changed.findings and all(f.location.path == "new.py" for f in changed.findings)


def test_baseline_key_sets_the_fingerprint_key(repo: Path) -> None:
    key = bytes.fromhex("ab" * 32)
    assert scan(DirectorySource(repo), baseline_key=key).fingerprint_key == key


def test_baseline_key_keeps_the_key_out_of_a_written_baseline(repo: Path, tmp_path: Path) -> None:
    key, target = bytes(range(32)), tmp_path / "baseline.json"
    scan(DirectorySource(repo), write_baseline=target, baseline_key=key)
    assert '"env:KINKO_BASELINE_KEY"' in target.read_text() and key.hex() not in target.read_text()
    assert scan(DirectorySource(repo), baseline=target, baseline_key=key).findings == []
    with pytest.raises(InvalidInput, match="KINKO_BASELINE_KEY is not set"):
        scan(DirectorySource(repo), baseline=target)


def test_engine_and_cache_dir_choose_the_detector(repo: Path, tmp_path: Path) -> None:
    def found(result: ScanResult) -> list[tuple[str, str]]:
        return sorted((f.rule_id, f.location.path) for f in result.findings)

    fast = scan(DirectorySource(repo), cache_dir=tmp_path / "cache")
    assert found(scan(DirectorySource(repo), engine="keyword")) == found(fast)
    pytest.importorskip("hyperscan")
    assert list((tmp_path / "cache").glob("*.hsdb"))  # the compiled rules were kept where asked
