"""kinko.config: the one duration parser (Vault's syntax), points in time, and how a client finds its server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinko.config import client_settings, parse_duration, parse_moment, scan_cache_dir, scan_engine, stored_token
from kinko.errors import UsageError


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("15m", 900), ("1h30m", 5400), ("7d", 604800), ("1.5h", 5400), ("500ms", 0.5),
    ("3600", 3600), ("2h45m30s", 9930), (" 1H ", 3600), (90, 90), (1.5, 1.5), ("1d12h", 129600),
])
def test_durations_take_vaults_syntax(text: str | float, seconds: float) -> None:
    assert parse_duration(text, option="--ttl") == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "1h30", "-5s", "1h-30m", "1 h", "one hour", "1e3", "5s5"])
def test_a_bad_duration_names_the_option_and_shows_an_example(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration(text, option="--max-ttl")
    assert caught.value.message.startswith("--max-ttl: ") and "1h30m" in caught.value.message


def test_durations_are_checked_against_their_bounds() -> None:
    for zero in ("0", "0s", 0):
        with pytest.raises(UsageError, match="longer than"):
            parse_duration(zero, option="interval")
    with pytest.raises(UsageError, match="maximum, 1d"):
        parse_duration("25h", option="agent config: interval", maximum=86400)
    assert parse_duration("24h", option="interval", maximum=86400) == 86400
    with pytest.raises(UsageError, match="duration"):
        parse_duration(True, option="interval")  # YAML `yes` is not a duration


def test_a_moment_is_iso_8601_or_a_duration_from_now() -> None:
    assert parse_moment("+1h30m", option="--expires", now=lambda: 1000.0) == 1000.0 + 5400
    assert parse_moment("+90d", option="--expires", now=lambda: 0.0) == 90 * 86400
    assert parse_moment("2030-01-01T00:00:00Z", option="--expires") == 1893456000.0
    assert parse_moment("2030-01-01T00:00:00", option="--expires") == 1893456000.0  # no offset: UTC
    assert parse_moment("2030-01-01T09:00:00+09:00", option="--expires") == 1893456000.0
    for bad in ("tomorrow", "+", "+1y", "2030-13-01"):
        with pytest.raises(UsageError) as caught:
            parse_moment(bad, option="--not-before")
        assert caught.value.message.startswith("--not-before: ")


def test_client_settings_come_from_the_environment_given(tmp_path: Path) -> None:
    env = {"KINKO_ADDR": "https://vault.example:8200", "KINKO_TOKEN": "kinko_s_x", "KINKO_CACERT": "/ca.pem"}
    settings = client_settings(env)
    assert (settings.addr, settings.token, settings.ca_file) == ("https://vault.example:8200", "kinko_s_x", "/ca.pem")
    assert "kinko_s_x" not in repr(settings)
    assert client_settings({}).addr is None and client_settings({}).token is None


def test_a_stored_token_is_used_only_for_the_server_it_was_stored_for(tmp_path: Path) -> None:
    path, notes = tmp_path / "token", []
    path.write_text(json.dumps({"addr": "http://127.0.0.1:8200", "token": "kinko_s_mine"}))
    assert stored_token("http://127.0.0.1:8200/", path) == "kinko_s_mine"  # trailing slash, same server
    assert stored_token("http://10.0.0.9:8200", path, warn=notes.append) is None
    assert "not http://10.0.0.9:8200" in notes[-1] and "kinko_s_mine" not in notes[-1]
    path.write_text("kinko_s_bare\n")  # an older file: no address in it
    assert stored_token("http://127.0.0.1:8200", path, warn=notes.append) is None
    assert "older format" in notes[-1]
    assert stored_token("http://127.0.0.1:8200", tmp_path / "missing") is None


def test_scan_cache_dir_follows_xdg_only_when_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert scan_cache_dir({"XDG_CACHE_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg" / "kinko"
    default = tmp_path / "home" / ".cache" / "kinko"
    assert scan_cache_dir({}) == default
    assert scan_cache_dir({"XDG_CACHE_HOME": ""}) == default
    assert scan_cache_dir({"XDG_CACHE_HOME": "relative/cache"}) == default  # the XDG spec: ignore a relative path


@pytest.mark.parametrize("value", ["0", "off", "no", "false", " OFF ", "False"])
def test_scan_cache_can_be_turned_off(value: str) -> None:
    assert scan_cache_dir({"KINKO_SCAN_CACHE": value, "XDG_CACHE_HOME": "/x"}) is None


@pytest.mark.parametrize("value", ["1", "on", "yes", "", "anything"])
def test_scan_cache_stays_on_for_other_values(value: str) -> None:
    assert scan_cache_dir({"KINKO_SCAN_CACHE": value, "XDG_CACHE_HOME": "/x"}) == Path("/x/kinko")


def test_scan_engine_is_keyword_only_when_asked() -> None:
    assert scan_engine({}) == "auto"
    assert scan_engine({"KINKO_SCAN_ENGINE": "keyword"}) == "keyword"
    assert scan_engine({"KINKO_SCAN_ENGINE": "KEYWORD"}) == "keyword"
    assert scan_engine({"KINKO_SCAN_ENGINE": "hyperscan"}) == "auto"
    assert scan_engine({"KINKO_SCAN_ENGINE": ""}) == "auto"
