"""Hand-written Secret manifests that the API server would refuse still leak their values: they are read anyway."""

from __future__ import annotations

import base64
from pathlib import Path

from kinko.scan.detect import default_detector
from kinko.scan.interface import Finding, ScanResult
from kinko.scan.sources.kubernetes import KubernetesSource

PASSWORD = "S!B\\*d$zDsb=Qx"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _scan(tmp_path: Path, text: str) -> tuple[list[Finding], ScanResult]:
    path = tmp_path / "secret.yaml"
    path.write_text(text)
    result = ScanResult()
    return list(KubernetesSource([path]).scan(default_detector(), result)), result


def test_a_tab_indented_secret_is_read_and_its_value_reported_on_its_line(tmp_path: Path) -> None:
    text = f"apiVersion: v1\ndata:\n\tpassword: {_b64(PASSWORD)}\nkind: Secret\nmetadata:\n\tname: db\n"
    findings, _ = _scan(tmp_path, text)
    hits = [f for f in findings if f.location.path.endswith("data.password")]
    assert hits and {f.location.line for f in hits} == {3}


def test_a_lowercase_kind_secret_is_still_a_secret(tmp_path: Path) -> None:
    text = f"apiVersion: v1\nkind: secret\nmetadata:\n  name: db\ndata:\n  password: {_b64(PASSWORD)}\n"
    findings, _ = _scan(tmp_path, text)
    assert any(f.location.path.endswith("data.password") for f in findings)


def test_values_too_short_to_be_credentials_are_not_reported(tmp_path: Path) -> None:
    text = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: flags\ndata:\n  extra: {_b64('bar')}\n  on: {_b64('1')}\n"
    findings, _ = _scan(tmp_path, text)
    assert findings == []


def test_broken_yaml_without_tabs_is_still_only_a_warning(tmp_path: Path) -> None:
    findings, result = _scan(tmp_path, "apiVersion: v1\nkind: Secret\ndata: [unclosed\n")
    assert findings == [] and result.warnings
