"""`kinko token`: create, lookup, list, renew and revoke tokens (through a VaultSession)."""

from __future__ import annotations

import sys

import click

from kinko.cli._common import duration, emit, handle_errors, output_option, vault_option
from kinko.cli._session import open_session
from kinko.errors import PermissionDenied, UsageError
from kinko.vault import DEFAULT_TTL, TokenInfo, VaultSession


@click.group("token")
def cli() -> None:
    """Create, look up, renew and revoke tokens."""


def _token_arg(token: str | None) -> str | None:
    """A token argument: `-` reads one line from stdin (keeps it out of shell history and ps)."""
    if token == "-":
        return sys.stdin.readline().strip()
    return token


def _text(info: TokenInfo) -> str:
    doc = info.to_dict()
    lines = [f"accessor: {info.accessor}", f"display name: {info.display_name}",
             f"policies: {', '.join(info.policies) or '-'}", f"created: {doc['created']}",
             f"expires: {doc['expires'] or 'never'}", f"max expires: {doc['max_expires'] or 'never'}",
             f"renewable: {str(info.renewable).lower()}"]
    if info.num_uses:
        lines.append(f"uses left: {info.uses_left} of {info.num_uses}")
    if info.parent:
        lines.append(f"parent: {info.parent}")
    lines += [f"meta {k}: {v}" for k, v in sorted(info.metadata.items())]
    return "\n".join(lines)


@cli.command("create")
@vault_option
@click.option("--policy", "-p", "policies", multiple=True, required=True, help="Policy to attach (repeatable).")
@click.option("--ttl", callback=duration(),
              help=f"Time to live, e.g. 1h or 1h30m (default {int(DEFAULT_TTL // 3600)}h).")
@click.option("--max-ttl", callback=duration(), help="Renewal limit, e.g. 30d (default 32d).")
@click.option("--no-ttl", is_flag=True, help="Never expires (root only).")
@click.option("--uses", "num_uses", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
              help="Use limit (0 = unlimited).")
@click.option("--display-name", default="token", show_default=True, help="A name to recognise the token by.")
@click.option("--renewable/--not-renewable", default=True, show_default=True)
@click.option("--meta", "meta", multiple=True, help="KEY=VALUE metadata (repeatable).")
@output_option
@handle_errors
def create(vault_path: str, policies: tuple[str, ...], ttl: float | None, max_ttl: float | None, no_ttl: bool,
           num_uses: int, display_name: str, renewable: bool, meta: tuple[str, ...], output: str) -> None:
    """Create a token. It is printed once; only its hash is stored."""
    if no_ttl and (ttl or max_ttl):
        raise UsageError("--no-ttl cannot be combined with --ttl or --max-ttl")
    metadata: dict[str, str] = {}
    for pair in meta:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta {key or '?'!r}: expected KEY=VALUE")
        metadata[key] = value
    token, info = open_session(vault_path).create_token(
        policies=list(policies), ttl=None if no_ttl else (ttl or DEFAULT_TTL), max_ttl=max_ttl, num_uses=num_uses,
        display_name=display_name, renewable=renewable, metadata=metadata,
    )
    emit(output, {"token": token, **info.to_dict()}, lambda: f"token: {token}\n{_text(info)}")


@cli.command("lookup")
@vault_option
@click.argument("token", required=False)
@click.option("--accessor", "-a", help="Look up by accessor instead of by token.")
@output_option
@handle_errors
def lookup(vault_path: str, token: str | None, accessor: str | None, output: str) -> None:
    """Show a token's details (TOKEN, `-` for stdin, or --accessor; remote mode: your own by default)."""
    info = open_session(vault_path).lookup_token(_token_arg(token), accessor=accessor)
    emit(output, info.to_dict(), lambda: _text(info))


@cli.command("list")
@vault_option
@output_option
@handle_errors
def list_(vault_path: str, output: str) -> None:
    """List live tokens by accessor (never the tokens themselves)."""
    infos = open_session(vault_path).list_tokens()
    emit(output, [i.to_dict() for i in infos], lambda: "\n".join(
        f"{i.accessor}  {i.display_name}  policies={','.join(i.policies)}  "
        f"expires={i.to_dict()['expires'] or 'never'}" for i in infos))


@cli.command("renew")
@vault_option
@click.argument("token", required=False)
@click.option("--accessor", "-a", help="Renew by accessor instead of by token.")
@click.option("--increment", callback=duration(), help="New time to live from now, e.g. 1h (default: the token's TTL).")
@output_option
@handle_errors
def renew(vault_path: str, token: str | None, accessor: str | None, increment: float | None, output: str) -> None:
    """Extend a token's expiry (never past its max TTL)."""
    info = open_session(vault_path).renew_token(_token_arg(token), accessor=accessor, increment=increment)
    emit(output, info.to_dict(), lambda: _text(info))


@cli.command("revoke")
@vault_option
@click.argument("token", required=False)
@click.option("--accessor", "-a", help="Revoke by accessor instead of by token.")
@click.option("--self", "self_", is_flag=True, help="Revoke the token this command runs with (remote mode).")
@click.option("--force", is_flag=True, help="Required to revoke a token that holds the root policy.")
@output_option
@handle_errors
def revoke(vault_path: str, token: str | None, accessor: str | None, self_: bool, force: bool,
           output: str) -> None:
    """Revoke TOKEN (`-` for stdin), --accessor A or --self, and every token created under it."""
    if sum((token is not None, accessor is not None, self_)) != 1:
        raise UsageError("give exactly one of TOKEN (`-` for stdin), --accessor A or --self")
    session = open_session(vault_path)
    secret = _token_arg(token)
    if not force:
        _refuse_root(session, secret, accessor)
    # secret None = --self: the caller's own token.
    count = session.revoke_accessor(accessor) if accessor is not None else session.revoke_token(secret)
    emit(output, {"revoked": count}, lambda: f"revoked {count} token{'s' if count != 1 else ''}")


def _refuse_root(session: VaultSession, token: str | None, accessor: str | None) -> None:
    """Revoking a root token can lock every operator out: it takes --force (checked before anything changes)."""
    try:
        info = session.lookup_token(token, accessor=accessor)
    except PermissionDenied:
        raise UsageError("cannot look the token up to check for the root policy; "
                         "pass --force to revoke it anyway") from None
    if "root" in info.policies:
        raise UsageError(f"token {info.accessor} holds the root policy; revoking it can lock you out "
                         "(pass --force to revoke it anyway)")
