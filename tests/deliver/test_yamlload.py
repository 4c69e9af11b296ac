"""Bounded YAML loading: one safe document; hostile input is InvalidInput, quickly, never another exception."""

from __future__ import annotations

import time

import pytest

from kinko.deliver.yamlload import MAX_DEPTH, load_yaml
from kinko.errors import InvalidInput


def test_a_normal_document() -> None:
    assert load_yaml("files:\n  - {path: a/b, mode: 0400}\n", "c") == {"files": [{"path": "a/b", "mode": 0o400}]}
    assert load_yaml(b"", "c") is None and load_yaml("# only a comment\n", "c") is None


# Each of these raised something other than a kinko error before (found by tests/fuzz).
@pytest.mark.parametrize(("text", "needle"), [
    ("!!timestamp x", "cannot build (AttributeError)"),
    ("!!timestamp ''", "cannot build (AttributeError)"),
    ("!!float ''", "cannot build (IndexError)"),
    ("!!int ''", "cannot build (IndexError)"),
    ("!!int +", "cannot build (IndexError)"),
    ("!!int _", "cannot build (IndexError)"),
    ("!!int 0b", "cannot build (ValueError)"),
    ("!!bool x", "cannot build (KeyError)"),
    ("- 2001-13-45", "cannot build (ValueError)"),
    ("x: " + "9" * 5000, "cannot build (ValueError)"),
    ('"\\U0011FFFF"', "cannot build (ValueError)"),
    ("[" * 5000, f"nests deeper than {MAX_DEPTH} levels"),
    ("- " * 5000 + "x", f"nests deeper than {MAX_DEPTH} levels"),
    ("a: &a [*a]", "nests deeper"),
    ("\ud800", "not valid YAML"),
    (b"\xff\xfe\xfa", "not valid YAML"),
    ("a: 1\n---\nb: 2", "not valid YAML at line 2, column 1"),
    ("!!python/object/apply:os.system [id]", "not valid YAML at line 1"),
])
def test_hostile_documents(text: str | bytes, needle: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_yaml(text, "the doc")
    assert caught.value.message.startswith("the doc ") and needle in caught.value.message


def test_depth_limit_is_exact() -> None:
    assert load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, "c") is not None
    with pytest.raises(InvalidInput, match="nests deeper"):
        load_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "c")


def test_alias_bombs_are_bounded_by_expanded_nodes() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    with pytest.raises(InvalidInput, match="more than 1000 nodes"):
        load_yaml("\n".join(lines), "c", max_nodes=1000)


@pytest.mark.parametrize("text", ["[" * 200_000, "[\n" * 100_000, "{a: " * 60_000, "- " * 100_000])
def test_deep_nesting_costs_little(text: str) -> None:
    """PyYAML's scanner is quadratic in flow depth: without the early stop this took minutes."""
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="nests deeper"):
        load_yaml(text, "c")
    assert time.monotonic() - started < 2.0
