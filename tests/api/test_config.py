"""Server configuration: precedence (file < env < flags), the plain-HTTP rule, validation; token file; errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kinko.api.server import load_config
from kinko.cli.login import store_token
from kinko.client import error_from
from kinko.errors import KinkoError, Sealed, UsageError


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


def test_client_maps_error_codes_back_to_kinko_errors() -> None:
    sealed = error_from(503, {"error": {"code": "sealed", "message": "vault is sealed"}})
    assert isinstance(sealed, Sealed) and sealed.message == "vault is sealed"
    odd = error_from(418, {"error": {"code": "teapot", "message": "short and stout"}})
    assert type(odd) is KinkoError and odd.code == "teapot" and odd.http_status == 418
    assert error_from(502, None).code == "error"
