"""The agent's settings: agent.yaml checked into `AgentConfig`, and each `FileSpec` rendered from its secret.

Config mistakes are usage errors that name the setting (never a value); templates only substitute `{{ key }}`,
nothing in them is ever evaluated.
"""

from __future__ import annotations

import logging
import math
import os
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinko.config import ENV_ADDR, parse_duration
from kinko.core.model import SecretValue
from kinko.deliver.files import validate_name
from kinko.deliver.modes import parse_mode, secret_mode
from kinko.deliver.yamlload import load_yaml
from kinko.errors import InvalidInput, UsageError

log = logging.getLogger("kinko.agent")
DEFAULT_JWT_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_INTERVAL = 60.0
DEFAULT_MAX_BACKOFF = 300.0
MAX_CONFIG_BYTES = 1024 * 1024
#: `{{ key }}` or Go-template style `{{ .key }}`: substitution only, nothing is ever evaluated.
_PLACEHOLDER = re.compile(r"\{\{\s*\.?([A-Za-z0-9._-]+)\s*\}\}")
_TOP_KEYS = {"address", "ca_file", "token_file", "kubernetes", "interval", "max_backoff", "files", "exec",
             "signal", "shared_directories"}
_FILE_KEYS = {"path", "key", "template", "destination", "name", "mode"}


@dataclass(frozen=True)
class FileSpec:
    """One file to render: the secret at `path` (one `key` of it, or a `template` over its keys)."""

    path: str
    destination: Path
    name: str
    key: str | None = None
    template: str | None = field(default=None, repr=False)
    mode: int | None = None


@dataclass(frozen=True)
class AgentConfig:
    address: str
    files: tuple[FileSpec, ...]
    ca_file: str | None = None
    token_file: Path | None = None
    k8s_role: str | None = None
    jwt_file: Path = Path(DEFAULT_JWT_FILE)
    interval: float = DEFAULT_INTERVAL
    max_backoff: float = DEFAULT_MAX_BACKOFF
    exec_command: tuple[str, ...] | None = None
    signal_pid_file: Path | None = None
    signal_name: str = "HUP"
    #: Accept group/other-writable directories on the way to a destination (a Kubernetes emptyDir), with a warning.
    shared_directories: bool = False


