"""Scan reports: the table of formats (name -> renderer); text (rich), JSON and SARIF 2.1.0 all redact by default.

Each renderer imports its module when first called, so reading the format names (the CLI's `--output`
choices) costs neither rich nor the rule loader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from kinko.scan.interface import ScanResult
from kinko.scan.report.common import ReportOptions

if TYPE_CHECKING:
    from kinko.scan.detect.loader import Rule


class Renderer(Protocol):
    def __call__(
        self, result: ScanResult, options: ReportOptions, *, rules: Sequence[Rule], color: bool, width: int | None
    ) -> str: ...


def _text(
    result: ScanResult, options: ReportOptions, *, rules: Sequence[Rule], color: bool, width: int | None
) -> str:
    from kinko.scan.report.text import render_text

    return render_text(result, options, color=color, width=width)


def _json(
    result: ScanResult, options: ReportOptions, *, rules: Sequence[Rule], color: bool, width: int | None
) -> str:
    from kinko.scan.report.json import render_json

    return render_json(result, options)


def _sarif(
    result: ScanResult, options: ReportOptions, *, rules: Sequence[Rule], color: bool, width: int | None
) -> str:
    from kinko.scan.report.sarif import render_sarif

    return render_sarif(result, rules, options)


#: Every report format, in the order `--output` lists them.
RENDERERS: dict[str, Renderer] = {"text": _text, "json": _json, "sarif": _sarif}
FORMATS = tuple(RENDERERS)
__all__ = ["FORMATS", "RENDERERS", "ReportOptions", "render"]


def render(
    result: ScanResult,
    fmt: str,
    options: ReportOptions | None = None,
    *,
    rules: Sequence[Rule] = (),
    color: bool = False,
    width: int | None = None,
) -> str:
    """The report in `fmt` (one of FORMATS). `width` wraps text reports; None never wraps."""
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return renderer(result, options or ReportOptions(), rules=rules, color=color, width=width)
