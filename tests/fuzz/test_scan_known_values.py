"""Fuzz `--known-from-vault`'s matcher (kinko.scan.detect.known) with arbitrary bytes around planted values.

Properties: no exception on any input, text or binary; a stored value planted between two delimiters is always
found at its exact place, with its vault path; a candidate one byte off is never reported.
"""

from __future__ import annotations

import secrets

from hypothesis import given
from hypothesis import strategies as st

from kinko.core.fingerprints import KEY_BYTES, fingerprint
from kinko.scan.detect.known import KnownValues
from tests.fuzz.budget import fuzz

KEY = secrets.token_bytes(KEY_BYTES)
VALUE = b"Qm7tZ2vX9kLp4Rw8Xa"
KNOWN = KnownValues([fingerprint(KEY, "app/api", VALUE)], KEY)  # type: ignore[list-item]
DELIMITERS = [b" ", b"\n", b"=", b":", b'"', b"'", b",", b"(", b")", b"\x00", b"@", b"/"]


@fuzz
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    for start, end, path in KNOWN.find(data):
        assert data[start:end] == VALUE and path == "app/api"


@fuzz
@given(st.binary(max_size=512), st.binary(max_size=512), st.sampled_from(DELIMITERS), st.sampled_from(DELIMITERS))
def test_a_planted_value_is_found_at_its_place(before: bytes, after: bytes, left: bytes, right: bytes) -> None:
    data = before + left + VALUE + right + after
    start = len(before) + len(left)
    assert (start, start + len(VALUE), "app/api") in KNOWN.find(data)


@fuzz
@given(st.binary(min_size=1, max_size=1).filter(lambda b: b.isalnum()))
def test_a_longer_token_is_not_the_value(extra: bytes) -> None:
    assert KNOWN.find(b"x = " + VALUE + extra + b"\n") == []
    assert KNOWN.find(b"x = " + extra + VALUE + b"\n") == []
