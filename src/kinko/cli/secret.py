"""`kinko secret`: put, get, list, versions, update, delete, recover, purge, backup and restore."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from kinko import config
from kinko.cli._common import emit, handle_errors, moment, output_option, parse_tags, read_source, vault_option
from kinko.cli._session import open_session
from kinko.core.model import SecretValue, VersionInfo
from kinko.errors import InvalidInput, UsageError


@click.group("secret")
def cli() -> None:
    """Store, read, list, delete and recover secrets."""


def _parse_data(data: tuple[str, ...], value: str | None) -> SecretValue:
    """DATA is `-` or `@file` (one value), or KEY=VALUE pairs where VALUE may be `@file` or `-`."""
    if value is not None:
        if data:
            raise UsageError("give either --value or DATA arguments, not both")
        return value.encode()
    if not data:
        implicit = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
        if not implicit:  # an explicit `-` may store an empty value; an empty pipe nobody asked for may not
            raise UsageError("no value given: pass `-` to read stdin, @FILE, KEY=VALUE or --value")
        return implicit
    if len(data) == 1 and (data[0] == "-" or data[0].startswith("@")):
        return read_source(data[0])
    pairs: dict[str, bytes] = {}
    for position, item in enumerate(data, start=2):  # PATH is argument 1
        key, sep, spec = item.partition("=")
        if not sep or not key:
            # Name the position, never the text: a mistyped argument is often the secret value itself.
            raise UsageError(f"argument {position}: expected KEY=VALUE, KEY=@FILE, KEY=- , `-` or `@FILE`")
        if key in pairs:
            raise UsageError(f"key {key!r} given twice")
        pairs[key] = read_source(spec)
    return pairs


def _version_text(info: VersionInfo) -> str:
    attrs = info.attributes
    parts = [f"{info.path} version {info.version}", f"type={attrs.content_type}",
             "enabled" if attrs.enabled else "disabled"]
    if attrs.not_before:
        parts.append(f"not_before={info.to_dict()['not_before']}")
    if attrs.expires:
        parts.append(f"expires={info.to_dict()['expires']}")
    if attrs.tags:
        parts.append("tags=" + ",".join(f"{k}={v}" for k, v in sorted(attrs.tags.items())))
    return "  ".join(parts)


@cli.command("put")
@vault_option
@click.argument("path")
@click.argument("data", nargs=-1)
@click.option("--value", help="Literal value (visible in shell history and ps; prefer `-` or @FILE).")
@click.option("--type", "content_type", default=None,
              help="Default: text for one value, Opaque for KEY=VALUE pairs. Content type: text, "
                   "connection-string, api-key, certificate, private-key, ssh-private-key, "
                   "or a Kubernetes Secret type such as kubernetes.io/tls.")
@click.option("--cas", type=int, help="Only write if the current version is this (0 = must not exist).")
@click.option("--max-versions", type=int, help="Keep at most this many versions (0 = all).")
@click.option("--not-before", callback=moment, help="ISO 8601 time or +DURATION from now (+1h, +90d).")
@click.option("--expires", callback=moment, help="ISO 8601 time or +DURATION from now (+1h30m, +90d).")
@click.option("--tag", "tags", multiple=True, help="NAME=VALUE (repeatable, at most 15).")
@click.option("--disabled", is_flag=True, help="Write the version disabled.")
@output_option
@handle_errors
def put(vault_path: str, path: str, data: tuple[str, ...], value: str | None, content_type: str | None,
        cas: int | None, max_versions: int | None, not_before: float | None, expires: float | None,
        tags: tuple[str, ...], disabled: bool, output: str) -> None:
    """Write a new version of PATH. DATA: `-` (stdin), `@FILE`, or KEY=VALUE / KEY=@FILE pairs."""
    secret_value = _parse_data(data, value)
    if content_type is None:  # "text" takes one value only; pairs are a Kubernetes-style map
        content_type = "text" if isinstance(secret_value, bytes) else "Opaque"
    info = open_session(vault_path).put(path, secret_value, content_type=content_type, cas=cas,
                                        max_versions=max_versions, not_before=not_before, expires=expires,
                                        tags=parse_tags(tags), enabled=not disabled)
    emit(output, info.to_dict(), lambda: f"wrote {info.path} version {info.version}")


def _printable(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} is binary; use --key and redirect stdout, or --output json") from None


@cli.command("get")
@vault_option
@click.argument("path")
@click.option("--version", type=int, help="Version to read (default: current).")
@click.option("--key", help="Only this key of a key/value secret (printed raw).")
@output_option
@handle_errors
def get(vault_path: str, path: str, version: int | None, key: str | None, output: str) -> None:
    """Print the value of PATH (only what was asked for)."""
    secret = open_session(vault_path).get(path, version)
    value = secret.value
    if key is not None:
        if isinstance(value, bytes) or key not in value:
            raise InvalidInput(f"secret {path!r} has no key {key!r}")
        value = value[key]
    if output == "json":
        import base64

        def enc(raw: bytes) -> dict[str, str]:
            try:
                return {"text": raw.decode("utf-8")}
            except UnicodeDecodeError:
                return {"base64": base64.b64encode(raw).decode()}

        payload: Any = enc(value) if isinstance(value, bytes) else {k: enc(v) for k, v in value.items()}
        click.echo(json.dumps({**secret.info.to_dict(), "value": payload}, indent=2, sort_keys=True))
    elif isinstance(value, bytes):
        if key is not None or not sys.stdout.isatty():
            sys.stdout.buffer.write(value)
            sys.stdout.flush()
        else:
            click.echo(_printable(value, f"secret {path!r}"))
    else:
        for name in sorted(value):
            click.echo(f"{name}={_printable(value[name], f'key {name!r}')}")


@cli.command("list")
@vault_option
@click.argument("prefix", default="")
@click.option("--deleted", is_flag=True, help="List soft-deleted secrets instead.")
@output_option
@handle_errors
def list_(vault_path: str, prefix: str, deleted: bool, output: str) -> None:
    """List secrets and folders directly under PREFIX (folders end in '/')."""
    session = open_session(vault_path)
    if deleted:
        items = session.list_deleted(prefix)
        emit(output, [i.to_dict() for i in items], lambda: "\n".join(
            f"{i.path}  deleted={i.to_dict()['deleted']}  purge_after={i.to_dict()['scheduled_purge']}"
            for i in items))
        return
    listing = session.list(prefix)
    emit(output, {"prefix": listing.prefix, "keys": list(listing.keys)}, lambda: "\n".join(listing.keys))


@cli.command("versions")
@vault_option
@click.argument("path")
@output_option
@handle_errors
def versions(vault_path: str, path: str, output: str) -> None:
    """List the versions of PATH with their attributes (no values)."""
    items = open_session(vault_path).versions(path)
    emit(output, [i.to_dict() for i in items], lambda: "\n".join(_version_text(i) for i in items))


@cli.command("update")
@vault_option
@click.argument("path")
@click.option("--version", type=int, help="Version to change (default: current).")
@click.option("--enable/--disable", "enabled", default=None, help="Enable or disable the version.")
@click.option("--not-before", help="ISO 8601 time, +DURATION from now (+1h, +90d), or 'none' to clear.")
@click.option("--expires", help="ISO 8601 time, +DURATION from now (+1h30m, +90d), or 'none' to clear.")
@click.option("--tag", "tags", multiple=True, help="NAME=VALUE; replaces all tags (repeatable).")
@output_option
@handle_errors
def update(vault_path: str, path: str, version: int | None, enabled: bool | None, not_before: str | None,
           expires: str | None, tags: tuple[str, ...], output: str) -> None:
    """Change a version's attributes without writing a new value."""
    changes: dict[str, Any] = {"enabled": enabled, "tags": parse_tags(tags)}
    for name, text in (("not_before", not_before), ("expires", expires)):
        if text is not None:  # absent: keep the current value
            option = "--" + name.replace("_", "-")
            changes[name] = None if text.strip().lower() == "none" else config.parse_moment(text, option=option)
    info = open_session(vault_path).update_attributes(path, version, **changes)
    emit(output, info.to_dict(), lambda: _version_text(info))


