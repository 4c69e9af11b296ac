"""Running the HTTP server: config (YAML < KINKO_* env < flags), dev mode, TLS rule, workers and shutdown.

Workers: the parent binds the listening socket, maps the shared unseal log (kinko.api.cluster), then forks
N workers that each open the vault file themselves (SQLite WAL, one connection per process) and serve the
same socket with uvicorn (uvloop + httptools). Unseal state reaches every worker through that log (key-file
vaults also auto-unseal in each worker at start); no unwrapped key is ever written to disk. A worker that
dies is replaced, and the new one replays the same log before its first request. SIGTERM/SIGINT
to the parent is forwarded to every worker, which finishes in-flight requests and exits (graceful shutdown).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kinko.errors import UsageError

DEFAULT_LISTEN = "127.0.0.1:8200"
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass
class ServerConfig:
    listen: str = DEFAULT_LISTEN
    vault: str = "~/.kinko/vault.db"
    tls_cert: str | None = None
    tls_key: str | None = None
    workers: int = 1
    audit_file: str | None = None
    log_level: str = "info"
    max_body_bytes: int = 2 * 1024 * 1024
    insecure_listen: bool = False
    auth_fail_limit: int = 20
    auth_fail_window: float = 60.0
    dev: bool = False
    #: set by dev mode only: the temp dir to remove at exit
    dev_dir: str | None = field(default=None, repr=False)


_FIELDS = {f.name: f for f in dataclasses.fields(ServerConfig) if f.name != "dev_dir"}


def _coerce(name: str, raw: Any) -> Any:
    kind = _FIELDS[name].type
    try:
        if "bool" in str(kind):
            if isinstance(raw, str):
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(raw)
                return raw.lower() in ("1", "true", "yes")
            return bool(raw)
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        return None if raw is None else str(raw)
    except (TypeError, ValueError):
        raise UsageError(f"server setting {name!r} has the wrong type") from None


def load_config(file: Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> ServerConfig:
    """Defaults < YAML file < KINKO_<NAME> environment < explicit overrides (flags that were given)."""
    values: dict[str, Any] = {}
    if file is not None:
        try:
            doc = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError):
            raise UsageError(f"cannot read server config {str(file)!r}") from None
        if not isinstance(doc, dict):
            raise UsageError(f"server config {str(file)!r} must be a mapping")
        unknown = sorted(set(doc) - set(_FIELDS))
        if unknown:
            raise UsageError(f"server config {str(file)!r}: unknown setting(s) {', '.join(unknown)}")
        values.update(doc)
    env = os.environ if env is None else env
    for name in _FIELDS:
        if f"KINKO_{name.upper()}" in env:
            values[name] = env[f"KINKO_{name.upper()}"]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    config = ServerConfig(**{k: _coerce(k, v) for k, v in values.items()})
    check_config(config)
    return config


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"listen address {listen!r} must be HOST:PORT")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_config(config: ServerConfig) -> None:
    host, _ = split_listen(config.listen)
    if (config.tls_cert is None) != (config.tls_key is None):
        raise UsageError("TLS needs both tls_cert and tls_key")
    for name in ("tls_cert", "tls_key"):
        value = getattr(config, name)
        if value is not None and not Path(value).is_file():
            raise UsageError(f"{name} {value!r} is not a readable file")
    if config.tls_cert is None and not is_loopback(host) and not config.insecure_listen:
        raise UsageError(f"refusing plain HTTP on non-loopback address {host!r}: give tls_cert/tls_key "
                         "or --insecure-listen")
    if not 1 <= config.workers <= 64:
        raise UsageError("workers must be between 1 and 64")
    if config.log_level not in LOG_LEVELS:
        raise UsageError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    if not 1024 <= config.max_body_bytes <= 64 * 1024 * 1024:
        raise UsageError("max_body_bytes must be between 1 KiB and 64 MiB")


def address(config: ServerConfig, port: int) -> str:
    host, _ = split_listen(config.listen)
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if config.tls_cert else 'http'}://{host}:{port}"


# -- dev mode -----------------------------------------------------------------------------------------------
def prepare_dev(config: ServerConfig) -> tuple[ServerConfig, str]:
    """A throwaway vault in a temp dir, initialised with a key-file seal. Returns (config, root token)."""
    from kinko.crypto.seal import SealType
    from kinko.vault import open_vault

    work = tempfile.mkdtemp(prefix="kinko-dev-")
    vault = open_vault(Path(work) / "vault.db", create=True)
    try:
        result = vault.init(seal=SealType.KEY_FILE, key_file=Path(work) / "unseal.key", retention_days=7)
    finally:
        vault.close()
    return dataclasses.replace(config, vault=str(Path(work) / "vault.db"), dev_dir=work), result.root_token


# -- process management ---------------------------------------------------------------------------------
def bind(config: ServerConfig) -> socket.socket:
    host, port = split_listen(config.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {config.listen}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    kinko = logging.getLogger("kinko")
    kinko.handlers[:] = [handler]
    kinko.setLevel(level.upper())
    kinko.propagate = False


def _run_worker(config: ServerConfig, sock: socket.socket, broadcast: Any) -> None:
    import uvicorn

    from kinko.api.app import create_app
    from kinko.api.auth import FailureLimiter
    from kinko.vault import open_vault

    _setup_logging(config.log_level)
    vault = open_vault(Path(config.vault).expanduser())  # auto-unseals a key-file vault
    if config.audit_file:
        vault.enable_audit(Path(config.audit_file).expanduser())  # every worker appends to one chained file
    app = create_app(vault, broadcast=broadcast, max_body=config.max_body_bytes, close_vault=True,
                     limiter=FailureLimiter(config.auth_fail_limit, config.auth_fail_window))
    uv_config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="on", access_log=False, server_header=False,
        log_level="warning" if config.log_level == "info" else config.log_level,
        ssl_certfile=config.tls_cert, ssl_keyfile=config.tls_key, timeout_graceful_shutdown=10,
    )
    uvicorn.Server(uv_config).run(sockets=[sock])


def serve(config: ServerConfig, *, banner: str | None = None) -> None:
    """Bind, fork the workers, print the banner, wait; returns after a graceful shutdown."""
    from kinko.api.cluster import UnsealBroadcast
    from kinko.vault import open_vault

    open_vault(Path(config.vault).expanduser(), create=True).close()  # schema exists before workers race
    sock = bind(config)
    url = address(config, sock.getsockname()[1])
    broadcast = UnsealBroadcast()
    print(f"kinko server listening on {url} ({config.workers} worker(s))", file=sys.stderr, flush=True)
    if banner:
        print(banner.replace("{address}", url), flush=True)
    try:
        if config.workers == 1:
            _run_worker(config, sock, broadcast)
        else:
            _supervise(config, sock, broadcast)
    finally:
        sock.close()
        if config.dev_dir:
            shutil.rmtree(config.dev_dir, ignore_errors=True)


def _spawn(config: ServerConfig, sock: socket.socket, broadcast: Any) -> int:
    pid = os.fork()
    if pid == 0:  # worker: own process group, so a terminal's Ctrl-C reaches it once, via the parent
        os.setpgid(0, 0)
        code = 0
        try:
            _run_worker(config, sock, broadcast)
        except BaseException:
            code = 1
        os._exit(code)
    return pid


def _supervise(config: ServerConfig, sock: socket.socket, broadcast: Any) -> None:
    """Fork the workers, replace any that dies, and on SIGTERM/SIGINT stop them all and wait."""
    children = {_spawn(config, sock, broadcast) for _ in range(config.workers)}
    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while children:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stopping:
            # A replacement catches up on unseal state from the shared log before its first request.
            logging.getLogger("kinko.api").warning("worker %d exited; starting a replacement", pid)
            children.add(_spawn(config, sock, broadcast))
