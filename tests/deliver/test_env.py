"""deliver.env: parsing NAME=path[#key], the env-file, and all-or-nothing resolution against a real vault."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.deliver.env import EnvRef, load_env_file, merge, parse_option, resolve
from kinko.errors import InvalidInput, NotFound, UsageError
from kinko.vault import Vault

CANARY = "canary-6f1d0c2e9b"


@pytest.fixture
def filled(vault: Vault, caller: Caller) -> Vault:
    vault.put(caller, "app/db", CANARY.encode())
    vault.put(caller, "app/kv", {"user": b"bob", "pass": CANARY.encode()}, content_type="Opaque")
    vault.put(caller, "app/blob", b"\xff\xfe" + CANARY.encode())
    vault.put(caller, "app/nul", CANARY.encode() + b"\0tail")
    vault.put(caller, "app/kvbin", {"bin": b"\x80" + CANARY.encode()}, content_type="Opaque")
    return vault


@pytest.mark.parametrize(("text", "ref"), [
    ("DB=app/db", EnvRef("DB", "app/db")),
    ("_x1=app/kv#user", EnvRef("_x1", "app/kv", "user")),
    ("A=app/kv#k=v", EnvRef("A", "app/kv", "k=v")),
])
def test_parse_option(text: str, ref: EnvRef) -> None:
    assert parse_option(text) == ref


@pytest.mark.parametrize("text", ["DB", "=app/db", "1A=app/db", "A-B=app/db", "A B=app/db", "A=", "A=app/db#",
                                  "A=#key", "É=app/db"])
def test_parse_option_refuses_bad_input(text: str) -> None:
    with pytest.raises(UsageError):
        parse_option(text)


def test_env_file(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text('DB_URL: "app/db"\nDB_USER: app/kv#user\n')
    assert load_env_file(path) == [EnvRef("DB_URL", "app/db"), EnvRef("DB_USER", "app/kv", "user")]
    path.write_text("")
    assert load_env_file(path) == []


@pytest.mark.parametrize("text", ["- app/db\n", "A: [1]\n", "A: 3\n", "1A: app/db\n", "A: {b: c}\n", "A: 'x\n",
                                  "? [a]\n: b\n"])
def test_env_file_refuses_bad_shapes(tmp_path: Path, text: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=r"map\.yaml"):
        load_env_file(path)


def test_env_file_missing_or_huge(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_env_file(tmp_path / "nope.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("A: " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(UsageError, match="larger than"):
        load_env_file(big)


def test_a_name_given_twice_is_refused() -> None:
    with pytest.raises(UsageError, match="DB"):
        merge([[EnvRef("DB", "a")], [EnvRef("X", "b"), EnvRef("DB", "c")]])
    assert merge([[EnvRef("A", "a")], [EnvRef("B", "b")]]) == [EnvRef("A", "a"), EnvRef("B", "b")]


def test_resolve_values_and_keys(filled: Vault, caller: Caller) -> None:
    refs = [EnvRef("DB", "app/db"), EnvRef("USER", "app/kv", "user"), EnvRef("PASS", "app/kv", "pass")]
    assert resolve(filled.session(caller), refs) == {"DB": CANARY, "USER": "bob", "PASS": CANARY}


@pytest.mark.parametrize(("ref", "error", "words"), [
    (EnvRef("X", "app/kv", "nope"), InvalidInput, "no key 'nope'"),
    (EnvRef("X", "app/kv"), InvalidInput, "has keys"),
    (EnvRef("X", "app/db", "user"), InvalidInput, "single value"),
    (EnvRef("X", "app/blob"), InvalidInput, "binary"),
    (EnvRef("X", "app/kvbin", "bin"), InvalidInput, "binary"),
    (EnvRef("X", "app/nul"), InvalidInput, "NUL"),
    (EnvRef("X", "app/missing"), NotFound, "app/missing"),
])
def test_resolve_failures_name_the_variable_never_the_value(
        filled: Vault, caller: Caller, ref: EnvRef, error: type[Exception], words: str) -> None:
    good = EnvRef("OK", "app/db")
    with pytest.raises(error) as info:
        resolve(filled.session(caller), [good, ref])  # all or nothing: the good one is not returned either
    assert words in str(info.value)
    assert CANARY not in str(info.value) and CANARY not in repr(info.value)
