"""Reports: redaction everywhere by default (canary test), JSON schema, SARIF 2.1.0 validity, text layout."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
from pathlib import Path

import jsonschema
import pytest

from kinko.scan.detect import default_detector, load_rules
from kinko.scan.findings import matches_to_findings
from kinko.scan.interface import FileStatus, Finding, FindingKind, Location, ScanResult, ScanWarning, Severity
from kinko.scan.report import ReportOptions, render
from kinko.scan.report.json import render_json
from kinko.scan.report.sarif import render_sarif
from kinko.scan.report.text import render_text

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json").read_text())
FORMATS = ["text", "json", "sarif"]


def _canary() -> str:
    alphabet = string.ascii_letters + string.digits
    return "ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))


def _result(canary: str) -> ScanResult:
    image = "app.tar"
    deleted = Location(
        image, "root/bad-secret", line=2, layer_index=1, layer_diff_id="sha256:" + "ab" * 32,
        created_by="COPY secret /root/bad-secret # buildkit", status=FileStatus.DELETED, deleted_in_layer=2,
    )  # fmt: skip
    present = Location(image, "app/.env", line=1, layer_index=2, status=FileStatus.PRESENT)
    # The secret also echoed in another field (history created_by of an ENV), which must be scrubbed too.
    config = Location(image, "config:history[3]", created_by=f"ENV GITHUB_TOKEN={canary}")
    misconfig = Location("Dockerfile", "Dockerfile", line=4, object_ref="stage build")
    findings = [
        Finding("github-pat", "GitHub PAT", Severity.CRITICAL, FindingKind.SECRET, deleted, secret=canary),
        Finding("generic-password", "Hard-coded password", Severity.HIGH, FindingKind.SECRET, present,
                secret="Zq8vN2kLp4Rt7wXy"),
        Finding("github-pat", "GitHub PAT", Severity.CRITICAL, FindingKind.SECRET, config, secret=canary,
                message=f"token {canary} in ENV"),
        Finding("dockerfile-copy-then-rm", "Secret copied then removed", Severity.HIGH, FindingKind.MISCONFIG,
                misconfig, message="COPY secret then RUN rm keeps it in a layer",
                fix="use RUN --mount=type=secret"),
    ]  # fmt: skip
    return ScanResult(
        findings=findings,
        warnings=[ScanWarning(image, "layer blob sha256:00 missing")],
        bytes_scanned=3 * 2**20,
        artifacts=[image, "Dockerfile"],
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_canary_never_appears_by_default(fmt: str) -> None:
    canary = _canary()
    out = render(_result(canary), fmt, rules=load_rules())
    assert canary not in out
    assert canary[4:20] not in out  # not even a long fragment
    assert "Zq8vN2kLp4Rt7wXy" not in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_show_secrets_opts_in(fmt: str) -> None:
    canary = _canary()
    out = render(_result(canary), fmt, ReportOptions(show_secrets=True), rules=load_rules())
    assert canary in out


def test_json_schema_is_stable() -> None:
    canary = _canary()
    doc = json.loads(render_json(_result(canary), ReportOptions(fingerprint_key=b"k" * 32)))
    assert set(doc) == {"version", "findings", "warnings", "summary"}
    assert doc["version"] == 1
    first = doc["findings"][0]
    assert set(first) == {
        "rule_id", "title", "severity", "kind", "confidence", "message", "fix", "secret", "fingerprint", "location"
    }
    assert first["severity"] == "critical" and first["secret"] == "ghp_********"
    assert first["location"]["status"] == "deleted" and first["location"]["deleted_in_layer"] == 2
    message = f"github-pat\0app.tar\0root/bad-secret\0{canary}".encode()  # the baseline's keyed hash
    expected = hmac.new(b"k" * 32, message, hashlib.sha256).hexdigest()
    assert first["fingerprint"] == expected
    summary = doc["summary"]
    assert summary["findings"] == 4 and summary["by_severity"]["critical"] == 2
    assert summary["deleted_but_recoverable"] == 1 and summary["warnings"] == 1
    assert doc["warnings"] == [{"artifact": "app.tar", "message": "layer blob sha256:00 missing"}]


def test_sarif_validates_against_the_official_schema() -> None:
    doc = json.loads(render_sarif(_result(_canary()), load_rules(), ReportOptions()))
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) >= len(load_rules())
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert len(result["partialFingerprints"]["kinkoLocation/v1"]) == 64
    first = run["results"][0]
    assert first["level"] == "error"
    # the archive is the file; the in-image path and its line are the logical location, message and properties
    assert first["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "app.tar"}}
    assert first["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "root/bad-secret"
    assert "in root/bad-secret line 2" in first["message"]["text"]
    assert first["properties"]["path"] == "root/bad-secret" and first["properties"]["line"] == 2
    assert first["properties"]["layer_index"] == 1 and first["properties"]["status"] == "deleted"
    assert "deleted in layer 2" in first["message"]["text"]
    assert any(r["id"] == "dockerfile-copy-then-rm" for r in rules)  # structural rule added on the fly


def test_sarif_of_real_detector_findings_validates() -> None:
    detector = default_detector()
    data = f"token={_canary()}\nurl=postgres://app:Zq8vN2kLp4Rt7wXy@db/app\n".encode()
    findings = matches_to_findings(detector, detector.scan(data), lambda n: Location("repo", "src/a b.py", line=n))
    doc = json.loads(render_sarif(ScanResult(findings=findings, artifacts=["repo"]), detector.rules))
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
    assert [r["ruleId"] for r in doc["runs"][0]["results"]] == ["github-pat", "postgres-connection-url"]
    assert doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/a%20b.py"


def test_text_report_groups_by_artifact_and_layer() -> None:
    out = render_text(_result(_canary()))
    assert out.count("app.tar\n") == 1 and "Dockerfile\n" in out
    assert "layer 1 sha256:abab" in out and "layer 2" in out
    assert "status: deleted in layer 2, still recoverable from the archive" in out
    assert "status: present in final image" in out
    assert "created by: COPY secret /root/bad-secret" in out
    assert "secret: ghp_********" in out
    assert "fix: use RUN --mount=type=secret" in out
    assert "warning: app.tar: layer blob sha256:00 missing" in out
    assert "4 finding(s) (2 critical, 2 high), 1 in deleted files, 1 warning(s)" in out
    assert "\x1b[" not in out  # no colour codes unless asked


def test_text_report_wraps_only_to_a_given_width() -> None:
    long_path = "/".join(["deeply-nested-directory"] * 8) + "/settings.py"
    finding = Finding("generic-password", "Hard-coded password", Severity.HIGH, FindingKind.SECRET,
                      Location("repo", long_path, line=3), secret="Zq8vN2kLp4Rt7wXy")
    result = ScanResult(findings=[finding], artifacts=["repo"])
    assert f"      at {long_path}:3\n" in render_text(result)  # no width (a pipe, a file): one line
    wrapped = render_text(result, width=80)  # a terminal's width: rich wraps to it
    assert f"{long_path}:3" not in wrapped and max(len(line) for line in wrapped.splitlines()) <= 80


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        render(ScanResult(), "xml")


def test_empty_result_renders_in_every_format() -> None:
    for fmt in FORMATS:
        out = render(ScanResult(), fmt)
        assert out
    assert json.loads(render_json(ScanResult()))["findings"] == []


def _incomplete(canary: str) -> ScanResult:
    result = _result(canary)
    result.skip("app.tar", "layer 3: decompresses past 1024 bytes (Limits.max_layer_bytes); rest not scanned")
    return result


def test_text_report_marks_an_incomplete_scan() -> None:
    out = render_text(_incomplete(_canary()))
    assert "warning: app.tar: layer blob sha256:00 missing" in out  # a plain warning stays one
    assert "incomplete: app.tar: layer 3: decompresses past 1024 bytes (Limits.max_layer_bytes)" in out
    assert out.endswith("2 warning(s), 3.0 MiB scanned in 2 artifact(s)\nscan incomplete: 1 part(s) not scanned "
                        "(`incomplete:` above)\n")  # fmt: skip
    assert "incomplete" not in render_text(_result(_canary()))


def test_json_lists_the_skipped_parts_only_when_incomplete() -> None:
    doc = json.loads(render_json(_incomplete(_canary())))
    skipped = {"artifact": "app.tar", "message": "layer 3: decompresses past 1024 bytes (Limits.max_layer_bytes); "
               "rest not scanned"}  # fmt: skip
    assert doc["incomplete"] == [skipped] and skipped in doc["warnings"]
    assert "incomplete" not in json.loads(render_json(_result(_canary())))


def test_sarif_says_the_run_was_incomplete() -> None:
    doc = json.loads(render_sarif(_incomplete(_canary()), load_rules()))
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
    invocation = doc["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    levels = [(n["level"], n["message"]["text"][:8]) for n in invocation["toolExecutionNotifications"]]
    assert levels == [("warning", "layer bl"), ("error", "layer 3:")]
    complete = json.loads(render_sarif(_result(_canary()), load_rules()))["runs"][0]["invocations"][0]
    assert complete["executionSuccessful"] is True
