"""`kinko audit`: hash a value the way the audit log records it, and verify an audit file's keyed chain."""

from __future__ import annotations

import sys

import click

from kinko.cli._common import emit, handle_errors, output_option, read_source, vault_option
from kinko.cli._session import is_remote, open_session
from kinko.errors import UsageError
from kinko.vault import ChainReport, check_audit_structure


@click.group("audit")
def cli() -> None:
    """Check audit logs: hash a value, verify a file's hash chain."""


@cli.command("hash")
@vault_option
@click.argument("value")
@output_option
@handle_errors
def hash_(vault_path: str, value: str, output: str) -> None:
    """Print 'hmac-sha256:<hex>' of VALUE with this vault's audit salt, to search audit logs for it.

    VALUE `-` reads stdin (preferred: keeps the value out of shell history), `@FILE` reads a file; the bytes
    are hashed exactly as given (a trailing newline counts).
    """
    raw = read_source(value)
    digest = open_session(vault_path).audit_hash(raw)
    emit(output, {"hash": digest}, lambda: digest)


@cli.command("verify")
@vault_option
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--structure-only", is_flag=True,
              help="Check only the links between records, without the vault (catches naive edits only).")
@click.option("--allow-v1", is_flag=True,
              help="Accept unkeyed (v1) records: only for a file written before the audit chain was keyed.")
@click.option("--allow-continued", is_flag=True,
              help="Accept a first FILE that continues an earlier, rotated file (the earlier records are not "
                   "checked); better: give the files in order.")
@output_option
@handle_errors
def verify(vault_path: str, files: tuple[str, ...], structure_only: bool, allow_v1: bool, allow_continued: bool,
           output: str) -> None:
    """Check audit files' keyed hash chain (several FILEs: in order, as one chain); exit 1 with the file and line
    of the first deleted, edited or unkeyed record, or when the first file continues one that is not given.

    Local mode checks FILEs with the vault's audit key (--vault, unsealed as usual); remote mode (KINKO_ADDR)
    asks the server to check its own audit file. A truncated end of the last file is not detectable from it.
    """
    if structure_only:
        if not files:
            raise UsageError("--structure-only needs FILE")
        report, where = check_audit_structure(files, allow_continued=allow_continued), " ".join(files)
    else:
        if not files and not is_remote():
            raise UsageError("give FILE (local mode), or set KINKO_ADDR to check the server's audit file")
        report = open_session(vault_path).audit_verify(files or None, allow_v1=allow_v1,
                                                       allow_continued=allow_continued)
        where = " ".join(files) or "server audit file"
    summary = _summary(report, structure_only)
    emit(output, {"file": where, "structure_only": structure_only, "summary": summary, **report.to_dict()},
         lambda: f"{where}: {summary}")
    if not report.ok:
        sys.exit(1)


def _summary(report: ChainReport, structure_only: bool) -> str:
    if not report.ok:
        place = f"{report.file}: " if report.file else ""
        return f"{place}line {report.first_bad_line}: {report.reason}"
    after = f", continuing an earlier file from {report.continues_from[:16]}…" if report.continues_from else ""
    if structure_only:
        return (f"structure intact ({report.unkeyed} records{after}; structure only: this catches naive edits, "
                "not a chain rewritten by someone who deleted records)")
    if report.keyed == 0 and report.unkeyed:
        return f"unkeyed chain (v1): structure only ({report.unkeyed} records{after}; not proof against rewriting)"
    old = f"; {report.unkeyed} older unkeyed (v1) records accepted: structure only" if report.unkeyed else ""
    return f"chain intact ({report.keyed} records verified with the vault's audit key{old}{after})"
