"""`kinko csi-provider`: serve the Secrets Store CSI driver's provider API on a Unix socket until SIGTERM."""

from __future__ import annotations

import logging

import click

from kinko.cli._common import handle_errors


@click.command("csi-provider")
@click.option("--socket", "socket_path", default="/var/run/secrets-store-csi-providers/kinko.sock",
              show_default=True, type=click.Path(dir_okay=False),
              help="Unix socket the driver dials: <provider-dir>/kinko.sock (SecretProviderClass provider: kinko).")
@click.option("--addr", envvar="KINKO_ADDR", default=None,
              help="kinko server URL (env KINKO_ADDR); a SecretProviderClass's kinkoAddress must match it unless "
                   "--allow-address-override is given.")
@click.option("--ca-file", envvar="KINKO_CACERT", default=None, type=click.Path(dir_okay=False, exists=True),
              help="CA bundle to verify the kinko server's TLS certificate (env KINKO_CACERT).")
@click.option("--allow-address-override/--no-address-override", "address_override", default=False,
              show_default=True,
              help="Let a SecretProviderClass's kinkoAddress choose the server the pod's token is sent to (anyone "
                   "who can write one could then collect pod tokens). --no-address-override is the default.")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for the kinko server on each request.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@handle_errors
def cli(socket_path: str, addr: str | None, ca_file: str | None, address_override: bool, timeout: float,
        log_level: str) -> None:
    """Serve v1alpha1.CSIDriverProvider (Version, Mount) for the Secrets Store CSI driver.

    Each Mount logs in to kinko with the pod's service-account token (Kubernetes auth, parameter roleName),
    fetches every object in the `objects` parameter (all or nothing) and returns them as files. Values and
    tokens are never logged.
    """
    from kinko.deliver.csi.provider import Provider, serve
    from kinko.deliver.unix_grpc import serve_until_stopped

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not address_override and not addr:
        raise click.UsageError("--addr (or KINKO_ADDR) is required unless --allow-address-override is given")
    provider = Provider(addr, ca_file=ca_file, timeout=timeout, address_override=address_override)
    server = serve(socket_path, provider)
    click.echo(f"kinko csi-provider listening on unix:{socket_path}", err=True)
    serve_until_stopped(server, provider.close)
    click.echo("kinko csi-provider stopped", err=True)
