"""Opening a `VaultSession` for one CLI command: the server (KINKO_ADDR) or the local vault file, unsealed
for this process from its key file, KINKO_PASSPHRASE / KINKO_UNSEAL_SHARES, or prompts."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kinko import config
from kinko.cli._common import STORAGE_META
from kinko.errors import NotFound, Sealed
from kinko.vault import Caller, Vault, VaultSession, open_vault

if TYPE_CHECKING:
    from kinko.client import RemoteVault

#: Who a local command acts as: the operator holding the vault file (the `root` policy).
LOCAL_OPERATOR = Caller.local_operator()


def _typed(parameter: str) -> bool:
    """True if this command's option was typed on the command line (not defaulted, not from the environment)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source(parameter) is ParameterSource.COMMANDLINE


def vault_given_on_command_line() -> bool:
    """True if this command's `--vault` or `--storage` was typed on the command line."""
    return _typed("vault_path") or _typed("storage")


def is_remote() -> bool:
    """Remote mode: KINKO_ADDR is set and no explicit `--vault FILE` / `--storage URL` on the command line
    overrides it.

    An explicit flag wins because the user just typed it; KINKO_VAULT / KINKO_STORAGE from the environment do
    not, since a shell profile exporting both should keep meaning "the server".
    """
    return bool(os.environ.get(config.ENV_ADDR)) and not vault_given_on_command_line()


def local_location(vault_path: str) -> Path | str:
    """The local vault: `--vault FILE` when typed, else `--storage URL` / KINKO_STORAGE, else the file
    (KINKO_VAULT or ~/.kinko/vault.db)."""
    ctx = click.get_current_context(silent=True)
    storage = ctx.meta.get(STORAGE_META) if ctx is not None else None
    if storage and not _typed("vault_path"):
        return str(storage)
    return config.expand(vault_path)


def _note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


def remote_session(addr: str | None = None, *, token: str | None = None, ca_file: str | None = None) -> RemoteVault:
    """A session with the server: KINKO_ADDR / KINKO_TOKEN / KINKO_CACERT (or the token `kinko login` stored),
    each overridden by an explicit argument."""
    from kinko.client import RemoteVault

    settings = config.client_settings(os.environ, warn=_note)
    return RemoteVault.connect(addr or settings.addr, token if token is not None else settings.token,
                               ca_file=ca_file or settings.ca_file)


def open_local(location: Path | str) -> Vault:
    """The local vault file or database (not unsealed yet: see `ensure_unsealed`)."""
    if isinstance(location, Path) and not location.exists():
        raise NotFound(f"no vault at {str(location)!r}; create one with `kinko operator init --vault {location}`")
    vault = open_vault(location)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(vault.close)  # a database's connection pool ends with the command, not at exit
    return vault


def open_session(vault_path: str, *, unseal: bool = True) -> VaultSession:
    """The session a command works through: the server in remote mode, else the local file as the operator."""
    if is_remote():
        return remote_session()
    vault = open_local(local_location(vault_path))
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
