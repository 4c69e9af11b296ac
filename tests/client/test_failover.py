"""Client-side failover with real servers on 127.0.0.1: several addresses in KINKO_ADDR (and the agent's and the
CSI provider's setting); the next server is tried when a connection cannot be made or a server is sealed, never
after a 4xx and never after the request may have reached a server."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from kinko.client import Client, RemoteVault
from kinko.config import same_server, server_addresses
from kinko.crypto.seal import SealType
from kinko.errors import NotFound, PermissionDenied, Sealed, ServerUnreachable
from kinko.vault import open_vault
from tests.api.conftest import KINKO, Server, start_server, stop_server
from tests.pg import free_port


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """Two dev servers, each on a vault of its own (so a token of one is unknown to the other)."""
    started = []
    for name in ("a", "b"):
        work = tmp_path_factory.mktemp(name)
        started.append(start_server(["--dev"], work, env={"KINKO_AUTH_FAIL_LIMIT": "100000"}))
    yield started[0], started[1]
    for srv in started:
        stop_server(srv.proc)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on an initialised Shamir vault that nobody unsealed."""
    work = tmp_path_factory.mktemp("sealed")
    vault = open_vault(work / "vault.db", create=True)
    vault.init(seal=SealType.SHAMIR, shares=1, threshold=1, retention_days=7)
    vault.close()
    srv = start_server(["--vault", str(work / "vault.db")], work, expect_token=False)
    yield srv
    stop_server(srv.proc)


def _dead() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused


def test_addresses_are_split_and_compared_as_lists() -> None:
    assert server_addresses(" http://a:1/ ,,http://b:2") == ["http://a:1", "http://b:2"]
    assert same_server("http://A:1,http://b:2/", "http://a:1/, http://b:2")
    assert not same_server("http://a:1,http://b:2", "http://b:2,http://a:1")
    assert not same_server("http://a:1", "http://a:1,http://b:2")


def test_a_refused_connection_moves_to_the_next_server_and_stays_there(servers: tuple[Server, Server]) -> None:
    _, b = servers
    dead = _dead()
    with closing(RemoteVault.connect(f"{dead},{b.addr}", b.token)) as session:
        session.put("failover/x", b"one")
        assert session.client.current == b.addr
        assert session.get("failover/x").value == b"one"
    assert session.client.addr == f"{dead},{b.addr}"


def test_a_4xx_is_the_answer_never_a_reason_to_try_the_next(servers: tuple[Server, Server]) -> None:
    a, b = servers
    with closing(RemoteVault.connect(f"{b.addr},{a.addr}", b.token)) as session:
        session.put("only-on-b/x", b"v")
    # A does not know B's token (403) and has no such secret: neither answer sends the request on to B.
    with closing(RemoteVault.connect(f"{a.addr},{b.addr}", b.token)) as session, pytest.raises(PermissionDenied):
        session.get("only-on-b/x")
    with closing(RemoteVault.connect(f"{a.addr},{b.addr}", a.token)) as session, pytest.raises(NotFound):
        session.get("only-on-b/x")
    assert session.client.current == a.addr


def test_a_sealed_server_is_passed_over(servers: tuple[Server, Server], sealed: Server) -> None:
    _, b = servers
    with closing(RemoteVault.connect(f"{sealed.addr},{b.addr}", b.token)) as session:
        session.put("past-sealed/x", b"v")
        assert session.client.current == b.addr
    with closing(RemoteVault.connect(f"{b.addr},{sealed.addr}", b.token)) as session:
        assert session.get("past-sealed/x").value == b"v"
    with closing(RemoteVault.connect(sealed.addr, b.token)) as session, pytest.raises(Sealed):
        session.get("past-sealed/x")


def test_a_request_that_may_have_arrived_is_not_sent_again(servers: tuple[Server, Server]) -> None:
    """A server that accepted the connection but never answered may have acted: no second write elsewhere."""
    _, b = servers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nobody ever reads or answers
        addr = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = Client(f"{addr},{b.addr}", b.token, timeout=0.5)
        with pytest.raises(ServerUnreachable, match="no answer in time"):
            client.request("PUT", "secrets/not-twice/x", json={"value": "v"})
        client.close()
    with closing(RemoteVault.connect(b.addr, b.token)) as session, pytest.raises(NotFound):
        session.get("not-twice/x")


def test_the_cli_takes_several_addresses_and_names_every_failure(servers: tuple[Server, Server],
                                                                 tmp_path: Path) -> None:
    _, b = servers
    env = {**os.environ, "HOME": str(tmp_path), "KINKO_TOKEN": b.token}
    env["KINKO_ADDR"] = f"{_dead()},{b.addr}"
    put = subprocess.run([*KINKO, "secret", "put", "cli/x", "-"], input=b"from-cli", env=env,
                         capture_output=True, check=False)
    assert put.returncode == 0, put.stderr
    got = subprocess.run([*KINKO, "secret", "get", "cli/x"], env=env, capture_output=True, check=False)
    assert got.returncode == 0 and got.stdout.strip() == b"from-cli"
    first, second = _dead(), _dead()
    env["KINKO_ADDR"] = f"{first},{second}"
    down = subprocess.run([*KINKO, "secret", "get", "cli/x"], env=env, capture_output=True, text=True,
                          check=False)
    assert down.returncode == 1
    assert "none of the 2 servers" in down.stderr and first in down.stderr and second in down.stderr
    assert b.token not in down.stderr + down.stdout
