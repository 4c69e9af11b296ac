"""JSON report with a stable schema: {"version": 1, "findings": [...], "warnings": [...], "summary": {...}}.

An incomplete scan adds "incomplete": the warnings (also listed in "warnings") that name a part not scanned.
"""

from __future__ import annotations

import json

from kinko.scan.interface import ScanResult
from kinko.scan.report.common import Redactor, ReportOptions, finding_dict, fingerprints, summary

SCHEMA_VERSION = 1


def render_json(result: ScanResult, options: ReportOptions | None = None) -> str:
    options = options or ReportOptions()
    redactor = Redactor(result.findings, options.show_secrets)
    prints = fingerprints(result.findings, options)
    doc: dict[str, object] = {
        "version": SCHEMA_VERSION,
        "findings": [finding_dict(f, redactor, p) for f, p in zip(result.findings, prints, strict=True)],
        "warnings": [{"artifact": w.artifact, "message": redactor.text(w.message)} for w in result.warnings],
        "summary": summary(result),
    }
    if result.incomplete:
        doc["incomplete"] = [{"artifact": w.artifact, "message": redactor.text(w.message)} for w in result.incomplete]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
