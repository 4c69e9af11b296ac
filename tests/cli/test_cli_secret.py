"""`kinko secret`: value sources, output formats, exit codes, backup files, through CliRunner and real processes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.cli.conftest import error_line, kinko, one_error_line, run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {"KINKO_VAULT": str(tmp_path / "v.db")}
    result = run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"))
    assert result.exit_code == 0, result.stderr
    return env


def test_put_from_stdin_file_and_pairs(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "secret", "put", "a/stdin", "-", input=b"from-stdin").exit_code == 0
    assert run(env, "secret", "put", "a/implicit", input=b"no-dash").exit_code == 0  # stdin when no DATA
    (tmp_path / "cert.txt").write_bytes(b"from-file")
    assert run(env, "secret", "put", "a/file", f"@{tmp_path / 'cert.txt'}").exit_code == 0
    result = run(env, "secret", "put", "a/map", "user=bob", f"pass=@{tmp_path / 'cert.txt'}")
    assert result.exit_code == 0, result.stderr
    assert run(env, "secret", "get", "a/stdin").stdout == "from-stdin"
    assert run(env, "secret", "get", "a/implicit").stdout == "no-dash"
    assert run(env, "secret", "get", "a/file").stdout == "from-file"
    assert run(env, "secret", "get", "a/map").stdout == "pass=from-file\nuser=bob\n"
    assert run(env, "secret", "get", "a/map", "--key", "user").stdout == "bob"


def test_put_output_names_version_not_value(env: dict[str, str]) -> None:
    result = run(env, "secret", "put", "a/b", "-", input=b"hush-hush")
    assert result.stdout == "wrote a/b version 1\n"
    doc = json.loads(run(env, "secret", "put", "a/b", "-", "-o", "json", input=b"hush-2").stdout)
    assert doc["version"] == 2 and "hush" not in json.dumps(doc)


def test_get_json_and_version(env: dict[str, str]) -> None:
    run(env, "secret", "put", "a/b", "--value", "one")
    run(env, "secret", "put", "a/b", "-", input=b"\xff\xfe")
    doc = json.loads(run(env, "secret", "get", "a/b", "--version", "1", "-o", "json").stdout)
    assert doc["value"] == {"text": "one"} and doc["version"] == 1
    assert json.loads(run(env, "secret", "get", "a/b", "-o", "json").stdout)["value"] == {"base64": "//4="}
    assert run(env, "secret", "get", "a/b").stdout_bytes == b"\xff\xfe"


def test_list_versions_update_json(env: dict[str, str]) -> None:
    for path in ("team/app/db", "team/app/api", "team/web"):
        run(env, "secret", "put", path, "--value", "x")
    assert run(env, "secret", "list").stdout == "team/\n"
    assert run(env, "secret", "list", "team").stdout == "app/\nweb\n"
    assert json.loads(run(env, "secret", "list", "team/app", "-o", "json").stdout)["keys"] == ["api", "db"]
    result = run(env, "secret", "update", "team/web", "--disable", "--tag", "owner=ops", "-o", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["enabled"] is False
    one_error_line(run(env, "secret", "get", "team/web"), "secret_disabled")
    versions = json.loads(run(env, "secret", "versions", "team/web", "-o", "json").stdout)
    assert [(v["version"], v["tags"]) for v in versions] == [(1, {"owner": "ops"})]


def test_expired_and_not_yet_valid_through_cli(env: dict[str, str]) -> None:
    run(env, "secret", "put", "a/old", "--value", "x", "--not-before", "2001-01-01", "--expires", "2001-01-02")
    one_error_line(run(env, "secret", "get", "a/old"), "secret_expired")
    run(env, "secret", "put", "a/new", "--value", "x", "--not-before", "+30d")
    one_error_line(run(env, "secret", "get", "a/new"), "secret_not_yet_valid")


def test_delete_list_deleted_recover_purge(env: dict[str, str]) -> None:
    run(env, "secret", "put", "a/b", "--value", "v")
    assert run(env, "secret", "delete", "a/b").exit_code == 0
    one_error_line(run(env, "secret", "get", "a/b"), "not_found")
    deleted = json.loads(run(env, "secret", "list", "--deleted", "-o", "json").stdout)
    assert [d["path"] for d in deleted] == ["a/b"]
    assert run(env, "secret", "recover", "a/b").exit_code == 0
    assert run(env, "secret", "get", "a/b").stdout == "v"
    run(env, "secret", "delete", "a/b")
    assert run(env, "secret", "purge", "a/b").stdout == "purged a/b\n"
    one_error_line(run(env, "secret", "recover", "a/b"), "not_found")


def test_check_and_set_through_cli(env: dict[str, str]) -> None:
    assert run(env, "secret", "put", "a/b", "--value", "1", "--cas", "0").exit_code == 0
    one_error_line(run(env, "secret", "put", "a/b", "--value", "2", "--cas", "0"), "version_conflict")
    assert run(env, "secret", "put", "a/b", "--value", "2", "--cas", "1").exit_code == 0


def test_backup_file_is_0600_refuses_overwrite_and_restores(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "secret", "put", "a/b", "--value", "v1")
    backup = tmp_path / "a-b.backup"
    assert run(env, "secret", "backup", "a/b", "-f", str(backup)).exit_code == 0
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    content = backup.read_bytes()
    one_error_line(run(env, "secret", "backup", "a/b", "-f", str(backup)), "invalid_input")
    assert backup.read_bytes() == content
    one_error_line(run(env, "secret", "restore", str(backup)), "already_exists")
    run(env, "secret", "delete", "a/b")
    run(env, "secret", "purge", "a/b")
    assert run(env, "secret", "restore", str(backup)).exit_code == 0
    assert run(env, "secret", "get", "a/b").stdout == "v1"
    (tmp_path / "junk").write_bytes(b"kinko-backup-1:AAAA")
    one_error_line(run(env, "secret", "restore", str(tmp_path / "junk")), "invalid_input")


@pytest.mark.parametrize(("args", "code"), [
    (("put", "bad path", "--value", "x"), "invalid_path"),
    (("put", "a/../b", "--value", "x"), "invalid_path"),
    (("put", "a/b", "--value", "x", "--type", "nope"), "invalid_secret_type"),
    (("put", "a/b", "--value", "x", "--type", "kubernetes.io/tls"), "invalid_secret_type"),
    (("put", "a/b", "--value", "x", "--not-before", "+2d", "--expires", "+1d"), "invalid_input"),
    (("put", "a/b", "--value", "x", *[f"--tag=t{i}=v" for i in range(16)]), "invalid_input"),
    (("get", "no/such"), "not_found"),
    (("get", "a/b", "--key", "k"), "invalid_input"),
])
def test_failures_exit_1_with_one_line(env: dict[str, str], args: tuple[str, ...], code: str) -> None:
    run(env, "secret", "put", "a/b", "--value", "keep")
    one_error_line(run(env, "secret", *args), code)
    assert run(env, "secret", "get", "a/b").stdout == "keep"


@pytest.mark.parametrize("args", [
    ("put",),
    ("put", "a/b", "--value", "x", "extra=1"),  # --value and DATA together
    ("put", "a/b", "novalue"),  # not KEY=VALUE
    ("put", "a/b", "k=1", "k=2"),  # key twice
    ("put", "a/b", "--cas", "abc", "--value", "x"),
    ("put", "a/b", "@/definitely/not/here"),
    ("get",),
    ("frobnicate",),
])
def test_usage_errors_exit_2(env: dict[str, str], args: tuple[str, ...]) -> None:
    result = run(env, "secret", *args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    one_error_line(run(env, "secret", "get", "a/b"), "not_found")


def test_oversized_value_from_stdin(env: dict[str, str]) -> None:
    one_error_line(run(env, "secret", "put", "a/b", "-", input=b"x" * (1024 * 1024 + 1)), "too_large")


# -- put with nothing on stdin, a tag given twice, an empty listing ---------------------------------------------------
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


# -- real processes ---------------------------------------------------------------------------------------------------


def test_real_process_put_stdin_get_and_errors(env: dict[str, str]) -> None:
    put = kinko(env, "secret", "put", "team/db", "-", stdin=b"p4ss\n")
    assert put.returncode == 0 and put.stdout == b"wrote team/db version 1\n"
    got = kinko(env, "secret", "get", "team/db")
    assert got.returncode == 0 and got.stdout == b"p4ss\n" and got.stderr == b""
    bad = kinko(env, "secret", "get", "team/nothing")
    assert bad.returncode == 1 and bad.stdout == b""
    assert bad.stderr == b"error: not_found: no secret at 'team/nothing'\n"
    usage = kinko(env, "secret", "put", "team/db", "--value", "x", "k=v")
    assert usage.returncode == 2 and usage.stderr.startswith(b"error: usage: ")
