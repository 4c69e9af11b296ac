"""The Key Vault <-> kinko mapping on its own: names, version ids, recovery levels, content types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinko.api.compat.azure_shapes import (
    Place,
    Recovery,
    check_name,
    page,
    split_content_type,
    version_id,
    version_number,
)
from kinko.core.model import MAX_VERSION
from kinko.errors import InvalidInput, NotFound


@given(st.integers(min_value=1, max_value=MAX_VERSION))
def test_version_ids_are_32_hex_digits_and_round_trip(number: int) -> None:
    vid = version_id(number)
    assert len(vid) == 32 and vid == vid.lower() and version_number(vid) == version_number(vid.upper()) == number


def test_version_ids_that_name_no_kinko_version() -> None:
    assert version_id(1) == "00000000000000000000000000000001" and version_id(255) == "0" * 30 + "ff"
    for vid in ("0" * 32, "f" * 32, "8" + "0" * 15 + "0" * 16):
        with pytest.raises(NotFound):
            version_number(vid)
    for vid in ("1", "g" * 32, "0" * 33, "", "versions"):
        with pytest.raises(InvalidInput):
            version_number(vid)


@pytest.mark.parametrize(("days", "protected", "level"), [
    (90, False, "Recoverable+Purgeable"), (90, True, "Recoverable"),
    (7, False, "CustomizedRecoverable+Purgeable"), (30, True, "CustomizedRecoverable"),
])
def test_recovery_level_from_retention(days: int, protected: bool, level: str) -> None:
    assert Recovery(days, protected).doc() == {"recoveryLevel": level, "recoverableDays": days}


@pytest.mark.parametrize("name", ["a", "A-b-9", "-", "x" * 127])
def test_names_the_rule_accepts(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 128, "a_b", "a.b", "a/b", "a b", "é", "a\n"])
def test_names_the_rule_refuses(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_name(name)


def test_paths_map_back_to_names_only_when_they_have_one() -> None:
    place = Place("azure/", "https://h", Recovery(7, False))
    assert place.path("db") == "azure/db" and place.name("azure/db") == "db"
    assert [place.name(p) for p in ("azure/a/b", "azure/a_b", "other/db", "azure", "azure/")] == [None] * 5
    assert place.secret_id("db", 3) == "https://h/secrets/db/" + "0" * 31 + "3"
    assert Place("", "https://h", Recovery(7, False)).name("db") == "db"


def test_content_types() -> None:
    assert split_content_type(None) == ("text", None)
    assert split_content_type("api-key") == ("api-key", None)
    assert split_content_type("text") == ("text", "text")  # kept as given: it reads back the same
    assert split_content_type("application/x-pem-file") == ("text", "application/x-pem-file")


def test_paging() -> None:
    assert page(["c", "a", "b"], None, 2) == (["a", "b"], True)
    assert page(["c", "a", "b"], "b", 2) == (["c"], False)
    assert page([3, 1, 2], 1, None) == ([2, 3], False)
