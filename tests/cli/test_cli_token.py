"""`kinko token`: revoke needs an explicit target and --force for root tokens; `token create --uses` ranges.

The basic create / lookup / renew / revoke cycle is in test_cli_access.py with the policy and audit commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.conftest import keyfile_vault
from tests.cli.conftest import run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    vault, root = keyfile_vault(tmp_path)
    vault.close()
    return {"KINKO_VAULT": str(tmp_path / "vault.db"), "ROOT": root}


def _live(env: dict[str, str]) -> list[str]:
    listed = run(env, "token", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    return [t["display_name"] for t in json.loads(listed.stdout)]


def test_revoke_without_a_target_is_a_usage_error_and_revokes_nothing(env: dict[str, str]) -> None:
    token = json.loads(run(env, "token", "create", "-p", "default", "-o", "json").stdout)["token"]
    before = _live(env)
    result = run(env, "token", "revoke")
    assert result.exit_code == 2 and "exactly one of TOKEN" in result.stderr
    assert run(env, "token", "revoke", token, "--self").exit_code == 2
    assert _live(env) == before


def test_revoking_a_root_token_needs_force(env: dict[str, str]) -> None:
    root = env["ROOT"]
    refused = run(env, "token", "revoke", "-", input=root.encode())
    assert refused.exit_code == 2 and "root policy" in refused.stderr and "--force" in refused.stderr
    assert root not in refused.output
    assert "root" in _live(env)
    accessor = next(t["accessor"] for t in json.loads(run(env, "token", "list", "-o", "json").stdout)
                    if t["display_name"] == "root")
    assert run(env, "token", "revoke", "-a", accessor).exit_code == 2
    assert "root" in _live(env)
    forced = run(env, "token", "revoke", "-a", accessor, "--force")
    assert forced.exit_code == 0 and forced.stdout == "revoked 1 token\n"
    assert "root" not in _live(env)


def test_revoke_a_plain_token_by_value_needs_no_force(env: dict[str, str]) -> None:
    token = json.loads(run(env, "token", "create", "-p", "default", "--display-name", "ci", "-o",
                           "json").stdout)["token"]
    assert run(env, "token", "revoke", "-", input=token.encode()).stdout == "revoked 1 token\n"
    assert "ci" not in _live(env)


@pytest.mark.parametrize("uses", ["-1", "2147483648", "many"])
def test_token_create_uses_out_of_range_is_a_usage_error(env: dict[str, str], uses: str) -> None:
    result = run(env, "token", "create", "-p", "default", "--uses", uses)
    assert result.exit_code == 2 and "--uses" in result.stderr and "greater_than" not in result.stderr
    assert _live(env) == ["root"]


