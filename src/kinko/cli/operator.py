"""`kinko operator`: init, unseal, seal, status and rotate a local vault or the server (KINKO_ADDR); migrate a vault
between storage engines."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import click

from kinko import config
from kinko.cli._common import emit, handle_errors, output_option, vault_option
from kinko.cli._session import is_remote, local_location, open_session, remote_session
from kinko.errors import InvalidInput, Sealed, UsageError
from kinko.vault import (
    DEFAULT_RETENTION_DAYS,
    DEFAULT_SAMPLE,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    InitResult,
    MigrationReport,
    SealType,
    UnsealMaterial,
    VaultStatus,
    check_init_options,
    migrate,
)


@click.group("operator")
def cli() -> None:
    """Initialise, unseal, seal, inspect and rotate a vault."""


def _passphrase(confirm: bool) -> str:
    passphrase = os.environ.get(config.ENV_PASSPHRASE)
    if passphrase is not None:
        return passphrase
    if not sys.stdin.isatty():
        raise InvalidInput("no passphrase: set KINKO_PASSPHRASE or run in a terminal")
    return str(click.prompt("Vault passphrase", hide_input=True, confirmation_prompt=confirm, err=True))


def _status_text(status: VaultStatus) -> str:
    if not status.initialized:
        return "initialized: false\nsealed: true"
    sealed = str(status.sealed).lower()
    if status.sealed and status.operator_sealed is not None:  # local: "sealed" is this process's view only
        sealed += (" (each kinko process unseals a local vault for itself; "
                   f"operator seal: {'yes' if status.operator_sealed else 'no'})")
    lines = ["initialized: true", f"sealed: {sealed}", f"seal type: {status.seal_type}"]
    if status.seal_type == "shamir":
        lines.append(f"shares: {status.shares}  threshold: {status.threshold}  progress: {status.progress}")
    if status.key_term is not None:
        lines.append(f"key term: {status.key_term}")
    lines += [f"retention: {status.retention_days} days",
              f"purge protection: {str(status.purge_protection).lower()}", f"vault id: {status.vault_id}"]
    return "\n".join(lines)


def _check_init_options(seal: SealType, shares: int, threshold: int, key_file: str | None,
                        retention_days: int) -> None:
    """Bad flags are usage errors (exit 2), caught before anything is created."""
    if seal is SealType.KEY_FILE and not key_file and not is_remote():
        raise UsageError("--seal keyfile needs --key-file PATH (the key file to create)")
    if seal is SealType.SHAMIR:
        try:
            check_init_options(seal, shares, threshold, DEFAULT_RETENTION_DAYS)
        except InvalidInput as exc:
            raise UsageError(f"--shares {shares} --threshold {threshold}: {exc.message}") from None
    if not MIN_RETENTION_DAYS <= retention_days <= MAX_RETENTION_DAYS:
        raise UsageError(f"--retention-days must be {MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS}")


def _init_local(path: Path | str, seal: SealType, passphrase: str | None, **options: Any) -> InitResult:
    from kinko.vault import open_vault

    if isinstance(path, str):  # a database (--storage / KINKO_STORAGE): nothing to clean up on disk
        vault = open_vault(path, create=True)
        try:
            return vault.init(seal=seal, passphrase=passphrase, **options)
        finally:
            vault.close()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    existed = path.exists()
    vault = open_vault(path, create=True)
    try:
        return vault.init(seal=seal, passphrase=passphrase, **options)
    except BaseException:
        if not existed:  # bad options must not leave an empty, uninitialised vault file behind
            vault.close()
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)
        raise


def _init_text(result: InitResult, where: str) -> str:
    lines = [f"Initialised vault {result.vault_id} at {where}"]
    for i, share in enumerate(result.shares, 1):
        lines.append(f"Unseal share {i}: {share}")
    if result.shares:
        lines.append(f"\n{result.threshold} of these {len(result.shares)} shares unseal the vault.")
    if result.key_file:
        lines.append(f"Key file (auto-unseal): {result.key_file}  (mode 0400; keep it off this disk's backups)")
    lines.append(f"Initial root token: {result.root_token}")
    lines.append("\nThis is the only time these are shown."
                 + (" Store the shares apart from each other." if result.shares else ""))
    return "\n".join(lines)


@cli.command("init")
@vault_option
@click.option("--seal", "seal_type", type=click.Choice([t.value for t in SealType]), default="shamir",
              show_default=True, help="How the vault unseals (keyfile: local vault only).")
@click.option("--shares", default=5, show_default=True, help="Shamir shares to create.")
@click.option("--threshold", default=3, show_default=True, help="Shares needed to unseal.")
@click.option("--key-file", type=click.Path(dir_okay=False), help="Key file to create (seal=keyfile).")
@click.option("--retention-days", default=90, show_default=True, help="Soft-delete retention, 7-90 days.")
@click.option("--purge-protection", is_flag=True, help="Refuse purge until retention ends (cannot be undone).")
@output_option
@handle_errors
def init(vault_path: str, seal_type: str, shares: int, threshold: int, key_file: str | None,
         retention_days: int, purge_protection: bool, output: str) -> None:
    """Initialise a vault (the server's with KINKO_ADDR). Prints the unseal shares and root token once."""
    seal = SealType(seal_type)
    _check_init_options(seal, shares, threshold, key_file, retention_days)
    options: dict[str, Any] = {"shares": shares, "threshold": threshold, "retention_days": retention_days,
                               "purge_protection": purge_protection}
    if is_remote():
        if seal is SealType.KEY_FILE:
            raise UsageError("--seal keyfile is for a local vault only (the key file must sit beside the "
                             "server's vault); use shamir or passphrase with KINKO_ADDR, or pass --vault FILE")
        passphrase = _passphrase(confirm=True) if seal is SealType.PASSPHRASE else None
        result, where = remote_session().init(seal=seal, passphrase=passphrase, **options), os.environ[config.ENV_ADDR]
    else:
        location = local_location(vault_path)
        passphrase = _passphrase(confirm=True) if seal is SealType.PASSPHRASE else None
        result, where = _init_local(location, seal, passphrase, key_file=Path(key_file) if key_file else None,
                                    **options), config.shown_location(location)
    data = {"vault_id": result.vault_id, "unseal_shares": list(result.shares), "threshold": result.threshold,
            "root_token": result.root_token, "key_file": str(result.key_file) if result.key_file else None}
    emit(output, data, lambda: _init_text(result, where))


def _shares_given(shares: tuple[str, ...], threshold: int) -> list[str]:
    """Arguments, else KINKO_UNSEAL_SHARES, else stdin (piped: whitespace separated), else prompts."""
    given = list(shares) or os.environ.get(config.ENV_UNSEAL_SHARES, "").split()
    if given:
        return given
    if sys.stdin.isatty():
        return [click.prompt(f"Unseal share {i + 1}/{threshold}", hide_input=True, err=True)
                for i in range(threshold)]
    given = sys.stdin.read().split()
    if not given:
        raise UsageError("usage: kinko operator unseal SHARE... (or KINKO_UNSEAL_SHARES, or shares piped on "
                         "stdin, one per line)")
    return given


@cli.command("unseal")
@vault_option
@click.argument("shares", nargs=-1)
@click.option("--key-file", type=click.Path(dir_okay=False), help="Unseal with this key file.")
@output_option
@handle_errors
def unseal(vault_path: str, shares: tuple[str, ...], key_file: str | None, output: str) -> None:
    """Unseal with shares (arguments, KINKO_UNSEAL_SHARES, stdin or prompts), a passphrase or a key file.

    A local vault is unsealed per process; this checks the material and lifts an operator seal.
    """
    session = open_session(vault_path, unseal=False)
    status = session.status()
    if status.seal_type == "keyfile":
        status = session.unseal(key_file=Path(key_file) if key_file else None)
    elif status.seal_type == "passphrase":
        status = session.unseal(passphrase=_passphrase(confirm=False))
    else:
        for share in _shares_given(shares, status.threshold):
            status = session.unseal(share=share)
            if not status.sealed:
                break
    if status.sealed and status.progress > 0 and not is_remote():
        # A local vault file has no process that would keep this progress for the next command.
        raise Sealed(f"{status.progress} of {status.threshold} shares given; a local vault is unsealed per "
                     f"process: give all {status.threshold} in one command (arguments, KINKO_UNSEAL_SHARES or stdin)")
    if status.sealed and status.progress > 0:  # legitimate partial progress on a server: more shares to come
        final = status
        emit(output, final.to_dict(), lambda: f"unseal progress {final.progress}/{final.threshold}")
        return
    if status.sealed:
        raise Sealed("vault is still sealed after the material given")
    emit(output, status.to_dict(), lambda: _status_text(status))


@cli.command("seal")
@vault_option
@handle_errors
def seal(vault_path: str) -> None:
    """Seal the vault: drop every key and refuse auto-unseal until an explicit unseal."""
    open_session(vault_path, unseal=False).seal()  # through the service, so authorization and audit see it
    click.echo("vault sealed")


@cli.command("status")
@vault_option
@output_option
@handle_errors
def status(vault_path: str, output: str) -> None:
    """Show whether the vault is initialised and sealed, and its seal and key settings."""
    current = open_session(vault_path, unseal=False).status()
    emit(output, current.to_dict(), lambda: _status_text(current))


@cli.command("rotate")
@vault_option
@click.option("--rewrap/--no-rewrap", default=True, show_default=True,
              help="Re-encrypt existing versions under the new key term.")
@output_option
@handle_errors
def rotate(vault_path: str, rewrap: bool, output: str) -> None:
    """Add a new key term; new writes use it, old terms stay readable."""
    session = open_session(vault_path)
    term = session.rotate()
    moved = session.rewrap() if rewrap else 0
    emit(output, {"key_term": term, "rewrapped": moved},
         lambda: f"key term {term} active; {moved} version(s) re-encrypted")


def _location(value: str, option: str) -> str:
    """`sqlite:PATH` or a PostgreSQL URL (a plain path means SQLite); no password on the command line."""
    return config.check_storage_url(value if config.is_storage_url(value) else f"sqlite:{value}", option=option,
                                    on_command_line=True)


def _migration_text(report: MigrationReport) -> str:
    rows = ", ".join(f"{table} {count}" for table, count in report.rows.items() if table != "policy_revision")
    lines = [f"copied {report.source} -> {report.target}: {rows}",
             "verified: row counts, and every row of the copy equals the source's byte for byte"]
    if report.unsealed_with:
        lines.append(f"decrypted: {report.decrypted} of {report.versions} versions chosen at random, unsealed with "
                     f"{report.unsealed_with} (integrity tags checked)")
    else:
        lines.append("decrypted: none (no unseal material for this vault: give --key-file, KINKO_PASSPHRASE or "
                     "KINKO_UNSEAL_SHARES to check a sample); counts and byte comparison only")
    return "\n".join(lines)


@cli.command("migrate")
@click.option("--from", "source", required=True, help="The vault to copy: sqlite:PATH or postgresql://…")
@click.option("--to", "target", required=True, help="An empty store: postgresql://… or sqlite:PATH (created).")
@click.option("--key-file", type=click.Path(dir_okay=False), help="Key file to check the copy with (default: the "
              "one recorded at init, for a key-file vault).")
@click.option("--sample", default=DEFAULT_SAMPLE, show_default=True, help="Versions to decrypt from the copy.")
@output_option
@handle_errors
def migrate_cmd(source: str, target: str, key_file: str | None, sample: int, output: str) -> None:
    """Copy a vault between SQLite and PostgreSQL as stored (ciphertext, metadata, keyring, tags), without
    unsealing it to copy; then compare every row and, given unseal material, decrypt a sample. The target must
    be empty. Stop the servers of the source first: writes made during the copy are not in it."""
    shares = tuple(os.environ.get(config.ENV_UNSEAL_SHARES, "").split())
    material = UnsealMaterial(Path(key_file) if key_file else None, os.environ.get(config.ENV_PASSPHRASE), shares)
    report = migrate(_location(source, "--from"), _location(target, "--to"), material=material, sample=sample)
    emit(output, dataclasses.asdict(report), lambda: _migration_text(report))
