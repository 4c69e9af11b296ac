"""`kinko policy`: write (kinko YAML or a Vault HCL policy), translate, read, list and delete access policies."""

from __future__ import annotations

from dataclasses import replace

import click

from kinko.cli._common import emit, handle_errors, output_option, read_source, vault_option
from kinko.cli._session import open_session
from kinko.errors import InvalidInput, UsageError
from kinko.vault import DEFAULT_KV_MOUNTS, Policy, looks_like_vault_policy, parse_policy, translate_vault_policy

FORMATS = ("auto", "hcl", "yaml")


@click.group("policy")
def cli() -> None:
    """Write, read, list and delete access policies."""


def _read_text(file: str) -> str:
    raw = read_source(file if file == "-" else "@" + file)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise InvalidInput("policy file is not UTF-8 text") from None


def _is_hcl(file: str, text: str, fmt: str) -> bool:
    if fmt != "auto":
        return fmt == "hcl"
    return file.endswith(".hcl") or looks_like_vault_policy(text)


def _split(args: tuple[str, ...], name: str | None) -> tuple[str | None, str]:
    """`[NAME] FILE` (Vault's order) or `FILE --name NAME`."""
    if len(args) not in (1, 2):
        raise UsageError("give FILE, or NAME FILE")
    if len(args) == 2:
        if name is not None and name != args[0]:
            raise UsageError(f"NAME {args[0]!r} and --name {name!r} differ")
        return args[0], args[1]
    return name, args[0]


def _translated(name: str | None, file: str, fmt: str) -> Policy:
    """The policy a file describes without storing it (an HCL policy over the default `secret` mount)."""
    text = _read_text(file)
    if _is_hcl(file, text, fmt):
        if name is None:
            raise UsageError("a Vault HCL policy has no name of its own: give NAME FILE (or --name)")
        return translate_vault_policy(text, name=name, mounts=DEFAULT_KV_MOUNTS)
    return parse_policy(text, name=name)


def _rules_text(policy: Policy) -> str:
    return replace(policy, source_hcl=None).to_yaml().rstrip("\n")


format_option = click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
                             help="hcl: a Vault ACL policy (detected by a .hcl name or `path \"...\" {` blocks); "
                                  "yaml: kinko's rules.")


@cli.command("write")
@vault_option
@click.argument("args", nargs=-1, required=True, metavar="[NAME] FILE")
@click.option("--name", help="Policy name (for YAML: must match the document's `name`).")
@format_option
@click.option("--dry-run", is_flag=True, help="Print the kinko rules the file grants; store nothing.")
@output_option
@handle_errors
def write(vault_path: str, args: tuple[str, ...], name: str | None, fmt: str, dry_run: bool, output: str) -> None:
    """Create or replace a policy from FILE (`-` reads stdin): kinko YAML, or a Vault HCL policy translated onto
    kinko rules (`kinko policy write app app.hcl`; the HCL is kept and read back by Vault clients)."""
    name, file = _split(args, name)
    if dry_run:
        policy = _translated(name, file, fmt)
        emit(output, policy.to_dict(), lambda: _rules_text(policy))
        return
    text = _read_text(file)
    session = open_session(vault_path)
    if _is_hcl(file, text, fmt):
        if name is None:
            raise UsageError("a Vault HCL policy has no name of its own: give NAME FILE (or --name)")
        policy = session.write_vault_policy(name, text)
    else:
        policy = session.write_policy(text, name=name)
    emit(output, policy.to_dict(), lambda: f"wrote policy {policy.name} ({len(policy.rules)} rules)")


@cli.command("translate")
@click.argument("args", nargs=-1, required=True, metavar="[NAME] FILE")
@click.option("--name", help="Policy name (default: translated).")
@output_option
@handle_errors
def translate(args: tuple[str, ...], name: str | None, output: str) -> None:
    """Print the kinko rules a Vault HCL policy FILE grants (over the default `secret` mount); stores nothing."""
    name, file = _split(args, name)
    policy = _translated(name or "translated", file, "hcl")
    emit(output, policy.to_dict(), lambda: _rules_text(policy))


@cli.command("read")
@vault_option
@click.argument("name")
@click.option("--hcl", "show_hcl", is_flag=True, help="Print the Vault HCL policy as written (if it was HCL).")
@output_option
@handle_errors
def read(vault_path: str, name: str, show_hcl: bool, output: str) -> None:
    """Print a policy as YAML (built-ins too); a policy written as HCL shows its kinko rules and the HCL."""
    policy = open_session(vault_path).read_policy(name)
    if show_hcl:
        if policy.source_hcl is None:
            raise InvalidInput(f"policy {name!r} was not written as a Vault HCL policy")
        click.echo(policy.source_hcl.rstrip("\n"))
        return
    emit(output, policy.to_dict(), lambda: _read_text_of(policy))


def _read_text_of(policy: Policy) -> str:
    rules = _rules_text(policy)
    if policy.source_hcl is None:
        return rules
    return f"{rules}\n# translated from this Vault policy (kinko policy read --hcl):\n" + "\n".join(
        "#   " + line for line in policy.source_hcl.rstrip("\n").splitlines())


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
