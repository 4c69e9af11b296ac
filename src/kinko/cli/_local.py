"""Opening the local vault file for one CLI process, unsealing it from a key file, env or prompts."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import cast

import click

from kinko.errors import NotFound, Sealed
from kinko.vault import Vault, open_vault


def vault_given_on_command_line() -> bool:
    """True if this command's `--vault` was typed on the command line (not defaulted, not from KINKO_VAULT)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source("vault_path") is ParameterSource.COMMANDLINE


def is_remote() -> bool:
    """Remote mode: KINKO_ADDR is set and no explicit `--vault FILE` on the command line overrides it.

    An explicit flag wins because the user just typed it; KINKO_VAULT from the environment does not, since
    a shell profile exporting both should keep meaning "the server".
    """
    return bool(os.environ.get("KINKO_ADDR")) and not vault_given_on_command_line()


def remote() -> Vault | None:
    """In remote mode, a RemoteVault (same methods as Vault) talking to KINKO_ADDR; else None."""
    if not is_remote():
        return None
    from kinko.client import RemoteVault

    return cast(Vault, RemoteVault())


def open_local(path: Path) -> Vault:
    server = remote()
    if server is not None:
        return server
    if not path.exists():
        raise NotFound(f"no vault at {str(path)!r}; create one with `kinko operator init --vault {path}`")
    return open_vault(path)


def ensure_unsealed(vault: Vault) -> Vault:
    """A local vault is unsealed per process: key file (auto), KINKO_PASSPHRASE / KINKO_UNSEAL_SHARES, or a prompt."""
    if is_remote():
        return vault  # a server is unsealed by its operator (`kinko operator unseal` in remote mode)
    status = vault.status()
    if not status.initialized or not status.sealed:
        return vault
    if vault.operator_sealed():
        raise Sealed("vault is sealed (by an operator); run `kinko operator unseal` first")
    if status.seal_type == "passphrase":
        passphrase = os.environ.get("KINKO_PASSPHRASE")
        if passphrase is None and sys.stdin.isatty():
            passphrase = click.prompt("Vault passphrase", hide_input=True, err=True)
        if passphrase is not None:
            vault.unseal(passphrase=passphrase)
    elif status.seal_type == "shamir":
        shares = os.environ.get("KINKO_UNSEAL_SHARES", "").split()
        if not shares and sys.stdin.isatty():
            shares = [click.prompt(f"Unseal share {i + 1}/{status.threshold}", hide_input=True, err=True)
                      for i in range(status.threshold)]
        for share in shares:
            if not vault.unseal(share=share).sealed:
                break
    if vault.status().sealed:
        raise Sealed("vault is sealed; give unseal material via KINKO_PASSPHRASE / KINKO_UNSEAL_SHARES "
                     "or run interactively")
    return vault
