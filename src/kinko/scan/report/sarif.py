"""SARIF 2.1.0 report: the rule set as tool.driver.rules, one result per finding, stable partialFingerprints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import quote

from kinko.scan.detect.loader import Rule
from kinko.scan.interface import Finding, ScanResult, ScanWarning, Severity
from kinko.scan.places import file_and_object, in_image
from kinko.scan.report.common import Redactor, ReportOptions, fingerprints, location_dict, status_text

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/kinko-vault/kinko"
_LEVEL = {
    Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
    Severity.LOW: "note", Severity.INFO: "note",
}  # fmt: skip
#: GitHub code scanning reads this 0-10 score to rank security results.
_SCORE = {
    Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0", Severity.INFO: "1.0",
}  # fmt: skip


def _tool_version() -> str:
    try:
        return version("kinko")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


def _rule_entry(rule_id: str, title: str, severity: Severity, description: str = "") -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in rule_id.split("-")),
        "shortDescription": {"text": title},
        "fullDescription": {"text": description or title},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {"security-severity": _SCORE[severity], "tags": ["security", "secret"]},
    }


def _uri(path: str) -> str:
    """A relative reference for relative paths (what code scanning resolves against the checkout), else file:."""
    if path.startswith("/"):
        return "file://" + quote(path, safe="/:@!$&'()*+,;=-._~")
    return quote(path, safe="/:@!$&'()*+,;=-._~") or "."


def _location(finding: Finding, redactor: Redactor) -> tuple[dict[str, Any], str | None]:
    """The SARIF location (a file on disk, plus the object inside it as a logical location) and that object."""
    loc = finding.location
    file, obj = file_and_object(loc)
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(redactor.text(file) or loc.artifact)}}
    # A line of a file inside an image is not a line of the archive: it stays in properties only.
    if loc.line is not None and loc.line >= 1 and not in_image(loc):
        physical["region"] = {"startLine": loc.line}
    location: dict[str, Any] = {"physicalLocation": physical}
    obj = redactor.text(obj)
    if obj:
        location["logicalLocations"] = [{"fullyQualifiedName": obj, "kind": "resource"}]
    return location, obj


def _result(finding: Finding, index: int, redactor: Redactor, fingerprint: dict[str, str]) -> dict[str, Any]:
    loc = finding.location
    location, obj = _location(finding, redactor)
    text = redactor.text(finding.message) or finding.title
    if obj:
        text += f" in {obj}" + (f" line {loc.line}" if loc.line is not None else "")
    status = status_text(loc)
    if status:
        text += f" ({status}"
        text += f", layer {loc.layer_index})" if loc.layer_index is not None else ")"
    properties = {k: v for k, v in location_dict(loc, redactor).items() if v is not None}
    properties["severity"] = finding.severity.name.lower()
    properties["confidence"] = finding.confidence.name.lower()
    properties["secret"] = redactor.secret(finding)
    if finding.fix:
        properties["fix"] = redactor.text(finding.fix)
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "level": _LEVEL[finding.severity],
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": fingerprint,
        "properties": properties,
    }


def _notification(warning: ScanWarning, redactor: Redactor) -> dict[str, Any]:
    """A warning; a skipped part is an "error" notification (SARIF: the results are incomplete)."""
    return {
        "level": "error" if warning.skipped else "warning",
        "message": {"text": redactor.text(warning.message) or ""},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(warning.artifact)}}}],
    }


def render_sarif(result: ScanResult, rules: Sequence[Rule] = (), options: ReportOptions | None = None) -> str:
    options = options or ReportOptions()
    redactor = Redactor(result.findings, options.show_secrets)
    entries = [_rule_entry(r.id, r.title, r.severity, r.description) for r in rules]
    index = {entry["id"]: i for i, entry in enumerate(entries)}
    for finding in result.findings:  # structural rules of the sources (Dockerfile, k8s) are not in the set
        if finding.rule_id not in index:
            index[finding.rule_id] = len(entries)
            entries.append(_rule_entry(finding.rule_id, finding.title, finding.severity, finding.fix))
    prints = fingerprints(result.findings, options)
    doc = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kinko",
                        "informationUri": INFO_URI,
                        "version": _tool_version(),
                        "rules": entries,
                    }
                },
                "results": [_result(f, index[f.rule_id], redactor, {options.print_name: p})
                            for f, p in zip(result.findings, prints, strict=True)],
                "invocations": [
                    {
                        # A skipped part makes the run unsuccessful (its results may be missing some).
                        "executionSuccessful": not result.incomplete,
                        "toolExecutionNotifications": [_notification(w, redactor) for w in result.warnings],
                    }
                ],
            }
        ],
    }  # fmt: skip
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
