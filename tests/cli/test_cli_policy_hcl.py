"""`kinko policy write|translate|read` with Vault HCL policies, in local mode and against a server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Server, start_server, stop_server
from tests.cli.conftest import one_error_line, run

HCL = '# the team\npath "secret/data/team/*" {\n  capabilities = ["read"]\n}\n' \
      'path "secret/metadata/team/*" {\n  capabilities = ["list"]\n}\n'


@pytest.fixture
def env(keyfile_env: dict[str, str]) -> dict[str, str]:
    return keyfile_env


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(["--dev"], tmp_path_factory.mktemp("cli-hcl"))
    yield srv
    stop_server(srv.proc)


def test_write_detects_hcl_and_read_shows_rules_and_the_text(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "team.hcl").write_text(HCL)
    assert run(env, "policy", "write", "team", str(tmp_path / "team.hcl")).stdout == "wrote policy team (1 rules)\n"
    shown = run(env, "policy", "read", "team").stdout
    assert "path: team/*" in shown and "- read" in shown and '#   path "secret/data/team/*" {' in shown
    assert run(env, "policy", "read", "team", "--hcl").stdout == HCL
    doc = json.loads(run(env, "policy", "read", "team", "--output", "json").stdout)
    assert doc["source_hcl"] == HCL and doc["rules"] == [{"path": "team/*", "capabilities": ["read", "list"]}]
    # detected by content too (no .hcl name, stdin), and --format forces it
    assert run(env, "policy", "write", "piped", "-", input=HCL.encode()).exit_code == 0
    (tmp_path / "team.txt").write_text(HCL)
    assert run(env, "policy", "write", "--name", "forced", "--format", "hcl", str(tmp_path / "team.txt")).exit_code == 0
    one_error_line(run(env, "policy", "write", "--format", "yaml", "x", str(tmp_path / "team.txt")), "invalid_input")


def test_dry_run_and_translate_print_the_rules_and_store_nothing(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "team.hcl").write_text(HCL)
    for args in (("write", "--dry-run", "team"), ("translate", "team")):
        out = run(env, "policy", *args, str(tmp_path / "team.hcl"))
        assert out.exit_code == 0 and out.stdout == "name: team\nrules:\n- path: team/*\n  capabilities:\n  - read\n" \
                                                     "  - list\n", out.stdout
    assert "team" not in run(env, "policy", "list").stdout.split()


def test_refusals_and_usage(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "pki.hcl").write_text('path "pki/issue/web" {\n  capabilities = ["update"]\n}\n')
    bad = run(env, "policy", "write", "pki", str(tmp_path / "pki.hcl"))
    one_error_line(bad, "invalid_input")
    assert "'pki' is not a KV v2 mount" in bad.stderr
    (tmp_path / "team.hcl").write_text(HCL)
    nameless = run(env, "policy", "write", str(tmp_path / "team.hcl"))
    assert nameless.exit_code == 2 and "NAME FILE" in nameless.stderr


def test_write_through_a_server_uses_its_translation(server: Server, tmp_path: Path) -> None:
    env = {"KINKO_ADDR": server.addr, "KINKO_TOKEN": server.token, "KINKO_VAULT": "", "HOME": str(tmp_path)}
    (tmp_path / "remote.hcl").write_text(HCL)
    assert run(env, "policy", "write", "remote-hcl", str(tmp_path / "remote.hcl")).exit_code == 0
    assert run(env, "policy", "read", "remote-hcl", "--hcl").stdout == HCL
