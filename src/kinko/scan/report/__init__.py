"""Scan reports: text (rich), JSON and SARIF 2.1.0. Secrets are redacted unless `show_secrets` is set."""

from __future__ import annotations

from collections.abc import Sequence

from kinko.scan.detect.loader import Rule
from kinko.scan.interface import ScanResult
from kinko.scan.report.common import ReportOptions
from kinko.scan.report.json import render_json
from kinko.scan.report.sarif import render_sarif
from kinko.scan.report.text import render_text

FORMATS = ("text", "json", "sarif")
__all__ = ["FORMATS", "ReportOptions", "render", "render_json", "render_sarif", "render_text"]


def render(
    result: ScanResult,
    fmt: str,
    options: ReportOptions | None = None,
    *,
    rules: Sequence[Rule] = (),
    color: bool = False,
    width: int | None = None,
) -> str:
    """The report in `fmt` ("text", "json" or "sarif"). `width` wraps text reports; None never wraps."""
    if fmt == "json":
        return render_json(result, options)
    if fmt == "sarif":
        return render_sarif(result, rules, options)
    if fmt == "text":
        return render_text(result, options, color=color, width=width)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
