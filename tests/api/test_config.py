"""Server configuration: precedence (file < env < flags), the plain-HTTP rule, validation; the stored token file
(0600, used only for the server it was stored for); errors."""

from __future__ import annotations

import errno
import json
import socket
import stat
from pathlib import Path

import pytest

from kinko.api.server import ServerConfig, bind, check_tls, load_config, prepare_dev, remove_dev_dir
from kinko.cli.login import store_token
from kinko.client import error_from
from kinko.config import client_settings
from kinko.errors import InvalidInput, KinkoError, Sealed, UsageError
from tests.api.test_server_stop import write_tls


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    conf = tmp_path / "server.yaml"
    conf.write_text("listen: 127.0.0.1:9000\nworkers: 2\nlog_level: warning\nmax_body_bytes: 4096\n")
    config = load_config(conf, env={"KINKO_WORKERS": "3", "KINKO_LOG_LEVEL": "error"}, overrides={"workers": 4})
    assert (config.listen, config.workers, config.log_level, config.max_body_bytes) == (
        "127.0.0.1:9000", 4, "error", 4096)
    assert load_config(conf, env={}).workers == 2


def test_plain_http_refused_off_loopback_unless_forced(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="refusing plain HTTP"):
        load_config(env={}, overrides={"listen": "0.0.0.0:8200"})
    assert load_config(env={"KINKO_INSECURE_LISTEN": "true"}, overrides={"listen": "0.0.0.0:8200"}).insecure_listen
    assert load_config(env={}, overrides={"listen": "[::1]:8200"}).listen == "[::1]:8200"
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(UsageError, match="both"):
        load_config(env={}, overrides={"tls_cert": str(cert)})


def test_the_auth_failure_window_takes_seconds_or_a_duration(tmp_path: Path) -> None:
    conf = tmp_path / "server.yaml"
    conf.write_text("auth_fail_window: 2m\n")
    assert load_config(conf, env={}).auth_fail_window == 120.0
    assert load_config(conf, env={"KINKO_AUTH_FAIL_WINDOW": "90"}).auth_fail_window == 90.0
    with pytest.raises(UsageError, match=r"auth_fail_window.*1h30m"):
        load_config(env={"KINKO_AUTH_FAIL_WINDOW": "a while"})


@pytest.mark.parametrize("bad", [
    "unknown_key: 1\n", "workers: many\n", "workers: 0\n", "listen: nohostport\n", "log_level: loud\n", "- a\n",
])
def test_bad_config_files_are_usage_errors(tmp_path: Path, bad: str) -> None:
    conf = tmp_path / "bad.yaml"
    conf.write_text(bad)
    with pytest.raises(UsageError):
        load_config(conf, env={})


def test_token_file_is_created_0600_even_if_it_existed_looser(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".kinko" / "token"
    path.parent.mkdir(parents=True)
    path.write_text("old")
    path.chmod(0o644)
    store_token("kinko_s_abc", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "kinko_s_abc\n"


def test_stored_token_is_only_sent_to_the_server_it_was_stored_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KINKO_TOKEN", raising=False)
    path = tmp_path / ".kinko" / "token"
    store_token("kinko_s_" + "a" * 43, path, "http://127.0.0.1:8200")
    assert json.loads(path.read_text()) == {"addr": "http://127.0.0.1:8200", "token": "kinko_s_" + "a" * 43}
    notes: list[str] = []
    assert client_settings({"KINKO_ADDR": "http://127.0.0.1:8200/"}).token == "kinko_s_" + "a" * 43
    assert client_settings({"KINKO_ADDR": "http://10.0.0.9:8200"}, warn=notes.append).token is None
    assert "not http://10.0.0.9:8200" in notes[0] and "kinko login" in notes[0] and "a" * 43 not in notes[0]
    path.write_text("kinko_s_" + "b" * 43 + "\n")  # written by an older kinko: no address in it
    assert client_settings({"KINKO_ADDR": "http://127.0.0.1:8200"}, warn=notes.append).token is None
    assert "older format" in notes[1]


def test_client_maps_error_codes_back_to_kinko_errors() -> None:
    sealed = error_from(503, {"error": {"code": "sealed", "message": "vault is sealed"}})
    assert isinstance(sealed, Sealed) and sealed.message == "vault is sealed"
    odd = error_from(418, {"error": {"code": "teapot", "message": "short and stout"}})
    assert type(odd) is KinkoError and odd.code == "teapot" and odd.http_status == 418
    assert error_from(502, None).code == "error"


def test_tls_files_are_checked_before_serving_and_named(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    cert, key, other = write_tls(tmp_path)
    check_tls(ServerConfig(tls_cert=str(cert), tls_key=str(key)))  # the right pair passes
    check_tls(ServerConfig())  # plain HTTP: nothing to check
    (tmp_path / "junk").write_text("not pem at all")
    with pytest.raises(InvalidInput, match=r"^invalid_input: --tls-cert .*junk is not a PEM certificate$"):
        check_tls(ServerConfig(tls_cert=str(tmp_path / "junk"), tls_key=str(key)))
    locked = serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"))
    (tmp_path / "locked.key").write_bytes(locked)
    with pytest.raises(InvalidInput, match=r"locked\.key is encrypted") as caught:
        check_tls(ServerConfig(tls_cert=str(cert), tls_key=str(tmp_path / "locked.key")))
    with pytest.raises(InvalidInput, match=r"^invalid_input: --tls-key does not match --tls-cert$"):
        check_tls(ServerConfig(tls_cert=str(cert), tls_key=str(other)))
    assert "BEGIN" not in str(caught.value)


def test_busy_port_is_an_os_error_not_a_usage_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        listen = f"127.0.0.1:{busy.getsockname()[1]}"
        with pytest.raises(OSError, match=f"cannot listen on {listen}: address already in use") as caught:
            bind(ServerConfig(listen=listen))
    assert caught.value.errno == errno.EADDRINUSE
    with bind(ServerConfig(listen="127.0.0.1:0")) as sock:  # a free port works, ready to accept
        assert sock.getsockname()[1] > 0


def test_dev_vault_is_key_file_sealed_and_removed_key_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    config, token = prepare_dev(ServerConfig())
    work = Path(config.dev_dir or "")
    assert work.parent == tmp_path and token.startswith("kinko_")
    assert (work / "unseal.key").is_file() and Path(config.vault) == work / "vault.db"
    remove_dev_dir(str(work))
    assert list(tmp_path.iterdir()) == []
