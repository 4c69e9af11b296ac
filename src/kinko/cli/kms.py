"""`kinko kms-plugin`: serve the Kubernetes KMS v2 plugin API on a Unix socket until SIGTERM."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from kinko.cli._common import handle_errors


@click.command("kms-plugin")
@click.option("--socket", "socket_path", default="/var/run/kinko/kms.sock", show_default=True,
              type=click.Path(dir_okay=False), help="Unix socket the API server dials (EncryptionConfiguration "
                                                   "endpoint unix:///var/run/kinko/kms.sock).")
@click.option("--key", required=True, help="The kinko key that wraps the API server's DEK seeds.")
@click.option("--addr", envvar="KINKO_ADDR", required=True,
              help="kinko server URL(s), comma-separated for failover (env KINKO_ADDR).")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True),
              help="File holding the token (else env KINKO_TOKEN); it needs read on transit/keys/KEY and update "
                   "on transit/encrypt/KEY and transit/decrypt/KEY. Re-read when the server refuses the token.")
@click.option("--ca-file", envvar="KINKO_CACERT", default=None, type=click.Path(dir_okay=False, exists=True),
              help="CA bundle to verify the kinko server's TLS certificate (env KINKO_CACERT).")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for the kinko server on each request.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@handle_errors
def cli(socket_path: str, key: str, addr: str, token_file: str | None, ca_file: str | None, timeout: float,
        log_level: str) -> None:
    """Serve v2.KeyManagementService (Status, Encrypt, Decrypt) for kube-apiserver's KMS v2 encryption.

    The API server's DEK seeds are wrapped with the kinko key KEY (which never leaves kinko); Secrets
    themselves never reach the plugin. Seeds, tokens and ciphertexts are never logged.
    """
    from kinko.client import RemoteVault
    from kinko.deliver.kms.plugin import KmsPlugin, serve
    from kinko.deliver.unix_grpc import serve_until_stopped

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    def read_token() -> str | None:
        if not token_file:
            return None
        try:
            return Path(token_file).read_text().strip() or None
        except OSError:
            return None

    token = read_token() if token_file else os.environ.get("KINKO_TOKEN")
    if not token:
        raise click.UsageError("a token is required: --token-file or KINKO_TOKEN")
    session = RemoteVault.connect(addr, token, ca_file=ca_file, timeout=timeout)
    plugin = KmsPlugin(session, key, new_token=read_token, use_token=session.use_token)
    server = serve(socket_path, plugin)
    click.echo(f"kinko kms-plugin listening on unix:{socket_path} (key {key})", err=True)
    serve_until_stopped(server, session.close)
    click.echo("kinko kms-plugin stopped", err=True)
