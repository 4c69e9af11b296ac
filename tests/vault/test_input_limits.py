"""Out-of-range times, version numbers and text that is not valid Unicode are refused up front, and refused writes
leave nothing behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kinko.cli import cli
from kinko.core.model import MAX_TIMESTAMP, Caller
from kinko.errors import InvalidInput
from kinko.vault import Vault
from tests.conftest import Dump, dump_db


@pytest.mark.parametrize("field", ["expires", "not_before"])
@pytest.mark.parametrize("bad", [MAX_TIMESTAMP + 1, 1e30, -1.0, float("nan"), float("inf")])
def test_times_outside_iso_range_are_refused_and_nothing_is_written(
    vault: Vault, vault_path: Path, caller: Caller, field: str, bad: float
) -> None:
    vault.put(caller, "app/x", b"v1")
    before = dump_db(vault_path)
    with pytest.raises(InvalidInput):
        vault.put(caller, "app/x", b"v2", **{field: bad})
    with pytest.raises(InvalidInput):
        vault.update_attributes(caller, "app/x", **{field: bad})
    assert dump_db(vault_path) == before
    assert [v.version for v in vault.versions(caller, "app/x")] == [1]


def test_last_representable_moment_is_accepted_and_readable(vault: Vault, caller: Caller) -> None:
    info = vault.put(caller, "app/x", b"v", expires=MAX_TIMESTAMP)
    assert info.to_dict()["expires"].startswith("9999-12-31T23:59:59")
    assert vault.versions(caller, "app/x")[0].to_dict()["expires"].startswith("9999-12-31")


@pytest.mark.parametrize("bad", [0, -1, 2**63, 10**20, True])
def test_version_numbers_outside_range_are_invalid_input(vault: Vault, caller: Caller, bad: int) -> None:
    vault.put(caller, "app/x", b"v")
    with pytest.raises(InvalidInput, match="version must be"):
        vault.get(caller, "app/x", bad)
    with pytest.raises(InvalidInput, match="version must be"):
        vault.update_attributes(caller, "app/x", bad, enabled=False)


def test_cli_gives_one_line_errors_not_tracebacks(vault: Vault, vault_path: Path, caller: Caller) -> None:
    vault.put(caller, "a/b", b"v")
    runner = CliRunner()
    for args in (["secret", "put", "a/b", "--value", "x", "--expires", "+99999999999d"],
                 ["secret", "get", "a/b", "--version", "99999999999999999999"],
                 ["secret", "update", "a/b", "--version", "99999999999999999999", "--disable"]):
        result = runner.invoke(cli, [*args[:2], "--vault", str(vault_path), *args[2:]])
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "error: invalid_input:" in result.output
    assert runner.invoke(cli, ["secret", "versions", "--vault", str(vault_path), "a/b"]).exit_code == 0


@pytest.mark.parametrize("change", [
    {"tags": {"a": "\udfff"}}, {"tags": {"\ud800": "v"}}, {"value": {"k\udc00": b"v"}},
])
def test_text_that_is_not_valid_unicode_is_refused_and_nothing_is_written(
        vault: Vault, caller: Caller, snapshot: Callable[[], Dump], change: dict[str, Any]) -> None:
    before = snapshot()
    arguments: dict[str, Any] = {"value": b"v", **change}
    with pytest.raises(InvalidInput, match="not valid Unicode") as caught:
        vault.put(caller, "uni/s", arguments.pop("value"), content_type="Opaque"
                  if isinstance(change.get("value"), dict) else "text", **arguments)
    assert "\udfff" not in caught.value.message and "\ud800" not in caught.value.message
    assert snapshot() == before


def test_token_names_and_metadata_must_be_valid_unicode(vault: Vault, caller: Caller) -> None:
    for bad in ({"display_name": "a\udfff"}, {"metadata": {"k": "\ud800"}}, {"metadata": {"\udc00": "v"}}):
        with pytest.raises(InvalidInput, match="not valid Unicode"):
            vault.create_token(caller, policies=["default"], **bad)  # type: ignore[arg-type]
