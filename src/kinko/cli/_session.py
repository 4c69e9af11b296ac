"""Opening a `VaultSession` for one CLI command: the server (KINKO_ADDR) or the local vault file, unsealed
for this process from its key file, KINKO_PASSPHRASE / KINKO_UNSEAL_SHARES, or prompts."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kinko import config
from kinko.errors import NotFound, Sealed
from kinko.vault import Caller, Vault, VaultSession, open_vault

if TYPE_CHECKING:
    from kinko.client import RemoteVault

#: Who a local command acts as: the operator holding the vault file (the `root` policy).
LOCAL_OPERATOR = Caller.local_operator()


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
    return bool(os.environ.get(config.ENV_ADDR)) and not vault_given_on_command_line()


def _note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


def remote_session(addr: str | None = None, *, token: str | None = None, ca_file: str | None = None) -> RemoteVault:
    """A session with the server: KINKO_ADDR / KINKO_TOKEN / KINKO_CACERT (or the token `kinko login` stored),
    each overridden by an explicit argument."""
    from kinko.client import RemoteVault

    settings = config.client_settings(os.environ, warn=_note)
    return RemoteVault.connect(addr or settings.addr, token if token is not None else settings.token,
                               ca_file=ca_file or settings.ca_file)


def open_local(path: Path) -> Vault:
    """The local vault file (not unsealed yet: see `ensure_unsealed`)."""
    if not path.exists():
        raise NotFound(f"no vault at {str(path)!r}; create one with `kinko operator init --vault {path}`")
    return open_vault(path)


def open_session(vault_path: str, *, unseal: bool = True) -> VaultSession:
    """The session a command works through: the server in remote mode, else the local file as the operator."""
    if is_remote():
        return remote_session()
    vault = open_local(config.expand(vault_path))
    if unseal:
        ensure_unsealed(vault)
    return vault.session(LOCAL_OPERATOR)


def ensure_unsealed(vault: Vault) -> Vault:
    """A local vault is unsealed per process: key file (auto), KINKO_PASSPHRASE / KINKO_UNSEAL_SHARES, or a prompt."""
    status = vault.status()
    if not status.initialized or not status.sealed:
        return vault
    if vault.operator_sealed():
        raise Sealed("vault is sealed (by an operator); run `kinko operator unseal` first")
    if status.seal_type == "passphrase":
        passphrase = os.environ.get(config.ENV_PASSPHRASE)
        if passphrase is None and sys.stdin.isatty():
            passphrase = click.prompt("Vault passphrase", hide_input=True, err=True)
        if passphrase is not None:
            vault.unseal(passphrase=passphrase)
    elif status.seal_type == "shamir":
        shares = os.environ.get(config.ENV_UNSEAL_SHARES, "").split()
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
