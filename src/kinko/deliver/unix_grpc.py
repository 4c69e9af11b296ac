"""A gRPC server on a Unix socket created 0600 (the socket is the only access control), shared by the CSI provider
and the KMS plugin; a stale socket file is replaced, a live one or a non-socket is refused."""

from __future__ import annotations

import os
import signal
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import grpc

from kinko.errors import UsageError


def listen(server: grpc.Server, socket_path: str | Path) -> Path:
    """Bind `server` to the socket (born owner-only: no window where others could connect) and start it."""
    path = Path(socket_path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    old = os.umask(0o077)
    try:
        if not server.add_insecure_port(f"unix:{path}"):
            raise UsageError(f"cannot listen on {str(path)!r} (is the path longer than 107 bytes?)")
        server.start()
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return path


def remove_stale(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise UsageError(f"{str(path)!r} exists and is not a socket; refusing to replace it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left over from a process that died: nobody answers on it
            return
    raise UsageError(f"another process is already listening on {str(path)!r}")


def stop(server: grpc.Server, grace: float = 5.0) -> Any:
    """Stop accepting calls, let running ones finish for up to `grace` seconds."""
    return server.stop(grace).wait()


def serve_until_stopped(server: grpc.Server, close: Callable[[], None]) -> None:
    """Block until SIGTERM or SIGINT, then stop `server` (in-flight calls get a grace period) and `close()`."""
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        done.wait()
    finally:
        stop(server)
        close()
