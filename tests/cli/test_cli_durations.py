"""Every duration and time option takes Vault's syntax (`90s`, `15m`, `1h30m`, `7d`, `+90d`) through one parser;
a bad value is a usage error (exit 2) naming the option with an example, and nothing is written."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from tests.cli.conftest import run


def test_token_ttls_take_compound_durations(keyfile_env: dict[str, str]) -> None:
    made = run(keyfile_env, "token", "create", "-p", "default", "--ttl", "1h30m", "--max-ttl", "7d", "-o", "json")
    assert made.exit_code == 0, made.stderr
    info = json.loads(made.stdout)
    assert info["ttl"] == 5400.0
    renewed = run(keyfile_env, "token", "renew", "--accessor", info["accessor"], "--increment", "45m", "-o", "json")
    assert renewed.exit_code == 0, renewed.stderr
    expires = datetime.fromisoformat(json.loads(renewed.stdout)["expires"].replace("Z", "+00:00")).timestamp()
    assert abs(expires - (time.time() + 2700)) < 60  # renewed to 45 minutes from now


@pytest.mark.parametrize(("args", "option"), [
    (["token", "create", "-p", "default", "--ttl", "1x"], "--ttl"),
    (["token", "create", "-p", "default", "--max-ttl", "0s"], "--max-ttl"),
    (["token", "renew", "--increment", "soon"], "--increment"),
    (["auth", "kubernetes", "role", "write", "r", "--sa", "a", "--namespace", "n", "--ttl", "33d"], "--ttl"),
    (["secret", "put", "a/b", "--value", "v", "--expires", "tomorrow"], "--expires"),
    (["secret", "put", "a/b", "--value", "v", "--not-before", "+1y"], "--not-before"),
])
def test_a_bad_duration_is_a_usage_error_naming_the_option(keyfile_env: dict[str, str], args: list[str],
                                                           option: str) -> None:
    result = run(keyfile_env, *args)
    assert result.exit_code == 2, result.output
    assert option in result.stderr and "Traceback" not in result.stderr
    listed = run(keyfile_env, "secret", "list")
    assert listed.exit_code == 0 and listed.stdout == ""  # nothing was written


def test_secret_times_take_iso_or_a_duration_from_now(keyfile_env: dict[str, str]) -> None:
    before = time.time()
    put = run(keyfile_env, "secret", "put", "a/b", "--value", "v", "--expires", "+1h30m", "-o", "json")
    assert put.exit_code == 0, put.stderr
    updated = run(keyfile_env, "secret", "update", "a/b", "--not-before", "2020-01-01T00:00:00Z", "-o", "json")
    assert updated.exit_code == 0, updated.stderr
    doc = json.loads(updated.stdout)
    assert doc["not_before"].startswith("2020-01-01T00:00:00") and doc["expires"] is not None
    cleared = run(keyfile_env, "secret", "update", "a/b", "--expires", "none", "-o", "json")
    assert json.loads(cleared.stdout)["expires"] is None
    bad = run(keyfile_env, "secret", "update", "a/b", "--expires", "later")
    assert bad.exit_code == 2 and "--expires" in bad.stderr and "+90d" in bad.stderr
    assert time.time() - before < 60
