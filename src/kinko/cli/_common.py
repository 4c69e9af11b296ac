"""Shared CLI plumbing: vault location, output format, durations, error-to-exit-code mapping, reading input."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from kinko import config
from kinko.errors import KinkoError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

_vault_file = click.option(
    "--vault", "vault_path", envvar=config.ENV_VAULT, default=config.DEFAULT_VAULT, show_default=True,
    type=click.Path(dir_okay=False), help="Local vault file (env KINKO_VAULT).",
)
#: Where `--storage` (or KINKO_STORAGE) is kept for the command (kinko.cli._session reads it).
STORAGE_META = "kinko.storage"


def _remember_storage(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        typed = ctx.get_parameter_source(str(param.name)) is click.core.ParameterSource.COMMANDLINE
        try:
            ctx.meta[STORAGE_META] = config.check_storage_url(value, option="--storage", on_command_line=typed)
        except UsageError as exc:
            raise click.BadParameter(exc.message.removeprefix("--storage: "), ctx, param) from None


_storage_url = click.option(
    "--storage", envvar=config.ENV_STORAGE, expose_value=False, callback=_remember_storage,
    help="Vault in a database instead of a file: postgresql://user@host:5432/db?passfile=FILE (env KINKO_STORAGE; "
         "a password comes from the passfile or PGPASSFILE, never the command line).",
)


def vault_option(func: F) -> F:
    """`--vault FILE` (KINKO_VAULT) and `--storage URL` (KINKO_STORAGE): where a local command finds the vault."""
    return _vault_file(_storage_url(func))
output_option = click.option(
    "--output", "-o", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Output format.",
)


def handle_errors(func: F) -> F:
    """Turn kinko errors into one line on stderr and exit status 1; usage errors exit 2, like click's own.

    Any other exception is a bug: one line naming only its type, exit 1 (KINKO_DEBUG=1 re-raises it).
    """
    return failing_with(1)(func)


def failing_with(status: int) -> Callable[[F], F]:
    """`handle_errors` with `status` as the exit status of a failure (`kinko scan` uses 3: 1 means findings)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except KinkoError as exc:
                click.echo(f"error: {exc.code}: {exc.message}", err=True)
                sys.exit(2 if isinstance(exc, UsageError) else status)
            except OSError as exc:  # a path that is a directory, a full disk, a permission problem
                where = f" {exc.filename!r}" if exc.filename else ""
                click.echo(f"error: io_error: {exc.strerror or exc}{where}", err=True)
                sys.exit(status)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise  # click's own usage errors, --help exits and Ctrl-C: click reports those
            except Exception as exc:
                # A bug: its message or traceback may quote value bytes (UnicodeDecodeError shows them), so name
                # only the type unless the user asks for the traceback.
                if os.environ.get("KINKO_DEBUG") == "1":
                    raise
                click.echo(f"error: internal: {type(exc).__name__} (run with KINKO_DEBUG=1 for a traceback)",
                           err=True)  # fmt: skip
                sys.exit(status)

        return cast(F, wrapper)

    return decorate


def _option_name(param: click.Parameter) -> str:
    return param.opts[0] if param.opts else str(param.name)


def duration(maximum: float | None = None) -> Callable[[click.Context, click.Parameter, str | None], float | None]:
    """An option callback for Vault-syntax durations (`90s`, `15m`, `1h30m`, `7d`): seconds as a float.

    (A callback, not a click.ParamType, so it works on every click release pyproject allows.)
    """

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
        if value is None:
            return None
        option = _option_name(param)
        try:
            return config.parse_duration(value, option=option, maximum=maximum)
        except UsageError as exc:
            raise click.BadParameter(exc.message.removeprefix(f"{option}: "), ctx, param) from None

    return convert


def moment(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """An option callback for a point in time: ISO 8601 (UTC unless an offset is given) or `+DURATION` (`+90d`)."""
    if value is None:
        return None
    option = _option_name(param)
    try:
        return config.parse_moment(value, option=option)
    except UsageError as exc:
        raise click.BadParameter(exc.message.removeprefix(f"{option}: "), ctx, param) from None


def emit(output: str, data: Any, text: Callable[[], str]) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    rendered = text()
    if rendered:  # nothing to show (an empty listing) prints nothing, not a blank line
        click.echo(rendered)


def read_source(spec: str) -> bytes:
    """A value given as `-` (stdin) or `@path` (a file); anything else is the literal text."""
    if spec == "-":
        return sys.stdin.buffer.read()
    if spec.startswith("@"):
        try:
            return Path(spec[1:]).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {spec[1:]!r}: {exc.strerror}") from None
    return spec.encode()


def parse_tags(pairs: tuple[str, ...]) -> dict[str, str] | None:
    if not pairs:
        return None
    tags: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"tag {pair!r} must be NAME=VALUE")
        if name in tags:  # silently keeping the last one hides a typo
            raise UsageError(f"tag {name!r} given twice")
        tags[name] = value
    return tags
