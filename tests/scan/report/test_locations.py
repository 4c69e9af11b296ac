"""Report locations (review #3): SARIF's artifactLocation.uri is a FILE a code-scanning UI can open; the
Kubernetes object path goes to logicalLocations and the message; JSON has separate `file` and `object`."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kinko.scan.detect import default_detector, load_rules
from kinko.scan.interface import FileStatus, Finding, FindingKind, Location, ScanResult, Severity, Source
from kinko.scan.report import ReportOptions
from kinko.scan.report.json import render_json
from kinko.scan.report.sarif import render_sarif
from kinko.scan.sources.directory import DirectorySource
from kinko.scan.sources.kubernetes import KubernetesSource

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json").read_text())
MANIFEST = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: app-creds, namespace: shop}}
data:
  API_KEY: {base64.b64encode(b"Hq7vN2xLpR4tW9zKmG39YU4Jv5dUfPjg").decode()}
"""


def _scan(source: Source) -> ScanResult:
    result = ScanResult()
    result.findings.extend(source.scan(default_detector(), result))
    return result


def _sarif_results(result: ScanResult) -> list[dict[str, Any]]:
    doc = json.loads(render_sarif(result, load_rules(), ReportOptions()))
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
    results: list[dict[str, Any]] = doc["runs"][0]["results"]
    return results


def _b64_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in results if r["ruleId"] == "k8s-secret-base64-not-encryption")


@pytest.mark.parametrize("mode", ["scan-k8s", "scan-dir"])
def test_manifest_finding_points_at_the_manifest_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      mode: str) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "x.yaml").write_text(MANIFEST)
    monkeypatch.chdir(tmp_path)  # `kinko scan k8s deploy/` from the repository root, as CI runs it
    source: Source = KubernetesSource(["deploy"]) if mode == "scan-k8s" else DirectorySource(".")
    result = _scan(source)
    hit = _b64_result(_sarif_results(result))
    physical = hit["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "deploy/x.yaml"
    assert physical["region"] == {"startLine": 5}
    logical = hit["locations"][0]["logicalLocations"]
    assert logical == [{"fullyQualifiedName": "Secret/shop/app-creds:data.API_KEY", "kind": "resource"}]
    assert "Secret/shop/app-creds:data.API_KEY" in hit["message"]["text"]

    finding = next(f for f in json.loads(render_json(result))["findings"]
                   if f["rule_id"] == "k8s-secret-base64-not-encryption")
    assert finding["location"]["file"] == "deploy/x.yaml"
    assert finding["location"]["object"] == "Secret/shop/app-creds:data.API_KEY"
    assert finding["location"]["path"].endswith("Secret/shop/app-creds:data.API_KEY")  # kept for compatibility


def test_image_finding_points_at_the_archive_with_the_in_image_path_logical() -> None:
    loc = Location("images/app.tar", "root/.env", line=2, layer_index=1, status=FileStatus.DELETED)
    finding = Finding("generic-password", "Hard-coded password", Severity.HIGH, FindingKind.SECRET, loc,
                      secret="Zq8vN2kLp4Rt7wXy")
    result = ScanResult(findings=[finding], artifacts=["images/app.tar"])
    hit = _sarif_results(result)[0]
    physical = hit["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "images/app.tar"}}  # a line of a tar archive means nothing
    assert hit["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "root/.env"
    assert hit["properties"]["path"] == "root/.env" and hit["properties"]["line"] == 2
    location = json.loads(render_json(result))["findings"][0]["location"]
    assert (location["file"], location["object"]) == ("images/app.tar", "root/.env")


def test_plain_file_finding_has_no_object(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text('DB = "postgresql://app:Zq8vN2kLp4Rt7wXy@db.internal/app"\n')
    result = _scan(DirectorySource(tmp_path))
    hit = _sarif_results(result)[0]
    assert hit["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "src/a.py"},
                                                       "region": {"startLine": 1}}
    assert "logicalLocations" not in hit["locations"][0]
    location = json.loads(render_json(result))["findings"][0]["location"]
    assert (location["file"], location["object"]) == ("src/a.py", None)


def test_absolute_paths_become_file_uris(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    hit = _b64_result(_sarif_results(_scan(KubernetesSource([path]))))
    assert hit["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == path.as_uri()
