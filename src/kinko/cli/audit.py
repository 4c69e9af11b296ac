"""`kinko audit`: hash a value the way the audit log records it, and verify an audit file's keyed chain."""

from __future__ import annotations

import sys

import click

from kinko.cli._common import emit, handle_errors, output_option, read_source, vault_option
from kinko.cli._session import is_remote, open_session
from kinko.errors import InvalidInput, UsageError
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
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--structure-only", is_flag=True,
              help="Check only the links between records, without the vault (catches naive edits only).")
@output_option
@handle_errors
def verify(vault_path: str, file: str | None, structure_only: bool, output: str) -> None:
    """Check an audit file's keyed hash chain; exit 1 with the line of the first deleted or edited record.

    Local mode checks FILE with the vault's audit key (--vault, unsealed as usual); remote mode (KINKO_ADDR)
    asks the server to check its own audit file. A truncated end of the file is not detectable from the file.
    """
    if structure_only:
        if file is None:
            raise UsageError("--structure-only needs FILE")
        report, where = _structure(file), file
    else:
        if file is None and not is_remote():
            raise UsageError("give FILE (local mode), or set KINKO_ADDR to check the server's audit file")
        report, where = open_session(vault_path).audit_verify(file), file or "server audit file"
    summary = _summary(report, structure_only)
    emit(output, {"file": where, "structure_only": structure_only, "summary": summary, **report.to_dict()},
         lambda: f"{where}: {summary}")
    if not report.ok:
        sys.exit(1)


def _structure(file: str) -> ChainReport:
    try:
        return check_audit_structure(file)
    except OSError as exc:
        raise InvalidInput(f"cannot read audit file {file!r}: {exc.strerror}") from None


def _summary(report: ChainReport, structure_only: bool) -> str:
    if not report.ok:
        return f"line {report.first_bad_line}: {report.reason}"
    if structure_only:
        return (f"structure intact ({report.unkeyed} records; structure only: this catches naive edits, "
                "not a chain rewritten by someone who deleted records)")
    if report.keyed == 0 and report.unkeyed:
        return f"unkeyed chain (v1): structure only ({report.unkeyed} records; not proof against rewriting)"
    old = f"; {report.unkeyed} older unkeyed (v1) records: structure only" if report.unkeyed else ""
    return f"chain intact ({report.keyed} records verified with the vault's audit key{old})"
