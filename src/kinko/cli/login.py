"""`kinko login`: check a token against the server (KINKO_ADDR) and keep it, with that address, in ~/.kinko/token."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from kinko import config
from kinko.cli._common import handle_errors
from kinko.errors import UsageError


def store_token(token: str, path: Path, addr: str | None = None) -> None:
    """Write the token file 0600 from the first byte (and tighten an existing file before writing).

    With `addr` (every login passes it) the file is {"addr": ..., "token": ...} JSON, and the client sends
    the token only to that server; without it, the bare token (which the client no longer uses on its own).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = token if addr is None else json.dumps({"addr": addr, "token": token})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, body.encode() + b"\n")
    finally:
        os.close(fd)


@click.command("login")
@click.argument("token", required=False)
@click.option("--addr", envvar="KINKO_ADDR", help="Server address (env KINKO_ADDR).")
@click.option("--ca-file", envvar="KINKO_CACERT", type=click.Path(dir_okay=False), help="CA bundle for TLS.")
@click.option("--print", "print_export", is_flag=True, help="Print an export line instead of storing the token.")
@handle_errors
def cli(token: str | None, addr: str | None, ca_file: str | None, print_export: bool) -> None:
    """Check TOKEN (argument, KINKO_TOKEN or a prompt; `-` reads stdin) and store it for later commands."""
    from kinko.cli._session import remote_session

    if token == "-":
        token = sys.stdin.readline().strip()
    token = token or os.environ.get(config.ENV_TOKEN)
    if not token and not sys.stdin.isatty():
        token = sys.stdin.readline().strip()  # piped in (e.g. from a secret manager): same as `-`
    if not token:
        if not sys.stdin.isatty():
            raise UsageError("no token: pass it as an argument, `-` for stdin, or set KINKO_TOKEN")
        token = str(click.prompt("Token", hide_input=True, err=True)).strip()
    session = remote_session(addr, token=token, ca_file=ca_file)
    try:
        who = session.lookup_token()  # the token's own details: checks it against this server
    finally:
        session.close()
    if print_export:
        click.echo(f"export KINKO_TOKEN={shlex.quote(token)}")
        return
    path = config.expand(config.TOKEN_FILE)
    store_token(token, path, session.client.addr)
    click.echo(f"logged in to {session.client.addr} as token:{who.display_name} (policies: "
               f"{', '.join(who.policies)}); token stored in {path}", err=True)
