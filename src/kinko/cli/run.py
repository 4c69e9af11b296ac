"""`kinko run`: resolve secrets into environment variables (all or nothing) and exec a command with them."""

from __future__ import annotations

import os
from pathlib import Path

import click

from kinko.cli._common import handle_errors, vault_option
from kinko.cli._session import open_session
from kinko.deliver.env import WARNING, exec_with, load_env_file, merge, parse_option, resolve
from kinko.errors import UsageError


@click.command("run", context_settings={"allow_interspersed_args": False})
@vault_option
@click.option("--env", "envs", multiple=True, metavar="NAME=PATH[#KEY]",
              help="Set NAME to the secret at PATH (or its KEY). Repeatable.")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path),
              help='YAML mapping {NAME: "path#key", ...}.')
@click.option("--quiet", "-q", is_flag=True, help="Do not print the warning about environment variables.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@handle_errors
def cli(vault_path: str, envs: tuple[str, ...], env_file: Path | None, quiet: bool,
        command: tuple[str, ...]) -> None:
    """Run COMMAND with secrets in its environment: kinko run --env DB=app/db#url -- cmd args.

    Every secret is resolved before the command starts; if any fails, the command is not run. The command
    replaces kinko (exec), so its exit status is kinko's. Values are never printed.
    """
    refs = merge([load_env_file(env_file) if env_file else [], [parse_option(text) for text in envs]])
    if not refs:
        raise UsageError("nothing to inject: give at least one --env NAME=path[#key] or --env-file")
    session = open_session(vault_path)
    try:
        values = resolve(session, refs)
    finally:
        session.close()  # drop the vault's keys and connections before the command takes over this process
    if not quiet:
        click.echo(WARNING, err=True)
    exec_with(command, values, os.environ)
