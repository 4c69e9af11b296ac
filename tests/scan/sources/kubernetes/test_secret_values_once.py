"""`scan k8s` reports each Secret value once (review #14): the raw-text pass leaves Secret data to the decoded
pass, and a TLS Secret's public certificate is not reported as a secret."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from kinko.scan.detect import default_detector
from kinko.scan.interface import Finding, FindingKind, ScanResult, Severity
from kinko.scan.sources.directory import DirectorySource
from kinko.scan.sources.kubernetes import KubernetesSource

#: Base64 of a random-looking value: the encoded text itself trips generic-password / generic-secret.
PASSWORD = "Hq7vN2xLpR4tW9zK"
API_KEY = "mG39YU4Jv5dUfPjgfbpUQxpDcBRWTUhh"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRET = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: app-creds, namespace: shop}}
type: Opaque
data:
  password: {b64(PASSWORD)}
  api_key: {b64(API_KEY)}
"""


def _k8s(tmp_path: Path, text: str) -> list[Finding]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return list(KubernetesSource([path]).scan(default_detector(), ScanResult()))


def _dir(tmp_path: Path, text: str) -> list[Finding]:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "m.yaml").write_text(text)
    return list(DirectorySource(tmp_path).scan(default_detector(), ScanResult()))


def _per_line(findings: list[Finding]) -> dict[int | None, list[str]]:
    out: dict[int | None, list[str]] = {}
    for f in findings:
        out.setdefault(f.location.line, []).append(f.rule_id)
    return out


@pytest.mark.parametrize("scan", [_k8s, _dir], ids=["scan-k8s", "scan-dir"])
def test_secret_data_lines_are_not_flagged_again_by_the_raw_pass(
    tmp_path: Path, scan: Callable[[Path, str], list[Finding]]
) -> None:
    findings = scan(tmp_path, SECRET)
    lines = _per_line(findings)
    # line 6: password, line 7: api_key -- each reported as "only base64" plus what the DECODED value is
    for line in (6, 7):
        assert lines[line].count("k8s-secret-base64-not-encryption") == 1
        secrets = [f for f in findings if f.location.line == line and f.kind is FindingKind.SECRET
                   and f.rule_id != "k8s-secret-base64-not-encryption"]
        assert all(f.secret in (PASSWORD, API_KEY) for f in secrets), [f.rule_id for f in secrets]


def test_stringdata_is_scanned_once_as_its_value(tmp_path: Path) -> None:
    url = f"postgresql://shop:{PASSWORD}@db.internal:5432/shop"
    text = SECRET.replace("data:", "stringData:").replace(b64(API_KEY), API_KEY).replace(b64(PASSWORD), url)
    lines = _per_line(_k8s(tmp_path, text))
    # the plaintext finding, plus what the value is when a specific rule knows it; no raw generic-* echo
    assert sorted(lines[6]) == ["k8s-secret-stringdata-plaintext", "postgres-connection-url"]
    assert lines[7] == ["k8s-secret-stringdata-plaintext"]


def test_raw_pass_still_reports_secrets_outside_secret_data(tmp_path: Path) -> None:
    text = SECRET + f"""---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg}}
data:
  note: plain
  db_password: "{PASSWORD}x9"
"""
    findings = _k8s(tmp_path, text)
    assert any(f.location.line == 14 and f.kind is FindingKind.SECRET for f in findings)


def _tls(cert: str, key: str | None) -> str:
    lines = ["apiVersion: v1", "kind: Secret", "metadata: {name: web-tls, namespace: shop}",
             "type: kubernetes.io/tls", "data:", f"  tls.crt: {b64(cert)}"]
    if key is not None:
        lines.append(f"  tls.key: {b64(key)}")
    return "\n".join(lines) + "\n"


CERT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ3h0ZXN0\n-----END CERTIFICATE-----\n"


def test_tls_certificate_alone_is_not_a_secret(tmp_path: Path) -> None:
    findings = _k8s(tmp_path, _tls(CERT, None))
    assert [f.rule_id for f in findings if f.severity >= Severity.MEDIUM] == []


def test_tls_key_is_still_reported(tmp_path: Path) -> None:
    findings = _k8s(tmp_path, _tls(CERT, "not really a key but a value"))
    b64_findings = [f.location.path for f in findings if f.rule_id == "k8s-secret-base64-not-encryption"]
    assert b64_findings == ["Secret/shop/web-tls:data.tls.key"]
