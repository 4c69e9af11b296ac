"""Report fingerprints: stable across runs without a key, and never a handle to confirm a guessed secret."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinko.cli.scan import cli
from kinko.scan.interface import Finding, FindingKind, Location, ScanResult, Severity
from kinko.scan.report import ReportOptions
from kinko.scan.report.json import render_json
from kinko.scan.report.sarif import render_sarif
from tests.scan.tokens import github_token


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KINKO_BASELINE_KEY", raising=False)


def _token() -> str:
    return github_token()


def _scan(root: Path, fmt: str, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["dir", str(root), "-o", fmt, *extra])
    assert result.exit_code == 1, result.output
    return result.stdout


def _sarif_prints(out: str) -> list[dict[str, str]]:
    return [r["partialFingerprints"] for r in json.loads(out)["runs"][0]["results"]]


def test_two_runs_on_the_same_tree_give_identical_fingerprints(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(f'GITHUB_TOKEN = "{_token()}"\n')
    (tmp_path / "b.env").write_text('DB_PASSWORD = "Zq8vN2kLp4Rt7wXy"\nAPI_PASSWORD = "Hy3mK9pW2sLq8RzT4v"\n')
    first, second = _scan(tmp_path, "sarif"), _scan(tmp_path, "sarif")
    prints = _sarif_prints(first)
    assert prints == _sarif_prints(second)
    assert all(set(p) == {"kinkoLocation/v1"} for p in prints)
    assert len({p["kinkoLocation/v1"] for p in prints}) == len(prints)  # two hits in one file stay distinct
    json_prints = [f["fingerprint"] for f in json.loads(_scan(tmp_path, "json"))["findings"]]
    assert json_prints == [f["fingerprint"] for f in json.loads(_scan(tmp_path, "json"))["findings"]]


def test_location_fingerprint_survives_a_moved_line(tmp_path: Path) -> None:
    token = _token()
    (tmp_path / "app.py").write_text(f'GITHUB_TOKEN = "{token}"\n')
    before = _sarif_prints(_scan(tmp_path, "sarif"))
    (tmp_path / "app.py").write_text(f'import os\n\nGITHUB_TOKEN = "{token}"\n')
    assert _sarif_prints(_scan(tmp_path, "sarif")) == before


def _finding(secret: str) -> Finding:
    loc = Location("repo", "src/app.py", line=3)
    return Finding("github-pat", "GitHub PAT", Severity.CRITICAL, FindingKind.SECRET, loc, secret=secret)


@pytest.mark.parametrize("render", [render_json, lambda r, o: render_sarif(r, (), o)])
def test_unkeyed_fingerprint_does_not_depend_on_the_secret(render: object) -> None:
    """Same rule and place, different secret: same print, so a guessed value cannot be checked against it."""
    secret, guess = _token(), _token()
    outputs = [render(ScanResult(findings=[_finding(s)]), ReportOptions()) for s in (secret, guess)]  # type: ignore[operator]
    assert outputs[0] == outputs[1]
    for message in (secret, f"github-pat\0{secret}"):
        assert hashlib.sha256(message.encode()).hexdigest() not in outputs[0]
    assert secret not in outputs[0]
    expected = hashlib.sha256(b"github-pat\0src/app.py\0\0secret").hexdigest()
    assert expected in outputs[0]


def test_keyed_fingerprint_with_a_baseline_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "app.py").write_text(f'GITHUB_TOKEN = "{_token()}"\n')
    monkeypatch.setenv("KINKO_BASELINE_KEY", "ab" * 32)
    prints = _sarif_prints(_scan(tmp_path, "sarif"))
    assert set(prints[0]) == {"kinkoSecret/v1"}
    assert prints == _sarif_prints(_scan(tmp_path, "sarif"))  # the env key is stable, so are its prints
