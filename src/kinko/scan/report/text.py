"""Human report (rich): findings grouped by artifact then layer, with status, origin and redacted secret."""

from __future__ import annotations

import io
from collections.abc import Iterable
from itertools import groupby

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from kinko.scan.interface import Confidence, Finding, FindingKind, ScanResult, Severity
from kinko.scan.report.common import Redactor, ReportOptions, status_text, summary

_STYLE = {
    Severity.CRITICAL: "bold white on red", Severity.HIGH: "bold red", Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan", Severity.INFO: "dim",
}  # fmt: skip


def _layer_key(finding: Finding) -> int:
    index = finding.location.layer_index
    return -1 if index is None else index


def _layer_heading(finding: Finding) -> str:
    loc = finding.location
    if loc.layer_index is None:
        return ""
    diff = f" {loc.layer_diff_id[:19]}" if loc.layer_diff_id else ""
    return f"layer {loc.layer_index}{diff}"


def _finding_lines(finding: Finding, redactor: Redactor) -> Iterable[Text]:
    loc = finding.location
    where = redactor.text(loc.path) or ""
    if loc.line is not None:
        where += f":{loc.line}"
    head = Text("  ")
    head.append(f"{finding.severity.name:<8}", style=_STYLE[finding.severity])
    head.append(f" {finding.title} ", style="bold")
    head.append(f"[{finding.rule_id}]", style="dim")
    if finding.kind is FindingKind.SECRET and finding.confidence is not Confidence.HIGH:
        head.append(f" ({finding.confidence.name.lower()} confidence)", style="dim")
    yield head
    yield Text(f"      at {where}")
    if loc.object_ref:
        yield Text(f"      object: {redactor.text(loc.object_ref)}")
    status = status_text(loc)
    if status:
        yield Text(f"      status: {status}", style="red" if "deleted" in status else "")
    if loc.created_by:
        yield Text(f"      created by: {redactor.text(loc.created_by)}")
    secret = redactor.secret(finding)
    if secret:
        yield Text(f"      secret: {secret}")
    if finding.message and finding.message != f"{finding.title} found":
        yield Text(f"      {redactor.text(finding.message)}")
    if finding.fix:
        yield Text(f"      fix: {redactor.text(finding.fix)}", style="green")


def render_text(
    result: ScanResult, options: ReportOptions | None = None, *, color: bool = False, width: int | None = None
) -> str:
    """The report; `width` (a terminal's columns) wraps long lines, None (pipes, files) keeps each line whole."""
    options = options or ReportOptions()
    redactor = Redactor(result.findings, options.show_secrets)
    buffer = io.StringIO()
    # soft_wrap: rich neither wraps nor crops, so grep and log viewers see every line as written.
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width or 120,
                      soft_wrap=width is None, highlight=False)
    ordered = sorted(result.findings, key=lambda f: (f.location.artifact, _layer_key(f), f.location.path))
    for artifact, group in groupby(ordered, key=lambda f: f.location.artifact):
        console.print(Text(artifact, style="bold underline"))
        for _, layer_group in groupby(group, key=_layer_key):
            items = list(layer_group)
            heading = _layer_heading(items[0])
            if heading:
                console.print(Text(f" {heading}", style="bold magenta"))
            for finding in items:
                for line in _finding_lines(finding, redactor):
                    console.print(line)
        console.print()
    for warning in result.warnings:
        label = "[bold red]incomplete[/]" if warning.skipped else "[yellow]warning[/]"
        console.print(f"{label}: {escape(warning.artifact)}: {escape(redactor.text(warning.message) or '')}")
    stats = summary(result)
    counts = ", ".join(f"{n} {name}" for name, n in stats["by_severity"].items() if n)
    mib = stats["bytes_scanned"] / 2**20
    console.print(
        f"{stats['findings']} finding(s){' (' + counts + ')' if counts else ''}, "
        f"{stats['deleted_but_recoverable']} in deleted files, {stats['warnings']} warning(s), "
        f"{mib:.1f} MiB scanned in {len(stats['artifacts'])} artifact(s)"
    )
    if result.incomplete:
        skipped = len(result.incomplete)
        console.print(f"[bold red]scan incomplete[/]: {skipped} part(s) not scanned (`incomplete:` above)")
    return buffer.getvalue()
