"""`kinko auth kubernetes`: configure service-account auth and its roles, and log in with a service-account JWT.

Admin commands talk to the server when KINKO_ADDR is set (with KINKO_TOKEN), else to the local vault file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click

from kinko.cli._common import emit, handle_errors, output_option, vault_file, vault_option
from kinko.core.model import Caller
from kinko.errors import UsageError

CALLER = Caller.local_operator()


class _Admin:
    """The same admin calls against a server (Client) or the local vault (Vault); answers are plain dicts."""

    def __init__(self, vault_path: str) -> None:
        self._client: Any = None
        self._vault: Any = None
        from kinko.cli._local import ensure_unsealed, is_remote, open_local

        if is_remote():
            from kinko.client import Client

            self._client = Client()
        else:
            self._vault = ensure_unsealed(open_local(vault_file(vault_path)))

    def configure(self, issuer: str | None, jwks: str | None, pem_keys: list[str]) -> dict[str, Any]:
        if self._client is not None:
            return dict(self._client.configure_kubernetes_auth(issuer=issuer, jwks=jwks, pem_keys=pem_keys))
        return dict(self._vault.configure_kubernetes_auth(CALLER, issuer=issuer, jwks=jwks,
                                                          pem_keys=pem_keys).to_dict())

    def read_config(self) -> dict[str, Any]:
        if self._client is not None:
            return dict(self._client.read_kubernetes_auth_config())
        return dict(self._vault.read_kubernetes_auth_config(CALLER).to_dict())

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A role method; the local vault takes the operator as its first argument, the client does not."""
        if self._client is not None:
            return getattr(self._client, method)(*args, **kwargs)
        result = getattr(self._vault, method)(CALLER, *args, **kwargs)
        return result.to_dict() if hasattr(result, "to_dict") else result

    def close(self) -> None:
        (self._client or self._vault).close()


def parse_ttl(text: str) -> int:
    """`3600`, `90s`, `15m`, `1h`, `7d` -> seconds."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter(f"{text!r} is not a duration like 3600, 90s, 15m, 1h or 7d")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


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
    admin = _Admin(vault_path)
    try:
        if show:
            doc = admin.read_config()
        else:
            if jwks_file is None and not pem_files:
                raise UsageError("give --jwks-file and/or --pem-file (or --show)")
            jwks = _read(jwks_file, "JWKS file") if jwks_file else None
            doc = admin.configure(issuer, jwks, [_read(p, "PEM file") for p in pem_files])
    finally:
        admin.close()
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
@click.option("--ttl", default="1h", show_default=True, help="Token TTL: 3600, 90s, 15m, 1h, 7d.")
@output_option
@handle_errors
def role_write(vault_path: str, name: str, accounts: tuple[str, ...], namespaces: tuple[str, ...],
               audience: str | None, policies: tuple[str, ...], ttl: str, output: str) -> None:
    """Create or replace role NAME."""
    admin = _Admin(vault_path)
    try:
        doc = admin.call("write_kubernetes_role", name, service_account_names=list(accounts),
                         namespaces=list(namespaces), audience=audience, policies=list(policies),
                         ttl=parse_ttl(ttl))
    finally:
        admin.close()
    emit(output, doc, lambda: "wrote " + _role_text(doc))


@role.command("read")
@vault_option
@click.argument("name")
@output_option
@handle_errors
def role_read(vault_path: str, name: str, output: str) -> None:
    """Show role NAME."""
    admin = _Admin(vault_path)
    try:
        doc = admin.call("read_kubernetes_role", name)
    finally:
        admin.close()
    emit(output, doc, lambda: _role_text(doc))


@role.command("list")
@vault_option
@output_option
@handle_errors
def role_list(vault_path: str, output: str) -> None:
    """List role names."""
    admin = _Admin(vault_path)
    try:
        names = list(admin.call("list_kubernetes_roles"))
    finally:
        admin.close()
    emit(output, names, lambda: "\n".join(names))


@role.command("delete")
@vault_option
@click.argument("name")
@output_option
@handle_errors
def role_delete(vault_path: str, name: str, output: str) -> None:
    """Delete role NAME (tokens it issued stay valid until they expire or are revoked)."""
    admin = _Admin(vault_path)
    try:
        admin.call("delete_kubernetes_role", name)
    finally:
        admin.close()
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
    from kinko.client import TOKEN_FILE, Client

    jwt = _read(jwt_file, "JWT file").strip()
    client = Client(addr, "", ca_file=ca_file)
    try:
        auth = client.kubernetes_login(role_name, jwt)
    finally:
        client.close()
    token = str(auth["client_token"])
    if print_token:
        click.echo(token)
        return
    path = Path(os.path.expanduser(TOKEN_FILE))
    store_token(token, path, client.addr)
    click.echo(f"logged in to {client.addr} with role {role_name} (policies: {', '.join(auth['policies'])}; "
               f"ttl {auth['lease_duration']}s); token stored in {path}", err=True)