# -- config ---------------------------------------------------------------------------------------------------
def _mapping(doc: object, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise UsageError(f"{where} must be a mapping")
    unknown = sorted(str(k) for k in set(doc) - allowed)
    if unknown:  # quoted: a key can hold anything, a newline included
        raise UsageError(f"{where}: unknown setting(s) {', '.join(repr(k[:64]) for k in unknown[:8])}")
    return doc


def _text(doc: Mapping[str, Any], name: str, where: str, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: {name} must be a non-empty string")
    if "\0" in value or value.encode(errors="replace").decode() != value:
        # NUL, or a lone surrogate from a YAML "\ud800" escape: no file system, URL or log takes them
        raise UsageError(f"{where}: {name} must not contain a NUL or an unpaired surrogate character")
    return value


def _address(doc: Mapping[str, Any]) -> str | None:
    """`address`: one server URL, several comma-separated, or a list of URLs (tried in turn when one is down)."""
    value = doc.get("address")
    if isinstance(value, list):
        if not value:
            raise UsageError("agent config: address must be a non-empty string or list of strings")
        return ",".join(_text({"address": item}, "address", "agent config", required=True) or "" for item in value)
    return _text(doc, "address", "agent config")


def _seconds(doc: Mapping[str, Any], name: str, default: float) -> float:
    """A duration setting: seconds (a number) or Vault's syntax ("90s", "15m", "1h30m"), up to a day."""
    value = doc.get(name, default)
    seconds = None
    if isinstance(value, int | float | str):
        seconds = parse_duration(value, option=f"agent config: {name}", maximum=86400)
    if seconds is None or math.isnan(seconds):  # YAML's .nan passes every comparison in parse_duration
        raise UsageError(f"agent config: {name} must be a duration such as 90s, 15m or 1h30m")
    return seconds


def _file_spec(doc: object, number: int, base: Path) -> FileSpec:
    where = f"agent config: files[{number}]"
    doc = _mapping(doc, where, _FILE_KEYS)
    path = _text(doc, "path", where, required=True)
    destination = _text(doc, "destination", where, required=True)
    key, template = _text(doc, "key", where), doc.get("template")
    if template is not None and not isinstance(template, str):
        raise UsageError(f"{where}: template must be a string")
    if key is not None and template is not None:
        raise UsageError(f"{where}: give key or template, not both")
    assert path is not None and destination is not None
    name = _text(doc, "name", where) or path.rsplit("/", 1)[-1]
    try:  # settings in the file: usage errors (exit 2), like the rest of the config
        validate_name(name)
    except InvalidInput as exc:
        raise UsageError(f"{where}: {exc.message}") from None
    try:
        mode = parse_mode(doc.get("mode"), f"{where}: mode")
        warning = None if mode is None else secret_mode(mode, f"{where}: mode")
    except InvalidInput as exc:
        raise UsageError(exc.message) from None
    if warning:
        log.warning("%s", warning)
    # Lexically normalized (`out/../out` is `out`): one writer per directory; no symlink is followed when writing.
    return FileSpec(path, Path(os.path.normpath(base / os.path.expanduser(destination))), name, key, template,
                    mode)


def _check_unique(files: Sequence[FileSpec]) -> None:
    """Two entries writing the same file would overwrite each other silently."""
    seen: dict[tuple[Path, str], int] = {}
    for number, spec in enumerate(files):
        first = seen.setdefault((spec.destination, spec.name), number)
        if first != number:
            raise UsageError(f"agent config: files[{number}] writes {str(spec.destination / spec.name)!r}, like "
                             f"files[{first}]; give it another name or destination")


def load_config(file: Path, env: Mapping[str, str]) -> AgentConfig:
    """Read and check an agent YAML file (`env`: the process environment, for KINKO_ADDR). Relative paths in it
    are relative to the file's directory."""
    doc = _mapping(_read_yaml(file), "agent config", _TOP_KEYS)
    base = file.resolve().parent
    address = _address(doc) or env.get(ENV_ADDR)
    if not address:
        raise UsageError("agent config: no address (set `address` or KINKO_ADDR)")
    files = doc.get("files")
    if not isinstance(files, list) or not files:
        raise UsageError("agent config: files must be a non-empty list")
    token_file, k8s = _text(doc, "token_file", "agent config"), doc.get("kubernetes")
    if (token_file is None) == (k8s is None):
        raise UsageError("agent config: give exactly one of token_file or kubernetes")
    role, jwt_file = None, DEFAULT_JWT_FILE
    if k8s is not None:
        k8s = _mapping(k8s, "agent config: kubernetes", {"role", "jwt_file"})
        role = _text(k8s, "role", "agent config: kubernetes", required=True)
        jwt_file = _text(k8s, "jwt_file", "agent config: kubernetes") or DEFAULT_JWT_FILE
    command, pid_file, signal_name = _hook(doc)
    ca_file = _text(doc, "ca_file", "agent config")
    shared = doc.get("shared_directories", False)
    if not isinstance(shared, bool):
        raise UsageError("agent config: shared_directories must be true or false")
    specs = tuple(_file_spec(f, i, base) for i, f in enumerate(files))
    _check_unique(specs)
    return AgentConfig(
        address, specs, str(base / ca_file) if ca_file else None, base / token_file if token_file else None, role,
        base / jwt_file, _seconds(doc, "interval", DEFAULT_INTERVAL),
        _seconds(doc, "max_backoff", DEFAULT_MAX_BACKOFF), command, pid_file and base / pid_file, signal_name,
        shared)


def _read_yaml(file: Path) -> object:
    try:
        raw = file.read_bytes()[:MAX_CONFIG_BYTES + 1]
    except OSError:
        raise UsageError(f"cannot read agent config {str(file)!r}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise UsageError(f"agent config {str(file)!r} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        return load_yaml(raw, f"agent config {str(file)!r}")
    except InvalidInput as exc:  # the location only: the parser's words can quote the file's content
        raise UsageError(f"cannot read {exc.message}") from None


def _hook(doc: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, Path | None, str]:
    if doc.get("exec") is not None and doc.get("signal") is not None:
        raise UsageError("agent config: give exec or signal, not both")
    command = None
    if doc.get("exec") is not None:
        argv = _mapping(doc["exec"], "agent config: exec", {"command"}).get("command")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a and "\0" not in a
                                                              for a in argv):
            raise UsageError("agent config: exec.command must be a non-empty list of strings (no NUL)")
        command = tuple(argv)
    if doc.get("signal") is None:
        return command, None, "HUP"
    sig = _mapping(doc["signal"], "agent config: signal", {"pid_file", "signal"})
    pid_file = _text(sig, "pid_file", "agent config: signal", required=True)
    name = str(sig.get("signal", "HUP")).upper().removeprefix("SIG")
    if name not in signal.Signals.__members__ and "SIG" + name not in signal.Signals.__members__:
        raise UsageError(f"agent config: unknown signal {name!r}")
    return None, Path(pid_file or ""), name


# -- rendering ------------------------------------------------------------------------------------------------
def render_template(template: str, values: Mapping[str, bytes], where: str) -> bytes:
    """Replace each `{{ key }}` with that key's bytes. Anything else inside `{{ }}` is an error, never code."""
    out, last = bytearray(), 0
    for match in [*_PLACEHOLDER.finditer(template), None]:
        literal = template[last:match.start() if match else len(template)]
        if "{{" in literal:
            raise InvalidInput(f"{where}: template has a {{{{ ... }}}} that is not a plain {{{{ key }}}}")
        out += literal.encode()
        if match is None:
            break
        name = match.group(1)
        if name not in values:
            raise InvalidInput(f"{where}: template uses {{{{ {name} }}}} but the secret has no key {name!r}")
        out += values[name]
        last = match.end()
    return bytes(out)


def render_file(spec: FileSpec, value: SecretValue) -> bytes:
    """The bytes of one file: a whole secret, one key of it, or the template filled from its keys."""
    where = f"{spec.destination}/{spec.name} ({spec.path})"
    keys = {"value": bytes(value)} if isinstance(value, bytes | bytearray) else dict(value)
    if spec.template is not None:
        return render_template(spec.template, keys, where)
    if spec.key is not None:
        if isinstance(value, bytes | bytearray) or spec.key not in value:
            raise InvalidInput(f"{where}: secret {spec.path!r} has no key {spec.key!r}")
        return bytes(value[spec.key])
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise InvalidInput(f"{where}: secret {spec.path!r} has keys; pick one with `key` or use a `template`")
