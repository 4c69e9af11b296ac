"""The kinko agent: log in, render secrets into files through the atomic writer, re-check, and run a hook on change.

Each cycle fetches every configured secret first (all or nothing), then writes each destination directory as one
atomic set (kinko.deliver.files.AtomicWriter, which rewrites nothing when nothing changed). A failed cycle leaves
the last good files in place and is retried with capped exponential backoff and jitter. Secret values and tokens
are never logged: messages name paths, keys and destinations only.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kinko.core.model import SecretValue
from kinko.deliver.agent_config import (
    DEFAULT_INTERVAL,
    DEFAULT_JWT_FILE,
    DEFAULT_MAX_BACKOFF,
    MAX_CONFIG_BYTES,
    AgentConfig,
    FileSpec,
    load_config,
    render_file,
    render_template,
)
from kinko.deliver.env import child_env
from kinko.deliver.files import AtomicWriter, FileProjection
from kinko.errors import KinkoError, PermissionDenied, UsageError

# The config and rendering names (defined in `agent_config`) stay importable from here.
__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_JWT_FILE",
    "DEFAULT_MAX_BACKOFF",
    "MAX_CONFIG_BYTES",
    "Agent",
    "AgentConfig",
    "Fetcher",
    "FileSpec",
    "backoff",
    "load_config",
    "render_file",
    "render_template",
]

log = logging.getLogger("kinko.agent")


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
