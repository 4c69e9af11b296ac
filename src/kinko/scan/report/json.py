"""JSON report with a stable schema: {"version": 1, "findings": [...], "warnings": [...], "summary": {...}}."""

from __future__ import annotations

import json

from kinko.scan.interface import ScanResult
from kinko.scan.report.common import Redactor, ReportOptions, finding_dict, summary

SCHEMA_VERSION = 1


def render_json(result: ScanResult, options: ReportOptions | None = None) -> str:
    options = options or ReportOptions()
    redactor = Redactor(result.findings, options.show_secrets)
    doc = {
        "version": SCHEMA_VERSION,
        "findings": [finding_dict(f, redactor, options) for f in result.findings],
        "warnings": [{"artifact": w.artifact, "message": redactor.text(w.message)} for w in result.warnings],
        "summary": summary(result),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
