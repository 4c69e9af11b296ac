"""`kinko auth kubernetes`: configure service-account auth and its roles, and log in with a service-account JWT.

Admin commands talk to the server when KINKO_ADDR is set (with KINKO_TOKEN), else to the local vault file.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import click

from kinko.cli._common import duration, emit, handle_errors, output_option, vault_option
from kinko.cli._session import open_session, remote_session
from kinko.config import TOKEN_FILE, expand
from kinko.errors import UsageError

#: A role's token TTL: at most what the server allows a Kubernetes role (32 days).
MAX_ROLE_TTL = 32 * 86400


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        raise UsageError(f"cannot read {what} {path!r}") from None


@click.group("auth")
def cli() -> None:
    """Authentication methods (Kubernetes service accounts)."""


@cli.group("kubernetes")
def kubernetes() -> None:
    """Kubernetes service-account auth: config, roles, login."""


@kubernetes.command("config")
@vault_option
@click.option("--issuer", help="Expected `iss` of service-account tokens (omit to not check it).")
@click.option("--jwks-file", type=click.Path(dir_okay=False), help="The cluster's JWKS (/openid/v1/jwks).")
@click.option("--pem-file", "pem_files", multiple=True, type=click.Path(dir_okay=False),
              help="A PEM public key (sa.pub); repeatable.")
@click.option("--show", is_flag=True, help="Print the current config instead of writing one.")
@output_option
@handle_errors
def config(vault_path: str, issuer: str | None, jwks_file: str | None, pem_files: tuple[str, ...], show: bool,
           output: str) -> None:
    """Set the issuer and the public keys that sign service-account tokens (verified offline)."""
    if not show and jwks_file is None and not pem_files:
        raise UsageError("give --jwks-file and/or --pem-file (or --show)")
    with closing(open_session(vault_path)) as session:
        if show:
            doc = session.read_kubernetes_auth_config().to_dict()
        else:
            jwks = _read(jwks_file, "JWKS file") if jwks_file else None
            doc = session.configure_kubernetes_auth(issuer=issuer, jwks=jwks,
                                                    pem_keys=[_read(p, "PEM file") for p in pem_files]).to_dict()
    keys = len((doc.get("jwks") or {}).get("keys", [])) + len(doc.get("pem_keys", []))
    emit(output, doc, lambda: f"Kubernetes auth: issuer {doc.get('issuer') or '(not checked)'}, {keys} key(s)")


@kubernetes.group("role")
def role() -> None:
    """Bind service accounts and namespaces to policies."""


def _role_text(doc: dict[str, Any]) -> str:
    return (f"role {doc['name']}: service accounts {', '.join(doc['service_account_names'])} in namespaces "
            f"{', '.join(doc['namespaces'])}; audience {doc['audience'] or '(not checked)'}; policies "
            f"{', '.join(doc['policies']) or '(none)'}; token ttl {doc['ttl']}s")


@role.command("write")
@vault_option
@click.argument("name")
@click.option("--sa", "accounts", multiple=True, required=True, help="Service-account name ('*' any); repeatable.")
@click.option("--namespace", "namespaces", multiple=True, required=True, help="Namespace ('*' any); repeatable.")
@click.option("--audience", help="The `aud` login tokens must carry (default: kinko; tokens without it are "
              "refused, so use a projected token with this audience).")
@click.option("--policy", "policies", multiple=True, help="Policy the issued token gets; repeatable.")
@click.option("--ttl", default="1h", show_default=True, callback=duration(maximum=MAX_ROLE_TTL),
              help="Token TTL: 90s, 15m, 1h30m, 7d or seconds.")
@output_option
@handle_errors
def role_write(vault_path: str, name: str, accounts: tuple[str, ...], namespaces: tuple[str, ...],
               audience: str | None, policies: tuple[str, ...], ttl: float, output: str) -> None:
    """Create or replace role NAME."""
    if ttl < 1:
        raise UsageError("--ttl must be at least 1s")
    with closing(open_session(vault_path)) as session:
        doc = session.write_kubernetes_role(name, service_account_names=accounts, namespaces=namespaces,
                                            audience=audience, policies=policies, ttl=int(ttl)).to_dict()
    emit(output, doc, lambda: "wrote " + _role_text(doc))


@role.command("read")
@vault_option
@click.argument("name")
@output_option
@handle_errors
def role_read(vault_path: str, name: str, output: str) -> None:
    """Show role NAME."""
    with closing(open_session(vault_path)) as session:
        doc = session.read_kubernetes_role(name).to_dict()
    emit(output, doc, lambda: _role_text(doc))


@role.command("list")
@vault_option
@output_option
@handle_errors
def role_list(vault_path: str, output: str) -> None:
    """List role names."""
    with closing(open_session(vault_path)) as session:
        names = session.list_kubernetes_roles()
    emit(output, names, lambda: "\n".join(names))


@role.command("delete")
@vault_option
@click.argument("name")
@output_option
@handle_errors
def role_delete(vault_path: str, name: str, output: str) -> None:
    """Delete role NAME (tokens it issued stay valid until they expire or are revoked)."""
    with closing(open_session(vault_path)) as session:
        session.delete_kubernetes_role(name)
    emit(output, {"deleted": name}, lambda: f"deleted role {name}")


@kubernetes.command("login")
@click.option("--role", "role_name", required=True, help="Role to log in with.")
@click.option("--jwt-file", default="/var/run/secrets/kubernetes.io/serviceaccount/token", show_default=True,
              type=click.Path(dir_okay=False), help="The pod's service-account token.")
@click.option("--addr", envvar="KINKO_ADDR", help="Server address (env KINKO_ADDR).")
@click.option("--ca-file", envvar="KINKO_CACERT", type=click.Path(dir_okay=False), help="CA bundle for TLS.")
@click.option("--print", "print_token", is_flag=True, help="Print the token on stdout instead of storing it.")
@handle_errors
def login(role_name: str, jwt_file: str, addr: str | None, ca_file: str | None, print_token: bool) -> None:
    """Exchange a service-account JWT for a kinko token (stored in ~/.kinko/token 0600, like `kinko login`)."""
    from kinko.cli.login import store_token

    jwt = _read(jwt_file, "JWT file").strip()
    with closing(remote_session(addr, token="", ca_file=ca_file)) as session:  # a login sends no token of its own
        login = session.login_kubernetes(role_name, jwt)
    if print_token:
        click.echo(login.token)
        return
    server = session.client.addr
    path = expand(TOKEN_FILE)
    store_token(login.token, path, server)
    click.echo(f"logged in to {server} with role {role_name} (policies: {', '.join(login.policies)}; "
               f"ttl {login.lease_duration}s); token stored in {path}", err=True)
