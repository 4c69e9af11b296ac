"""Shared CLI plumbing: vault location, output format, error-to-exit-code mapping, reading secret input."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from kinko.errors import KinkoError, UsageError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_VAULT = "~/.kinko/vault.db"

vault_option = click.option(
    "--vault", "vault_path", envvar="KINKO_VAULT", default=DEFAULT_VAULT, show_default=True,
    type=click.Path(dir_okay=False), help="Local vault file (env KINKO_VAULT).",
)
output_option = click.option(
    "--output", "-o", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Output format.",
)


def handle_errors(func: F) -> F:
    """Turn kinko errors into one line on stderr and exit status 1; usage errors exit 2, like click's own.

    Any other exception is a bug: one line naming only its type, exit 1 (KINKO_DEBUG=1 re-raises it).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KinkoError as exc:
            click.echo(f"error: {exc.code}: {exc.message}", err=True)
            sys.exit(2 if isinstance(exc, UsageError) else 1)
        except OSError as exc:  # a path that is a directory, a full disk, a permission problem
            where = f" {exc.filename!r}" if exc.filename else ""
            click.echo(f"error: io_error: {exc.strerror or exc}{where}", err=True)
            sys.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own usage errors, --help exits and Ctrl-C: click reports those
        except Exception as exc:
            # A bug: its message or traceback may quote value bytes (UnicodeDecodeError shows them), so name only
            # the type unless the user asks for the traceback.
            if os.environ.get("KINKO_DEBUG") == "1":
                raise
            click.echo(f"error: internal: {type(exc).__name__} (run with KINKO_DEBUG=1 for a traceback)", err=True)
            sys.exit(1)

    return cast(F, wrapper)


def vault_file(vault_path: str) -> Path:
    return Path(os.path.expanduser(vault_path))


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


def parse_time(text: str | None) -> float | None:
    """ISO 8601 (UTC when no offset) or relative `+30d` / `+12h` / `+15m` / `+45s` from now."""
    import re
    import time
    from datetime import UTC, datetime

    if text is None:
        return None
    match = re.fullmatch(r"\+(\d+)([dhms])", text.strip())
    if match:
        unit = {"d": 86400, "h": 3600, "m": 60, "s": 1}[match.group(2)]
        return time.time() + int(match.group(1)) * unit
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time or a +N[dhms] offset") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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
