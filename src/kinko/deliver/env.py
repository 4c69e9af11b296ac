"""Env delivery: parse NAME=path[#key] references, resolve them all (or none) and exec a command with them."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import yaml

from kinko.config import CREDENTIAL_ENV
from kinko.core.model import Secret
from kinko.errors import InvalidInput, UsageError
from kinko.vault import VaultSession

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_ENV_FILE_BYTES = 1024 * 1024

WARNING = (
    "warning: secrets passed as environment variables are visible to every child process and through "
    "/proc/<pid>/environ (and `ps e`); files delivered by the kinko agent or the CSI provider (0400) are safer."
)


@dataclass(frozen=True)
class EnvRef:
    """One environment variable to fill: NAME from the secret at `path`, or from one `key` of it."""

    name: str
    path: str
    key: str | None = None

    @property
    def source(self) -> str:
        return self.path if self.key is None else f"{self.path}#{self.key}"


def parse_ref(name: str, spec: str, *, where: str = "--env") -> EnvRef:
    """`path` or `path#key` for the variable `name`; `where` says where it came from in error messages."""
    if not ENV_NAME.match(name):
        raise UsageError(f"{where}: {name!r} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
    path, sep, key = spec.partition("#")
    if not path or (sep and not key):
        raise UsageError(f"{where}: {name} must be NAME=path or NAME=path#key")
    return EnvRef(name, path, key if sep else None)


def parse_option(text: str) -> EnvRef:
    """One `--env NAME=path[#key]` value."""
    name, sep, spec = text.partition("=")
    if not sep:
        raise UsageError(f"--env {name!r}: expected NAME=path or NAME=path#key")
    return parse_ref(name, spec)


def load_env_file(path: Path) -> list[EnvRef]:
    """A YAML mapping `{NAME: "path#key", ...}`."""
    where = f"--env-file {str(path)!r}"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ENV_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it ({exc.strerror})") from None
    if len(raw) > MAX_ENV_FILE_BYTES:
        raise UsageError(f"{where}: larger than {MAX_ENV_FILE_BYTES} bytes")
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise UsageError(f"{where}: not valid YAML") from None
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: must be a mapping of NAME: path[#key]")
    refs = []
    for name, spec in doc.items():
        if not isinstance(name, str) or not isinstance(spec, str):
            raise UsageError(f"{where}: entry {str(name)!r} must map a name to a string path[#key]")
        refs.append(parse_ref(name, spec, where=where))
    return refs


def merge(groups: Iterable[Sequence[EnvRef]]) -> list[EnvRef]:
    """All references, refusing a NAME given twice (which one wins would be a guess)."""
    seen: dict[str, EnvRef] = {}
    for refs in groups:
        for ref in refs:
            if ref.name in seen:
                raise UsageError(f"environment variable {ref.name} is given more than once")
            seen[ref.name] = ref
    return list(seen.values())


def resolve(session: VaultSession, refs: Sequence[EnvRef]) -> dict[str, str]:
    """Every reference's value, or the first error: nothing is returned unless all of them resolve."""
    values: dict[str, str] = {}
    for ref in refs:
        values[ref.name] = _as_env_value(ref, _select(ref, session.get(ref.path)))
    return values


def _select(ref: EnvRef, secret: Secret) -> bytes:
    value = secret.value
    if isinstance(value, bytes | bytearray):
        if ref.key is not None:
            raise InvalidInput(f"{ref.name}: secret {ref.path!r} holds a single value; drop '#{ref.key}'")
        return bytes(value)
    if ref.key is None:
        raise InvalidInput(f"{ref.name}: secret {ref.path!r} has keys; pick one with {ref.path}#KEY")
    if ref.key not in value:
        raise InvalidInput(f"{ref.name}: secret {ref.path!r} has no key {ref.key!r}")
    return bytes(value[ref.key])


def _as_env_value(ref: EnvRef, raw: bytes) -> str:
    # Environment strings are NUL-terminated C strings and kinko decodes them as UTF-8: refuse what would not survive.
    if b"\0" in raw:
        raise InvalidInput(f"{ref.name}: {ref.source} contains a NUL byte, which an environment variable "
                           "cannot hold; deliver it as a file instead")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{ref.name}: {ref.source} is binary (not UTF-8), which an environment variable "
                           "cannot hold safely; deliver it as a file instead") from None


def child_env(values: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """`base` (the parent's environment) without kinko's credentials, plus `values` (an explicit NAME wins)."""
    return {**{k: v for k, v in base.items() if k not in CREDENTIAL_ENV}, **values}


def exec_with(argv: Sequence[str], values: Mapping[str, str], base: Mapping[str, str]) -> NoReturn:
    """Replace this process with `argv`, environment `base` (minus kinko credentials) plus `values`.

    Exits 127/126 like a shell if it cannot.
    """
    env = child_env(values, base)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], list(argv), env)  # noqa: S606 - running the user's command is the point
    except FileNotFoundError:
        print(f"error: command not found: {argv[0]}", file=sys.stderr)
        sys.exit(127)
    except OSError as exc:
        print(f"error: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        sys.exit(126)
