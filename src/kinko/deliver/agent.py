"""The kinko agent: log in, render secrets into files through the atomic writer, re-check, and run a hook on change.

Each cycle fetches every configured secret first (all or nothing), then writes each destination directory as one
atomic set (kinko.deliver.files.AtomicWriter, which rewrites nothing when nothing changed). A failed cycle leaves
the last good files in place and is retried with capped exponential backoff and jitter. Secret values and tokens
are never logged: messages name paths, keys and destinations only.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinko.config import ENV_ADDR, parse_duration
from kinko.core.model import SecretValue
from kinko.deliver.env import child_env
from kinko.deliver.files import AtomicWriter, FileProjection, validate_name
from kinko.deliver.modes import parse_mode, secret_mode
from kinko.deliver.yamlload import load_yaml
from kinko.errors import InvalidInput, KinkoError, PermissionDenied, UsageError

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


class Fetcher:
    """Talks to the server: logs in (token file or Kubernetes SA token) and fetches secrets, re-logging on 403."""

    def __init__(self, config: AgentConfig, clock: Callable[[], float] = time.monotonic) -> None:
        from kinko.client import RemoteVault

        self.config, self._clock = config, clock
        # No token until login: only the token file or the Kubernetes login, never the agent's own environment.
        self.session = RemoteVault.connect(config.address, None, ca_file=config.ca_file, timeout=10.0)
        self._renew_at: float | None = None  # monotonic time to log in again (None: not logged in)

    def close(self) -> None:
        self.session.close()

    def login(self) -> None:
        config = self.config
        if config.token_file is not None:
            self.session.use_token(_read_credential(config.token_file, "token_file"))
            self._renew_at = float("inf")  # a token file is re-read only when the server refuses it
            return
        assert config.k8s_role is not None
        try:
            login = self.session.login_kubernetes(config.k8s_role, _read_credential(config.jwt_file, "jwt_file"))
            self.session.use_token(login.token)
        except PermissionDenied as exc:  # the server says why only in its audit log: point the operator there
            raise PermissionDenied(
                f"kubernetes login failed for role {config.k8s_role}: {exc.message} (check the role's audience, "
                "namespace and service account; the server's audit log has the reason)") from None
        lease = float(login.lease_duration)
        # Log in again at two thirds of the lease, before the token can expire mid-cycle.
        self._renew_at = self._clock() + lease * 2 / 3 if lease > 0 else float("inf")
        log.info("logged in with Kubernetes role %s (lease %ds)", config.k8s_role, int(lease))

    def fetch(self, paths: Sequence[str]) -> dict[str, SecretValue]:
        """Every secret, or the first error (so nothing is written unless all of them resolved)."""
        if self._renew_at is None or self._clock() >= self._renew_at:
            self.login()
        try:
            return self._fetch_all(paths)
        except PermissionDenied:
            self.login()  # expired or revoked token, or a rotated token file: one fresh login, then give up
            return self._fetch_all(paths)

    def _fetch_all(self, paths: Sequence[str]) -> dict[str, SecretValue]:
        values: dict[str, SecretValue] = {}
        for path in dict.fromkeys(paths):
            try:
                values[path] = self.session.get(path).value
            except PermissionDenied as exc:  # name what was refused (never a value) so the policy can be fixed
                raise PermissionDenied(f"{exc.message} reading secret {path!r}") from None
        return values


def _read_credential(path: Path, what: str) -> str:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        raise UsageError(f"cannot read {what} {str(path)!r}") from None
    if not text:
        raise UsageError(f"{what} {str(path)!r} is empty")
    return text


class Agent:
    """One render cycle (`render_once`), the hook, and the retrying loop (`run`)."""

    def __init__(self, config: AgentConfig, fetcher: Fetcher | None = None, *,
                 environ: Mapping[str, str]) -> None:
        """`environ`: the environment the hook command inherits (minus kinko's credentials)."""
        self.config = config
        self.fetcher = fetcher or Fetcher(config)
        self._environ = environ
        self._writers: dict[Path, AtomicWriter] = {}
        self._shared_seen: dict[Path, tuple[str, ...]] = {}
        # A change written in a cycle that then failed (a later destination) still owes the hook a run.
        self._hook_due = False

    def render_once(self) -> bool:
        """Fetch everything, then write each destination atomically. True if any file changed."""
        values = self.fetcher.fetch([spec.path for spec in self.config.files])
        payloads: dict[Path, dict[str, FileProjection]] = {}
        for spec in self.config.files:
            data = render_file(spec, values[spec.path])
            payloads.setdefault(spec.destination, {})[spec.name] = FileProjection(data, spec.mode)
        changed = False
        for destination, payload in payloads.items():
            writer = self._writer(destination)
            if writer.write(payload):  # opens the destination from `/`, creating what is missing
                changed = self._hook_due = True
                log.info("rendered %d file(s) into %s", len(payload), destination)
            self._warn_shared(destination, writer.shared)
        return changed

    def _writer(self, destination: Path) -> AtomicWriter:
        writer = self._writers.get(destination)
        if writer is None:
            writer = self._writers[destination] = AtomicWriter(
                destination, shared_directories=self.config.shared_directories)
        return writer

    def _warn_shared(self, destination: Path, shared: tuple[str, ...]) -> None:
        """Once per destination and set of directories: which group/other-writable ones shared_directories let by."""
        if shared and self._shared_seen.get(destination) != shared:
            log.warning("%s: writing through directories group/other can write (%s) because shared_directories is "
                        "set", destination, ", ".join(shared))
        self._shared_seen[destination] = shared

    def run_hook(self) -> None:
        """Run the command or signal the pid after a change. A failing hook is logged, never fatal."""
        config = self.config
        if config.exec_command is not None:
            try:
                # The hook must not inherit kinko's own credentials (KINKO_TOKEN, unseal material).
                done = subprocess.run(list(config.exec_command), check=False, timeout=300,
                                      env=child_env({}, self._environ))
                log.info("hook %s exited %d", config.exec_command[0], done.returncode)
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.error("hook %s failed: %s", config.exec_command[0], type(exc).__name__)
        elif config.signal_pid_file is not None:
            sig = signal.Signals["SIG" + config.signal_name]
            try:
                pid = int(config.signal_pid_file.read_text().strip())
                os.kill(pid, sig)
                log.info("sent %s to pid %d", sig.name, pid)
            except (OSError, ValueError) as exc:
                log.error("cannot signal the pid in %s: %s", config.signal_pid_file, type(exc).__name__)

    def cycle(self) -> bool:
        """render_once + hook on change. Raises on failure (the files on disk are then the previous ones)."""
        changed = self.render_once()
        if self._hook_due:
            self._hook_due = False
            self.run_hook()
        return changed

    def run(self, stop: threading.Event) -> int:
        """Render, then re-check every interval until `stop` is set; back off on failures. Returns 0."""
        failures = 0
        while not stop.is_set():
            try:
                self.cycle()
                failures, wait = 0, self.config.interval
            except Exception as exc:  # anything (a proxy's HTML, a bug): keep the last good files and retry
                failures += 1
                wait = backoff(failures, self.config.max_backoff)
                log.error("render failed (%s); keeping the previous files; retry in %.1fs", _describe(exc), wait)
            stop.wait(wait)
        log.info("stopping")
        return 0


def backoff(failures: int, cap: float) -> float:
    """Exponential from 1 s, capped, with jitter (50-100%) so many agents do not retry in lockstep."""
    return min(cap, 2.0 ** min(failures - 1, 30)) * random.uniform(0.5, 1.0)  # noqa: S311 - not crypto


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KinkoError):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}{f' {exc.filename!r}' if exc.filename else ''}"
    return type(exc).__name__
