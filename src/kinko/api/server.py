"""Running the HTTP server: config (YAML < KINKO_* env < flags), dev mode, TLS rule, workers and shutdown.

Workers: the parent binds the listening socket, maps the shared unseal log (kinko.api.cluster), then forks
N workers that each open the vault file themselves (SQLite WAL, one connection per process) and serve the
same socket with granian (kinko.api.worker). Unseal state reaches every worker through that log (key-file
vaults also auto-unseal in each worker at start); no unwrapped key is ever written to disk. A worker that
dies is replaced, and the new one replays the same log before its first request. SIGTERM/SIGINT
to the parent is forwarded to every worker, which finishes in-flight requests and exits (graceful shutdown).
With one worker or several, a stop signal means exit 0, and a --dev vault (key file first) is deleted on
every way out. TLS files are loaded and the port bound before the dev vault exists or a banner is printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ipaddress
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kinko.config import DEFAULT_VAULT, check_storage_url, parse_duration, shown_location
from kinko.errors import InvalidInput, UsageError

if TYPE_CHECKING:
    from fastapi import APIRouter

DEFAULT_LISTEN = "127.0.0.1:8200"
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass
class ServerConfig:
    listen: str = DEFAULT_LISTEN
    vault: str = DEFAULT_VAULT
    #: A PostgreSQL URL (several servers, one vault); when set, `vault` (a SQLite file) is not used.
    storage: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    workers: int = 1
    audit_file: str | None = None
    log_level: str = "info"
    max_body_bytes: int = 2 * 1024 * 1024
    insecure_listen: bool = False
    auth_fail_limit: int = 20
    auth_fail_window: float = 60.0
    #: the kinko path the Azure Key Vault API's secret names live under ("" = the root)
    azure_prefix: str = "azure/"
    dev: bool = False
    #: set by dev mode only: the temp dir to remove at exit
    dev_dir: str | None = field(default=None, repr=False)


_FIELDS = {f.name: f for f in dataclasses.fields(ServerConfig) if f.name != "dev_dir"}
#: Settings in seconds that also take Vault-style durations ("90s", "1m").
_DURATIONS = frozenset({"auth_fail_window"})


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
        if name in _DURATIONS:
            return parse_duration(raw, option=f"server setting {name!r}")
        if kind in ("float", float):
            return float(raw)
        return None if raw is None else str(raw)
    except (TypeError, ValueError):
        raise UsageError(f"server setting {name!r} has the wrong type") from None


def load_config(file: Path | None = None, *, env: Mapping[str, str],
                overrides: Mapping[str, Any] | None = None) -> ServerConfig:
    """Defaults < YAML file < KINKO_<NAME> environment (`env`) < explicit overrides (flags that were given)."""
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
    _check_azure_prefix(config.azure_prefix)
    if config.storage is not None:
        check_storage_url(config.storage, option="storage", on_command_line=False)


def _check_azure_prefix(prefix: str) -> None:
    from kinko.api.compat.azure_shapes import check_prefix

    try:
        check_prefix(prefix)
    except InvalidInput as exc:
        raise UsageError(f"azure_prefix: {exc.message}") from None


def vault_location(config: ServerConfig) -> Path | str:
    """The vault the server serves: the storage URL when one is set, else the vault file."""
    return config.storage or Path(config.vault).expanduser()


def address(config: ServerConfig, port: int) -> str:
    host, _ = split_listen(config.listen)
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if config.tls_cert else 'http'}://{host}:{port}"


def check_tls(config: ServerConfig) -> None:
    """Load the certificate and key as the server will, before binding: a wrong file is named, not "PEM lib"."""
    if config.tls_cert is None or config.tls_key is None:
        return
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(Path(config.tls_cert).read_bytes())
    except ValueError:
        raise InvalidInput(f"--tls-cert {config.tls_cert} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(Path(config.tls_key).read_bytes(), password=None)
    except TypeError:  # encrypted: OpenSSL would stop and prompt for a passphrase on the terminal
        raise InvalidInput(f"--tls-key {config.tls_key} is encrypted; give an unencrypted PEM private key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput(f"--tls-key {config.tls_key} is not a PEM private key") from None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != certs[0].public_key().public_bytes(*spki):
        raise InvalidInput("--tls-key does not match --tls-cert")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:  # what the HTTP server will do; catches anything OpenSSL refuses that cryptography accepted
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except ssl.SSLError as exc:
        raise InvalidInput(f"--tls-cert/--tls-key cannot be used for TLS: {exc.reason}") from None


# -- dev mode -----------------------------------------------------------------------------------------------
def prepare_dev(config: ServerConfig) -> tuple[ServerConfig, str]:
    """A throwaway vault in a temp dir, initialised with a key-file seal. Returns (config, root token)."""
    from kinko.vault import SealType, open_vault

    work = tempfile.mkdtemp(prefix="kinko-dev-")
    try:  # any failure (or a stop signal) before the caller owns the dir must not leave a key file behind
        vault = open_vault(Path(work) / "vault.db", create=True)
        try:
            result = vault.init(seal=SealType.KEY_FILE, key_file=Path(work) / "unseal.key", retention_days=7)
        finally:
            vault.close()
    except BaseException:
        remove_dev_dir(work)
        raise
    dev = dataclasses.replace(config, vault=str(Path(work) / "vault.db"), storage=None, dev_dir=work)
    return dev, result.root_token


def remove_dev_dir(work: str) -> None:
    """Delete a dev vault: the unseal key first, so no moment exists where it outlives the rest by accident."""
    with contextlib.suppress(OSError):
        (Path(work) / "unseal.key").unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)


def check_audit_file(config: ServerConfig) -> None:
    """Open (create, 0600) the audit file before binding: a missing directory fails now, not after "listening"."""
    if config.audit_file:
        from kinko.vault import check_audit_path

        check_audit_path(Path(config.audit_file).expanduser())  # AuditFailed names the path


# -- the whole lifetime -------------------------------------------------------------------------------------
def run(config: ServerConfig, *, dev_banner: str | None = None, extra_routers: Sequence[APIRouter] = ()) -> None:
    """Check TLS, bind, create the dev vault (if `dev_banner`), serve; returns after a graceful stop.

    SIGTERM and SIGINT stop the server at any point, in-flight requests get up to 10 s, and the call returns
    normally (exit 0); a dev vault is deleted on every way out. `dev_banner` may use {address} and {token}.
    `extra_routers` go to every worker's app (kinko.api.app.create_app): for benchmarks, never `kinko server`.
    """
    check_tls(config)
    check_audit_file(config)
    stop = StopSignals()
    with stop.installed():
        sock = bind(config)  # before the dev vault: a busy port leaves nothing on disk
        try:
            banner = None
            if dev_banner is not None and not stop.stopping:
                config, token = prepare_dev(config)
                banner = dev_banner.replace("{token}", token)
            _serve(config, sock, stop, banner, extra_routers)
        finally:
            sock.close()
            if config.dev_dir:
                remove_dev_dir(config.dev_dir)


def _serve(config: ServerConfig, sock: socket.socket, stop: StopSignals, banner: str | None,
           extra_routers: Sequence[APIRouter]) -> None:
    from kinko.api.cluster import UnsealBroadcast
    from kinko.vault import open_vault

    if stop.stopping:
        return
    open_vault(vault_location(config), create=True).close()  # schema exists before workers race
    url = address(config, sock.getsockname()[1])
    broadcast = UnsealBroadcast()
    print(f"kinko server: vault at {shown_location(vault_location(config))}", file=sys.stderr, flush=True)
    print(f"kinko server listening on {url} ({config.workers} worker(s))", file=sys.stderr, flush=True)
    if banner:
        print(banner.replace("{address}", url), flush=True)
    from kinko.api.worker import run_worker

    worker = functools.partial(run_worker, config, sock, broadcast, extra_routers=extra_routers)
    if config.workers == 1:
        worker(stop)
    else:
        _supervise(config, worker, stop)


# -- signals ------------------------------------------------------------------------------------------------
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _ignore(_signum: int) -> None:
    return None


class StopSignals:
    """One process's SIGTERM/SIGINT handler, installed for its whole life (never the HTTP server's own).

    It only records the stop while starting (start-up code checks `stopping` at safe points: an exception
    mid-write could leave files behind); once serving, it calls `on_stop`, which asks the HTTP server to stop
    gracefully (kinko.api.worker) or forwards the stop to the workers. A stop signal always means exit 0.
    """

    def __init__(self) -> None:
        self.on_stop: Callable[[int], None] = _ignore
        self.stopping = False

    def __call__(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        self.on_stop(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        originals = {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


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
        # Operational, not a usage error (exit 1): the same command works once the port is free.
        reason = (exc.strerror or str(exc)).lower()
        raise OSError(exc.errno, f"cannot listen on {config.listen}: {reason}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _spawn(worker: Callable[[StopSignals], None]) -> int:
    """Fork one worker. Call with STOP_SIGNALS blocked, so neither side runs a handler meant for the other."""
    pid = os.fork()
    if pid == 0:  # worker: own process group, so a terminal's Ctrl-C reaches it once, via the parent
        os.setpgid(0, 0)
        stop = StopSignals()
        for sig in STOP_SIGNALS:
            signal.signal(sig, stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        code = 0
        try:
            worker(stop)
        except BaseException:
            code = 1
        os._exit(code)
    return pid


def _supervise(config: ServerConfig, worker: Callable[[StopSignals], None], stop: StopSignals) -> None:
    """Fork the workers, replace any that dies, and on SIGTERM/SIGINT stop them all and wait."""
    children: set[int] = set()

    def forward(_signum: int) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    def spawn() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:  # a stop arriving now is delivered after the child is in `children`, so it is forwarded
            if not stop.stopping:
                children.add(_spawn(worker))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    stop.on_stop = forward
    for _ in range(config.workers):
        spawn()
    while children:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stop.stopping:
            # A replacement catches up on unseal state from the shared log before its first request.
            logging.getLogger("kinko.api").warning("worker %d exited; starting a replacement", pid)
            spawn()
