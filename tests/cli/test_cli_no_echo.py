"""The CLI never echoes what may be a value: mistyped `secret put` arguments and unexpected exceptions."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kinko.cli._common import handle_errors
from tests.cli.conftest import run

CANARY = "canary-9d1f3e"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {"KINKO_VAULT": str(tmp_path / "v.db")}
    assert run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k")).exit_code == 0
    return env


@pytest.mark.parametrize(("args", "position"), [((CANARY,), 2), (("user=bob", CANARY), 3)])
def test_a_mistyped_put_argument_is_named_by_position(env: dict[str, str], args: tuple[str, ...],
                                                      position: int) -> None:
    result = run(env, "secret", "put", "a/b", *args)
    assert result.exit_code == 2
    assert f"argument {position}: expected KEY=VALUE" in result.stderr
    assert CANARY not in result.output and CANARY not in result.stderr
    assert run(env, "secret", "list", "a").stdout == ""  # nothing was stored


@click.command()
@click.option("--kind", default="decode")
@handle_errors
def broken(kind: str) -> None:
    if kind == "decode":
        (b"\xff" + CANARY.encode()).decode("utf-8")
    if kind == "click":
        raise click.BadParameter("bad --kind")
    raise ValueError(CANARY)


@pytest.mark.parametrize("kind", ["decode", "value"])
def test_an_unexpected_exception_names_only_its_type(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KINKO_DEBUG", raising=False)
    result = CliRunner().invoke(broken, ["--kind", kind])
    name = "UnicodeDecodeError" if kind == "decode" else "ValueError"
    assert result.exit_code == 1
    assert result.stderr == f"error: internal: {name} (run with KINKO_DEBUG=1 for a traceback)\n"
    assert CANARY not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception


def test_kinko_debug_re_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINKO_DEBUG", "1")
    with pytest.raises(UnicodeDecodeError):
        CliRunner().invoke(broken, [], catch_exceptions=False)


def test_click_usage_errors_still_exit_2() -> None:
    result = CliRunner().invoke(broken, ["--kind", "click"])
    assert result.exit_code == 2 and "bad --kind" in result.stderr
