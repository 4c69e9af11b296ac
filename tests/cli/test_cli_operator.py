"""`kinko operator`: init/unseal/seal/status/rotate through click's CliRunner and real `kinko` processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import error_line, kinko, one_error_line, run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"KINKO_VAULT": str(tmp_path / "v.db")}


def init_shamir(env: dict[str, str]) -> dict[str, object]:
    result = run(env, "operator", "init", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def test_init_prints_shares_and_root_token_once_and_status_never_again(env: dict[str, str]) -> None:
    doc = init_shamir(env)
    shares = doc["unseal_shares"]
    assert isinstance(shares, list) and len(shares) == 5 and doc["threshold"] == 3
    token = str(doc["root_token"])
    for args in (("operator", "status"), ("operator", "status", "-o", "json")):
        result = run(env, *args)
        assert result.exit_code == 0
        assert token not in result.output and not any(s in result.output for s in shares)
    assert json.loads(run(env, "operator", "status", "-o", "json").stdout)["sealed"] is True
    one_error_line(run(env, "operator", "init"), "already_initialized")


def test_init_text_output_shows_each_share(env: dict[str, str]) -> None:
    result = run(env, "operator", "init", "--shares", "3", "--threshold", "2")
    assert result.exit_code == 0
    assert result.stdout.count("Unseal share ") == 3 and "Initial root token: kinko_root_" in result.stdout


def test_unseal_with_shares_then_secret_commands_need_them_per_process(env: dict[str, str]) -> None:
    shares = [str(s) for s in init_shamir(env)["unseal_shares"]]  # type: ignore[attr-defined]
    result = run(env, "operator", "unseal", shares[0], shares[3], shares[4], "-o", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["sealed"] is False
    one_error_line(run(env, "secret", "list"), "sealed")  # a local vault is unsealed per process
    with_shares = {**env, "KINKO_UNSEAL_SHARES": " ".join(shares[1:4])}
    assert run(with_shares, "secret", "put", "a/b", "--value", "v").exit_code == 0
    assert run(with_shares, "secret", "get", "a/b").stdout == "v"


def test_unseal_with_too_few_or_wrong_shares_fails(env: dict[str, str], tmp_path: Path) -> None:
    shares = [str(s) for s in init_shamir(env)["unseal_shares"]]  # type: ignore[attr-defined]
    result = run(env, "operator", "unseal", shares[0])  # a local file keeps no progress between commands
    assert result.exit_code == 1 and "1 of 3 shares given" in result.stderr
    assert "give all 3 in one command" in result.stderr
    other = {"KINKO_VAULT": str(tmp_path / "other.db")}
    theirs = [str(s) for s in init_shamir(other)["unseal_shares"]]  # type: ignore[attr-defined]
    one_error_line(run(env, "operator", "unseal", shares[0], theirs[1], theirs[2]), "invalid_share")
    one_error_line(run(env, "operator", "unseal", shares[0], shares[0]), "invalid_share")


def test_keyfile_seal_blocks_auto_unseal_until_unseal(env: dict[str, str], tmp_path: Path) -> None:
    key = tmp_path / "k"
    assert run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(key)).exit_code == 0
    assert oct(key.stat().st_mode & 0o777) == "0o400"
    assert run(env, "secret", "put", "a/b", "--value", "v1").exit_code == 0
    result = run(env, "operator", "seal")
    assert result.exit_code == 0 and "sealed" in result.stdout
    status = json.loads(run(env, "operator", "status", "-o", "json").stdout)
    assert status["sealed"] is True
    sealed = run(env, "secret", "get", "a/b")
    one_error_line(sealed, "sealed")
    assert "vault is sealed" in sealed.stderr
    assert run(env, "operator", "unseal").exit_code == 0
    assert run(env, "secret", "get", "a/b").stdout == "v1"


def test_passphrase_init_and_unseal_from_env(env: dict[str, str]) -> None:
    good = {**env, "KINKO_PASSPHRASE": "correct horse battery staple"}
    result = run(good, "operator", "init", "--seal", "passphrase")
    assert result.exit_code == 0 and "Unseal share" not in result.stdout
    assert run(good, "secret", "put", "a/b", "--value", "v1").exit_code == 0
    one_error_line(run({**env, "KINKO_PASSPHRASE": "wrong horse battery staple"}, "secret", "get", "a/b"),
                   "unseal_failed")
    assert run(good, "secret", "get", "a/b").stdout == "v1"


def test_rotate_reports_new_term_and_rewrap(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"))
    run(env, "secret", "put", "a/b", "--value", "v1")
    result = run(env, "operator", "rotate", "-o", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"key_term": 2, "rewrapped": 1}
    assert json.loads(run(env, "secret", "versions", "a/b", "-o", "json").stdout)[0]["version"] == 1
    assert run(env, "secret", "get", "a/b").stdout == "v1"


@pytest.mark.parametrize("args", [
    ("--seal", "keyfile"),
    ("--retention-days", "3"),
    ("--shares", "2", "--threshold", "3"),
])
def test_bad_init_options_are_usage_errors_and_leave_no_file(env: dict[str, str], args: tuple[str, ...]) -> None:
    result = run(env, "operator", "init", *args)
    assert result.exit_code == 2 and result.stderr.startswith("error: usage: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not Path(env["KINKO_VAULT"]).exists()


def test_usage_errors_exit_2(env: dict[str, str]) -> None:
    assert run(env, "operator", "init", "--seal", "bogus").exit_code == 2
    assert run(env, "operator", "nonsense").exit_code == 2
    assert not Path(env["KINKO_VAULT"]).exists()


def test_missing_vault_is_not_found(env: dict[str, str]) -> None:
    one_error_line(run(env, "operator", "status"), "not_found")
    assert not Path(env["KINKO_VAULT"]).exists()


# -- shares piped to unseal, local status wording, init output and flags, init in remote mode -------------------------
def init_shares_2_of_3(local_env: dict[str, str]) -> list[str]:
    result = run(local_env, "operator", "init", "--shares", "3", "--threshold", "2", "-o", "json")
    assert result.exit_code == 0, result.stderr
    return [str(s) for s in json.loads(result.stdout)["unseal_shares"]]


def test_unseal_reads_shares_piped_on_stdin(local_env: dict[str, str]) -> None:
    shares = init_shares_2_of_3(local_env)
    result = run(local_env, "operator", "unseal", "-o", "json", input=f"{shares[0]}\n{shares[2]}\n")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["sealed"] is False
    partial = run(local_env, "operator", "unseal", input=shares[1] + "\n")
    assert partial.exit_code == 1 and "1 of 2 shares given" in partial.stderr  # local: no progress is kept


def test_unseal_with_nothing_given_is_a_usage_error(local_env: dict[str, str]) -> None:
    init_shares_2_of_3(local_env)
    result = run(local_env, "operator", "unseal", input="")
    assert "kinko operator unseal SHARE" in error_line(result, "usage", exit_code=2)
    assert result.stdout == ""


def test_local_status_explains_sealed_and_reports_operator_seal(local_env: dict[str, str], tmp_path: Path) -> None:
    init_shares_2_of_3(local_env)
    text = run(local_env, "operator", "status").stdout
    assert "sealed: true (each kinko process unseals a local vault for itself; operator seal: no)" in text
    assert json.loads(run(local_env, "operator", "status", "-o", "json").stdout)["operator_sealed"] is False
    other = {**local_env, "KINKO_VAULT": str(tmp_path / "k.db")}
    run(other, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "kf"))
    assert run(other, "operator", "seal").exit_code == 0
    assert json.loads(run(other, "operator", "status", "-o", "json").stdout)["operator_sealed"] is True
    assert "operator seal: yes" in run(other, "operator", "status").stdout


def test_store_shares_apart_only_when_there_are_shares(local_env: dict[str, str], tmp_path: Path) -> None:
    keyfile = run(local_env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"))
    assert keyfile.exit_code == 0 and "store the shares" not in keyfile.stdout.lower()
    passphrase = {**local_env, "KINKO_VAULT": str(tmp_path / "p.db"), "KINKO_PASSPHRASE": "a long passphrase here"}
    result = run(passphrase, "operator", "init", "--seal", "passphrase")
    assert result.exit_code == 0 and "store the shares" not in result.stdout.lower()
    result = run({**local_env, "KINKO_VAULT": str(tmp_path / "s.db")}, "operator", "init")
    assert "Store the shares apart from each other." in result.stdout


@pytest.mark.parametrize("args", [("--shares", "0"), ("--shares", "300", "--threshold", "3"),
                                  ("--retention-days", "3"), ("--retention-days", "91"), ("--seal", "keyfile")])
def test_bad_init_flags_are_one_usage_line_and_leave_no_file(local_env: dict[str, str],
                                                             args: tuple[str, ...]) -> None:
    error_line(run(local_env, "operator", "init", *args), "usage", exit_code=2)
    assert not Path(local_env["KINKO_VAULT"]).exists()


def test_remote_init_refuses_keyfile_seal(local_env: dict[str, str], closed_addr: str, tmp_path: Path) -> None:
    remote = {**local_env, "KINKO_ADDR": closed_addr}
    message = error_line(run(remote, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k")),
                         "usage", exit_code=2)
    assert "local vault only" in message and not (tmp_path / "k").exists()


# -- real processes ---------------------------------------------------------------------------------------------------


def test_real_process_init_status_seal(env: dict[str, str], tmp_path: Path) -> None:
    init = kinko(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"))
    assert init.returncode == 0 and b"kinko_root_" in init.stdout
    status = kinko(env, "operator", "status", "-o", "json")
    assert status.returncode == 0 and json.loads(status.stdout)["sealed"] is False
    assert b"kinko_root_" not in status.stdout
    assert kinko(env, "operator", "seal").returncode == 0
    refused = kinko(env, "secret", "list")
    assert refused.returncode == 1 and refused.stderr.startswith(b"error: sealed: vault is sealed")
    assert refused.stderr.count(b"\n") == 1


def test_real_process_usage_error_exit_2(env: dict[str, str]) -> None:
    result = kinko(env, "operator", "init", "--threshold", "many")
    assert result.returncode == 2 and b"Usage:" in result.stderr
    help_ = kinko(env, "--help")
    assert help_.returncode == 0 and b"operator" in help_.stdout
