"""`kinko server`: run the HTTP API (config file, KINKO_* env and flags), or a throwaway `--dev` server."""

from __future__ import annotations

import os
from pathlib import Path

import click

from kinko.cli._common import handle_errors
from kinko.config import check_storage_url
from kinko.errors import UsageError

#: {address} and {token} are filled in by kinko.api.server.run once bound and initialised.
DEV_BANNER = """\
kinko dev server: throwaway vault in a temp dir, key-file sealed, unsealed. NOT for real secrets.

    Address:    {address}
    Root token: {token}

    export KINKO_ADDR={address}
    export KINKO_TOKEN={token}

Then, in another shell (with .venv/bin on PATH):
    printf '%s' 'postgresql://app:pw@db:5432/app' | kinko secret put team/app/db-url --type connection-string -
    kinko secret get team/app/db-url
    kinko secret list team/
    kinko policy list
    kinko token create --policy secrets-reader --ttl 1h
    kinko run --env DATABASE_URL=team/app/db-url -- env
    curl -s {address}/v1/sys/health

The root token is shown only now. Stop with Ctrl-C (the vault is deleted)."""


@click.command("server")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with server settings (flags and KINKO_* env override it).")
@click.option("--listen", help="HOST:PORT to listen on (default 127.0.0.1:8200; env KINKO_LISTEN).")
@click.option("--vault", "vault_path", help="Vault file (env KINKO_VAULT).")
@click.option("--storage", help="Vault in PostgreSQL instead: postgresql://user@host:5432/db?passfile=FILE "
              "(env KINKO_STORAGE; several servers may share it; no password on the command line).")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@click.option("--workers", type=int, help="Worker processes (default 1).")
@click.option("--audit-file", type=click.Path(dir_okay=False), help="Append audit records here.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--max-body-bytes", type=int, help="Largest request body accepted (default 2 MiB).")
@click.option("--insecure-listen", is_flag=True, default=None,
              help="Allow plain HTTP on a non-loopback address (tokens and secrets travel unencrypted).")
@click.option("--dev", is_flag=True, help="Throwaway vault, auto-initialised and unsealed; prints a root token.")
@handle_errors
def cli(config_file: str | None, listen: str | None, vault_path: str | None, storage: str | None, tls_cert: str | None,
        tls_key: str | None, workers: int | None, audit_file: str | None, log_level: str | None,
        max_body_bytes: int | None, insecure_listen: bool | None, dev: bool) -> None:
    """Serve the kinko HTTP API (/v1, OpenAPI at /v1/openapi.json)."""
    from kinko.api.server import load_config, run

    if storage is not None:
        check_storage_url(storage, option="--storage", on_command_line=True)
        if dev:
            raise UsageError("--dev runs on a throwaway SQLite vault; leave out --storage")
    overrides = {"listen": listen, "vault": vault_path, "storage": storage, "tls_cert": tls_cert, "tls_key": tls_key,
                 "workers": workers, "audit_file": audit_file, "log_level": log_level,
                 "max_body_bytes": max_body_bytes, "insecure_listen": insecure_listen}
    config = load_config(Path(config_file) if config_file else None, env=os.environ, overrides=overrides)
    # SIGTERM/SIGINT stop it gracefully and `run` returns: exit 0, and a --dev vault is deleted.
    run(config, dev_banner=DEV_BANNER if dev else None)
