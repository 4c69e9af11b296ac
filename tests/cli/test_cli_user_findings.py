"""Problems a fresh-clone user found in the CLI: usage errors, stdin, status wording, remote-mode plumbing.

Everything here runs without a server: remote-mode cases point KINKO_ADDR at a closed port, so a command
that reached the network would fail with `unreachable` rather than the error asserted.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kinko.access.audit import AuditLog
from kinko.cli import cli
from kinko.client import Client
from kinko.core.model import Caller
from kinko.errors import ServerUnreachable


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"KINKO_VAULT": str(tmp_path / "v.db"), "KINKO_ADDR": "", "HOME": str(tmp_path)}


@pytest.fixture
def keyfile_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    assert run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k")).exit_code == 0
    return env


@pytest.fixture
def closed_addr() -> str:
    """An address nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run(env: dict[str, str], *args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def error_line(result: Result, code: str, exit_code: int = 1) -> str:
    """Exactly one line `error: <code>: <message>` on stderr and the given exit status; returns the message."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), result.stderr
    assert not lines[0].startswith("error: error:")
    return lines[0].removeprefix(f"error: {code}: ")


# -- 1: remote paths are validated before anything is sent ----------------------------------------------------
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


# -- 8: an explicit --vault beats KINKO_ADDR; KINKO_VAULT from the environment does not ------------------------
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


# -- 9 / 17: connection problems name their cause -------------------------------------------------------------
def test_connection_refused_is_one_named_line(env: dict[str, str], closed_addr: str) -> None:
    message = error_line(run({**env, "KINKO_ADDR": closed_addr}, "secret", "list"), "unreachable")
    assert message.startswith(f"cannot reach {closed_addr}: connection refused"), message


def test_address_without_scheme_says_so(env: dict[str, str]) -> None:
    message = error_line(run({**env, "KINKO_ADDR": "127.0.0.1:8743"}, "secret", "list"), "unreachable")
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


def test_missing_ca_file_is_named(env: dict[str, str], closed_addr: str) -> None:
    bad = {**env, "KINKO_ADDR": closed_addr, "KINKO_CACERT": "/nonexistent/ca.pem"}
    message = error_line(run(bad, "secret", "list"), "invalid_input")
    assert "'/nonexistent/ca.pem'" in message and "KINKO_CACERT" in message


def test_ca_file_that_is_not_pem_is_named(env: dict[str, str], closed_addr: str, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    bad = {**env, "KINKO_ADDR": closed_addr, "KINKO_CACERT": str(tmp_path / "ca.pem")}
    assert str(tmp_path / "ca.pem") in error_line(run(bad, "secret", "list"), "invalid_input")


# -- 11 / 12 / 13 / 14 / 15: operator ----------------------------------------------------------------------------
def shamir(env: dict[str, str]) -> list[str]:
    result = run(env, "operator", "init", "--shares", "3", "--threshold", "2", "-o", "json")
    assert result.exit_code == 0, result.stderr
    return [str(s) for s in json.loads(result.stdout)["unseal_shares"]]


def test_unseal_reads_shares_piped_on_stdin(env: dict[str, str]) -> None:
    shares = shamir(env)
    result = run(env, "operator", "unseal", "-o", "json", input=f"{shares[0]}\n{shares[2]}\n")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["sealed"] is False
    partial = run(env, "operator", "unseal", input=shares[1] + "\n")
    assert partial.exit_code == 1 and "1 of 2 shares given" in partial.stderr  # local: no progress is kept


def test_unseal_with_nothing_given_is_a_usage_error(env: dict[str, str]) -> None:
    shamir(env)
    result = run(env, "operator", "unseal", input="")
    assert "kinko operator unseal SHARE" in error_line(result, "usage", exit_code=2)
    assert result.stdout == ""


def test_local_status_explains_sealed_and_reports_operator_seal(env: dict[str, str], tmp_path: Path) -> None:
    shamir(env)
    text = run(env, "operator", "status").stdout
    assert "sealed: true (each kinko process unseals a local vault for itself; operator seal: no)" in text
    assert json.loads(run(env, "operator", "status", "-o", "json").stdout)["operator_sealed"] is False
    other = {**env, "KINKO_VAULT": str(tmp_path / "k.db")}
    run(other, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "kf"))
    assert run(other, "operator", "seal").exit_code == 0
    assert json.loads(run(other, "operator", "status", "-o", "json").stdout)["operator_sealed"] is True
    assert "operator seal: yes" in run(other, "operator", "status").stdout


def test_store_shares_apart_only_when_there_are_shares(env: dict[str, str], tmp_path: Path) -> None:
    keyfile = run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"))
    assert keyfile.exit_code == 0 and "store the shares" not in keyfile.stdout.lower()
    passphrase = {**env, "KINKO_VAULT": str(tmp_path / "p.db"), "KINKO_PASSPHRASE": "a long passphrase here"}
    result = run(passphrase, "operator", "init", "--seal", "passphrase")
    assert result.exit_code == 0 and "store the shares" not in result.stdout.lower()
    result = run({**env, "KINKO_VAULT": str(tmp_path / "s.db")}, "operator", "init")
    assert "Store the shares apart from each other." in result.stdout


@pytest.mark.parametrize("args", [("--shares", "0"), ("--shares", "300", "--threshold", "3"),
                                  ("--retention-days", "3"), ("--retention-days", "91"), ("--seal", "keyfile")])
def test_bad_init_flags_exit_2(env: dict[str, str], args: tuple[str, ...]) -> None:
    error_line(run(env, "operator", "init", *args), "usage", exit_code=2)
    assert not Path(env["KINKO_VAULT"]).exists()


def test_remote_init_refuses_keyfile_seal(env: dict[str, str], closed_addr: str, tmp_path: Path) -> None:
    remote = {**env, "KINKO_ADDR": closed_addr}
    message = error_line(run(remote, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k")),
                         "usage", exit_code=2)
    assert "local vault only" in message and not (tmp_path / "k").exists()


# -- 7 / 25: secret put input, tags; empty listings ------------------------------------------------------------
def test_put_with_empty_implicit_stdin_is_a_usage_error(keyfile_env: dict[str, str]) -> None:
    result = run(keyfile_env, "secret", "put", "shop/x", input=b"")
    assert "no value given" in error_line(result, "usage", exit_code=2)
    error_line(run(keyfile_env, "secret", "get", "shop/x"), "not_found")
    explicit = run(keyfile_env, "secret", "put", "shop/x", "-", input=b"")  # the user asked for stdin
    assert explicit.exit_code == 0, explicit.stderr
    assert run(keyfile_env, "secret", "put", "shop/y", input=b"piped").exit_code == 0
    assert run(keyfile_env, "secret", "get", "shop/y").stdout == "piped"


def test_tag_given_twice_is_a_usage_error(keyfile_env: dict[str, str]) -> None:
    result = run(keyfile_env, "secret", "put", "shop/x", "--value", "v", "--tag", "a=1", "--tag", "a=2")
    assert "tag 'a' given twice" in error_line(result, "usage", exit_code=2)
    error_line(run(keyfile_env, "secret", "get", "shop/x"), "not_found")


def test_empty_list_prints_nothing(keyfile_env: dict[str, str]) -> None:
    result = run(keyfile_env, "secret", "list")
    assert result.exit_code == 0 and result.stdout == ""
    assert json.loads(run(keyfile_env, "secret", "list", "-o", "json").stdout) == {"prefix": "", "keys": []}
    assert run(keyfile_env, "secret", "list", "--deleted").stdout == ""


# -- 19: audit verify on a file that is not an audit log ----------------------------------------------------------
def test_audit_verify_names_a_line_that_is_not_a_record(env: dict[str, str], tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", lambda: b"s" * 32)
    log(Caller.local_operator(), "secret.get", "a/b", "allowed")
    log(Caller.local_operator(), "secret.put", "a/c", "allowed")
    log.close()
    good = (tmp_path / "audit.log").read_bytes()
    (tmp_path / "mixed.log").write_bytes(good + b"hello, not json\n")
    # --structure-only: these records were chained with a salt that is not this vault's.
    result = run(env, "audit", "verify", "--structure-only", str(tmp_path / "mixed.log"))
    assert result.exit_code == 1 and "line 3: not an audit record" in result.stdout
    (tmp_path / "notes.txt").write_text("just some notes\n")
    result = run(env, "audit", "verify", "--structure-only", str(tmp_path / "notes.txt"), "-o", "json")
    assert json.loads(result.stdout)["reason"] == "not an audit record"
    lines = good.splitlines(keepends=True)
    (tmp_path / "cut.log").write_bytes(lines[1] + lines[0])
    assert "line 1: record deleted or reordered before this line" in run(
        env, "audit", "verify", "--structure-only", str(tmp_path / "cut.log")).stdout
