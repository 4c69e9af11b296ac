"""`kinko policy`: write, read, list and delete access policies (YAML documents, through a VaultSession)."""

from __future__ import annotations

import click

from kinko.cli._common import emit, handle_errors, output_option, read_source, vault_option
from kinko.cli._session import open_session
from kinko.errors import InvalidInput


@click.group("policy")
def cli() -> None:
    """Write, read, list and delete access policies."""


@cli.command("write")
@vault_option
@click.argument("file")
@click.option("--name", help="Expected policy name (must match the document's `name`).")
@output_option
@handle_errors
def write(vault_path: str, file: str, name: str | None, output: str) -> None:
    """Create or replace a policy from a YAML FILE (`-` reads stdin)."""
    raw = read_source(file if file == "-" else "@" + file)
    try:
        document = raw.decode()
    except UnicodeDecodeError:
        raise InvalidInput("policy file is not UTF-8 text") from None
    policy = open_session(vault_path).write_policy(document, name=name)
    emit(output, policy.to_dict(), lambda: f"wrote policy {policy.name} ({len(policy.rules)} rules)")


@cli.command("read")
@vault_option
@click.argument("name")
@output_option
@handle_errors
def read(vault_path: str, name: str, output: str) -> None:
    """Print a policy as YAML (built-ins too)."""
    policy = open_session(vault_path).read_policy(name)
    emit(output, policy.to_dict(), lambda: policy.to_yaml().rstrip("\n"))


@cli.command("list")
@vault_option
@output_option
@handle_errors
def list_(vault_path: str, output: str) -> None:
    """List policy names (built-in and stored)."""
    names = open_session(vault_path).list_policies()
    emit(output, names, lambda: "\n".join(names))


@cli.command("delete")
@vault_option
@click.argument("name")
@output_option
@handle_errors
def delete(vault_path: str, name: str, output: str) -> None:
    """Delete a stored policy (tokens naming it keep the name, which then grants nothing)."""
    open_session(vault_path).delete_policy(name)
    emit(output, {"deleted": name}, lambda: f"deleted policy {name}")
