"""The CLI in remote mode without a server: paths are checked before sending, --vault vs KINKO_ADDR, and
connection problems (refused, no scheme, no answer, CA file) each named in one line.

Remote-mode cases point KINKO_ADDR at a closed port, so a command that reached the network would fail with
`unreachable` rather than the error asserted.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinko.client import Client
from kinko.errors import ServerUnreachable
from tests.cli.conftest import error_line, run


# -- remote paths are validated before anything is sent ---------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("secret", "delete", "team/tmp/victim#x"),
    ("secret", "put", "team/app/x?version=2", "--value", "v"),
    ("secret", "put", "team/./y", "--value", "v"),
    ("secret", "put", "team/app/../x", "--value", "v"),
    ("secret", "get", "team/a b"),
    ("secret", "list", "team/../other"),
    ("secret", "list", "--deleted", "team/%2e%2e"),
    ("secret", "versions", "a//b"),
    ("secret", "recover", "a/.."),
])
def test_remote_mode_rejects_bad_paths_locally_like_local_mode(
        keyfile_env: dict[str, str], closed_addr: str, args: tuple[str, ...]) -> None:
    remote = {**keyfile_env, "KINKO_ADDR": closed_addr, "KINKO_TOKEN": "t"}
    assert error_line(run(remote, *args), "invalid_path") == error_line(run(keyfile_env, *args), "invalid_path")


# -- an explicit --vault beats KINKO_ADDR; KINKO_VAULT from the environment does not ---------------------------
def test_explicit_vault_flag_wins_over_kinko_addr(keyfile_env: dict[str, str], closed_addr: str) -> None:
    vault = keyfile_env["KINKO_VAULT"]
    remote = {**keyfile_env, "KINKO_ADDR": closed_addr, "KINKO_TOKEN": "t"}
    put = run(remote, "secret", "put", "shop/x", "--value", "local", "--vault", vault)
    assert put.exit_code == 0, put.stderr
    assert run(remote, "secret", "get", "shop/x", "--vault", vault).stdout == "local"
    status = json.loads(run(remote, "operator", "status", "-o", "json", "--vault", vault).stdout)
    assert status["seal_type"] == "keyfile"
    # KINKO_VAULT alone (from the environment) keeps meaning "the server".
    assert "connection refused" in error_line(run(remote, "secret", "get", "shop/x"), "unreachable")


# -- connection problems name their cause ----------------------------------------------------------------------
def test_connection_refused_is_one_named_line(local_env: dict[str, str], closed_addr: str) -> None:
    message = error_line(run({**local_env, "KINKO_ADDR": closed_addr}, "secret", "list"), "unreachable")
    assert message.startswith(f"cannot reach {closed_addr}: connection refused"), message


def test_address_without_scheme_says_so(local_env: dict[str, str]) -> None:
    message = error_line(run({**local_env, "KINKO_ADDR": "127.0.0.1:8743"}, "secret", "list"), "unreachable")
    assert "'127.0.0.1:8743'" in message and "http:// or https://" in message


@pytest.fixture
def silent_addr() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_timeout_says_the_server_did_not_answer(silent_addr: str) -> None:
    client = Client(silent_addr, "t", timeout=0.3)
    with pytest.raises(ServerUnreachable) as caught:
        client.request("GET", "sys/seal-status")
    assert caught.value.code == "unreachable" and "no answer in time" in caught.value.message


def test_missing_ca_file_is_named(local_env: dict[str, str], closed_addr: str) -> None:
    bad = {**local_env, "KINKO_ADDR": closed_addr, "KINKO_CACERT": "/nonexistent/ca.pem"}
    message = error_line(run(bad, "secret", "list"), "invalid_input")
    assert "'/nonexistent/ca.pem'" in message and "KINKO_CACERT" in message


def test_ca_file_that_is_not_pem_is_named(local_env: dict[str, str], closed_addr: str, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    bad = {**local_env, "KINKO_ADDR": closed_addr, "KINKO_CACERT": str(tmp_path / "ca.pem")}
    assert str(tmp_path / "ca.pem") in error_line(run(bad, "secret", "list"), "invalid_input")
