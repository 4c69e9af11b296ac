"""`kinko audit`: hash a value the way the audit log records it, and verify an audit file's hash chain."""

from __future__ import annotations

import sys

import click

from kinko.cli._common import emit, handle_errors, output_option, read_source, vault_file, vault_option
from kinko.cli._local import ensure_unsealed, open_local
from kinko.core.model import Caller
from kinko.errors import InvalidInput

CALLER = Caller.local_operator()


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
    digest = ensure_unsealed(open_local(vault_file(vault_path))).audit_hash(CALLER, raw)
    emit(output, {"hash": digest}, lambda: digest)


@cli.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@output_option
@handle_errors
def verify(file: str, output: str) -> None:
    """Check FILE's hash chain; exit 1 with the line number of the first deleted, reordered or edited record."""
    from kinko.access.audit import first_problem

    try:
        problem = first_problem(file)
    except OSError as exc:
        raise InvalidInput(f"cannot read audit file {file!r}: {exc.strerror}") from None
    bad, reason = problem if problem is not None else (None, None)
    emit(output, {"file": file, "ok": bad is None, "first_bad_line": bad, "reason": reason},
         lambda: f"{file}: chain intact" if bad is None else f"{file}: line {bad}: {reason}")
    if bad is not None:
        sys.exit(1)
