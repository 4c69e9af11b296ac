"""`kinko policy`: write, read, list and delete access policies (YAML documents; calls Vault methods only)."""

from __future__ import annotations

import click

from kinko.cli._common import emit, handle_errors, output_option, read_source, vault_file, vault_option
from kinko.cli._local import ensure_unsealed, open_local
from kinko.core.model import Caller
from kinko.errors import InvalidInput
from kinko.vault import Vault

CALLER = Caller.local_operator()


@click.group("policy")
def cli() -> None:
    """Write, read, list and delete access policies."""


def _vault(vault_path: str) -> Vault:
    return ensure_unsealed(open_local(vault_file(vault_path)))


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
    policy = _vault(vault_path).write_policy(CALLER, document, name=name)
    emit(output, policy.to_dict(), lambda: f"wrote policy {policy.name} ({len(policy.rules)} rules)")


@cli.command("read")
@vault_option
@click.argument("name")
@output_option
@handle_errors
def read(vault_path: str, name: str, output: str) -> None:
    """Print a policy as YAML (built-ins too)."""
    policy = _vault(vault_path).read_policy(CALLER, name)
    emit(output, policy.to_dict(), lambda: policy.to_yaml().rstrip("\n"))


@cli.command("list")
@vault_option
@output_option
@handle_errors
def list_(vault_path: str, output: str) -> None:
    """List policy names (built-in and stored)."""
    names = _vault(vault_path).list_policies(CALLER)
    emit(output, names, lambda: "\n".join(names))


@cli.command("delete")
@vault_option
@click.argument("name")
@output_option
@handle_errors
def delete(vault_path: str, name: str, output: str) -> None:
    """Delete a stored policy (tokens naming it keep the name, which then grants nothing)."""
    _vault(vault_path).delete_policy(CALLER, name)
    emit(output, {"deleted": name}, lambda: f"deleted policy {name}")
