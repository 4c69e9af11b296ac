"""One server worker process: open the vault, build the app and serve the shared socket with granian.

granian (a Rust HTTP server with an ASGI interface) replaced uvicorn: it parses any method token, which Vault
clients need (hvac sends `LIST`, which uvicorn's httptools parser refuses with a 400), and it serves about twice
the requests per CPU second (bench/RESULTS.md). It runs embedded in our own worker process, on the socket the
parent bound, so kinko keeps its own fork/supervise loop, unseal broadcast and signal handling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter

    from kinko.api.server import ServerConfig, StopSignals

#: How long in-flight requests get after a stop signal before the worker stops waiting for them.
GRACEFUL_STOP_SECONDS = 10


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    kinko = logging.getLogger("kinko")
    kinko.handlers[:] = [handler]
    kinko.setLevel(level.upper())
    kinko.propagate = False
    # granian's own logger says "experimental" and "spawning worker" at start: only its errors are ours to show.
    granian = logging.getLogger("_granian")
    granian.handlers[:] = [handler]
    granian.setLevel(logging.DEBUG if level == "debug" else logging.ERROR)
    granian.propagate = False


def run_worker(config: ServerConfig, sock: socket.socket, broadcast: Any, stop: StopSignals, *,
               extra_routers: Sequence[APIRouter] = ()) -> None:
    """Serve until `stop` fires; in-flight requests finish (up to GRACEFUL_STOP_SECONDS), then the vault closes."""
    import uvloop

    from kinko.api.app import create_app
    from kinko.api.auth import FailureLimiter
    from kinko.api.server import vault_location
    from kinko.vault import open_vault

    setup_logging(config.log_level)
    vault = open_vault(vault_location(config))  # auto-unseals a key-file vault
    if config.audit_file:
        vault.enable_audit(Path(config.audit_file).expanduser())  # every worker appends to one chained file
    app = create_app(vault, broadcast=broadcast, max_body=config.max_body_bytes, close_vault=True,
                     limiter=FailureLimiter(config.auth_fail_limit, config.auth_fail_window),
                     extra_routers=extra_routers, azure_prefix=config.azure_prefix)

    async def serve() -> None:
        server = _embedded_server(app, config, sock)
        loop = asyncio.get_running_loop()
        # The signal handler runs between bytecodes; call_soon_threadsafe wakes the loop out of its poll.
        def on_stop(_signum: int) -> None:
            loop.call_soon_threadsafe(server.stop)

        stop.on_stop = on_stop
        if stop.stopping:  # checked after on_stop is set, so a stop is either seen here or by the server
            return
        try:
            await server.serve()
        except TimeoutError:  # granian's wait for its worker task: requests still running after the grace time
            logging.getLogger("kinko.api").warning(
                "in-flight requests did not finish within %d s of the stop signal", GRACEFUL_STOP_SECONDS)

    try:
        uvloop.run(serve())
    finally:
        vault.close()  # idempotent: the app's lifespan closed it already after a normal stop


def _embedded_server(app: Any, config: ServerConfig, sock: socket.socket) -> Any:
    from granian._granian import SocketHolder
    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.server.embed import Server

    class SharedSocketServer(Server):
        """granian on a socket we bound (and that the other workers share), not one it binds itself."""

        def _init_shared_socket(self) -> None:
            # The holder owns (and closes) its descriptor: give it a duplicate, as the caller closes `sock`.
            # granian's stub declares no constructor; (fd, is_uds, backlog) is what its own Unix path passes.
            holder: Any = SocketHolder
            fd = os.dup(sock.fileno())
            self._ssp = None
            self._shd = holder(fd, False, sock_backlog)
            self._sfd = fd  # type: ignore[assignment]  # granian initialises it to None

    sock_backlog = 2048
    tls: dict[str, Any] = {}
    if config.tls_cert and config.tls_key:
        tls = {"ssl_cert": Path(config.tls_cert), "ssl_key": Path(config.tls_key),
               "ssl_protocol_min": SSLProtocols.tls12}
    server = SharedSocketServer(
        app, address="127.0.0.1", port=sock.getsockname()[1], interface=Interfaces.ASGI, http=HTTPModes.http1,
        websockets=False, backlog=sock_backlog, log_enabled=False, log_access=False, **tls,
    )
    server.workers_kill_timeout = GRACEFUL_STOP_SECONDS
    return server