@cli.command("delete")
@vault_option
@click.argument("path")
@output_option
@handle_errors
def delete(vault_path: str, path: str, output: str) -> None:
    """Soft-delete PATH (recoverable until the retention period ends)."""
    info = open_session(vault_path).delete(path)
    emit(output, info.to_dict(),
         lambda: f"deleted {path}; recoverable until {info.to_dict()['scheduled_purge']}")


@cli.command("recover")
@vault_option
@click.argument("path")
@output_option
@handle_errors
def recover(vault_path: str, path: str, output: str) -> None:
    """Recover a soft-deleted secret."""
    info = open_session(vault_path).recover(path)
    emit(output, info.to_dict(), lambda: f"recovered {path} (version {info.current_version})")


@cli.command("purge")
@vault_option
@click.argument("path")
@handle_errors
def purge(vault_path: str, path: str) -> None:
    """Permanently remove a soft-deleted secret."""
    open_session(vault_path).purge(path)
    click.echo(f"purged {path}")


@cli.command("backup")
@vault_option
@click.argument("path")
@click.option("--file", "-f", "out_file", required=True, type=click.Path(dir_okay=False),
              help="Where to write the encrypted backup (created 0600, never overwritten).")
@handle_errors
def backup(vault_path: str, path: str, out_file: str) -> None:
    """Write all versions of PATH as an encrypted blob only this vault can restore."""
    blob = open_session(vault_path).backup(path)
    try:
        fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"{out_file!r} already exists; refusing to overwrite it") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(blob + b"\n")
    click.echo(f"backed up {path} to {out_file}")


@cli.command("restore")
@vault_option
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False))
@output_option
@handle_errors
def restore(vault_path: str, backup_file: str, output: str) -> None:
    """Restore a secret from a backup made by this vault."""
    info = open_session(vault_path).restore(Path(backup_file).read_bytes().strip())
    emit(output, info.to_dict(), lambda: f"restored {info.path} ({info.current_version} version(s))")
