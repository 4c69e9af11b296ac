"""Tests for kinko.crypto.shares: Shamir split/combine over GF(2^8) and the typo-checked text form."""

from __future__ import annotations

import itertools
import os
import random
import string
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinko.crypto import shares as sh
from kinko.crypto.shares import combine, decode_share, encode_share, split
from kinko.errors import InvalidInput, InvalidShare, UnsealFailed

BOUNDED = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def split_case(draw: st.DrawFn) -> tuple[bytes, int, int, list[int]]:
    """A secret, (n, k) and a random choice of at least k share indices in random order."""
    secret = draw(st.binary(min_size=1, max_size=48))
    n = draw(st.integers(min_value=2, max_value=10))
    k = draw(st.integers(min_value=2, max_value=n))
    count = draw(st.integers(min_value=k, max_value=n))
    chosen = draw(st.permutations(range(n)))[:count]
    return secret, n, k, chosen


# --- field arithmetic: pinned to published constants, not to our own output -------------------------


def test_gf256_matches_fips197_products() -> None:
    # FIPS 197 section 4.2 worked examples for the AES field.
    assert sh._mul(0x57, 0x83) == 0xC1
    assert sh._mul(0x57, 0x13) == 0xFE


def test_gf256_inverse_is_inverse_for_every_nonzero_element() -> None:
    assert all(sh._mul(a, sh._inverse(a)) == 1 for a in range(1, 256))


# --- split / combine -------------------------------------------------------------------------------


def test_defaults_are_five_shares_threshold_three_in_vault_layout() -> None:
    secret = os.urandom(32)
    parts = split(secret)
    assert len(parts) == 5
    assert all(len(p) == len(secret) + sh.SHARE_OVERHEAD for p in parts)
    xs = [p[-1] for p in parts]
    assert 0 not in xs
    assert len(set(xs)) == 5
    for trio in itertools.combinations(parts, 3):
        assert combine(trio) == secret


@BOUNDED
@given(split_case())
def test_any_k_or_more_shares_in_any_order_reconstruct(case: tuple[bytes, int, int, list[int]]) -> None:
    secret, n, k, chosen = case
    parts = split(secret, n, k)
    assert combine([parts[i] for i in chosen]) == secret


@BOUNDED
@given(st.binary(min_size=1, max_size=32), st.integers(min_value=3, max_value=8))
def test_fewer_than_k_shares_do_not_reconstruct(prefix: bytes, k: int) -> None:
    # k-1 shares give bytes of the right length (no error) but not the secret; the 16 random bytes
    # make an accidental match a 2^-128 event.
    secret = prefix + os.urandom(16)
    parts = split(secret, k, k)
    guess = combine(parts[: k - 1])
    assert len(guess) == len(secret)
    assert guess != secret


def test_x_coordinates_are_random_not_sequential() -> None:
    # Vault draws x from a random permutation; 1..5 every time would show we fell back to indices.
    seen = {tuple(p[-1] for p in split(b"k", 5, 3)) for _ in range(20)}
    assert len(seen) > 1


def test_splitting_twice_gives_different_shares() -> None:
    secret = os.urandom(32)
    assert set(split(secret)).isdisjoint(split(secret))


@pytest.mark.parametrize("k", [2, 3])
def test_k_minus_one_shares_of_one_byte_are_uniform(k: int) -> None:
    """Statistical sanity check of secrecy: with k-1 shares, every y value (and, for k=3, every XOR of
    the two) turns up about equally often whatever the secret. Bounds are ~8 standard deviations wide,
    so a correct implementation essentially never fails; a biased polynomial (e.g. a forced non-zero top
    coefficient, which makes y == secret impossible for k=2) fails the every-value-seen check."""
    trials = 256 * 40
    counts: list[Counter[int]] = [Counter(), Counter()]
    for _ in range(trials):
        parts = split(b"\x00", k, k)[: k - 1]
        counts[0][parts[0][0]] += 1
        if k == 3:
            counts[1][parts[0][0] ^ parts[1][0]] += 1
    expected = trials / 256
    for counter in counts[: k - 1]:
        assert set(counter) == set(range(256)), "some y value never occurs: shares leak the secret"
        chi2 = sum((counter[v] - expected) ** 2 / expected for v in range(256))
        assert chi2 < 450, f"y values far from uniform (chi2={chi2:.0f}, 255 dof)"


# --- parameter and input validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "n", "k", "rule"),
    [
        (b"", 5, 3, "empty"),
        (b"s", 5, 1, "at least 2"),
        (b"s", 1, 1, "at least 2"),
        (b"s", 2, 3, "less than the threshold"),
        (b"s", 256, 3, "exceed 255"),
        (b"s", 300, 256, "exceed 255"),
    ],
)
def test_bad_split_parameters_are_rejected_naming_the_rule(secret: bytes, n: int, k: int, rule: str) -> None:
    with pytest.raises(InvalidInput, match=rule):
        split(secret, n, k)


def test_limits_are_inclusive() -> None:
    parts = split(b"\x42", 255, 2)
    assert len({p[-1] for p in parts}) == 255
    assert combine([parts[17], parts[200]]) == b"\x42"


def test_combine_rejects_fewer_than_two_shares() -> None:
    parts = split(b"secret-key", 3, 2)
    with pytest.raises(InvalidShare, match="at least two"):
        combine(parts[:1])
    with pytest.raises(InvalidShare):
        combine([])


def test_combine_rejects_shares_of_different_lengths() -> None:
    a = split(b"secret-key", 3, 2)
    b = split(b"other-secret-key", 3, 2)
    with pytest.raises(InvalidShare, match="same length"):
        combine([a[0], b[1]])


def test_combine_rejects_the_same_share_twice() -> None:
    parts = split(b"secret-key", 5, 3)
    with pytest.raises(InvalidShare, match="more than once"):
        combine([parts[0], parts[1], parts[0]])


def test_combine_rejects_too_short_and_zero_x_shares() -> None:
    with pytest.raises(InvalidShare):
        combine([b"\x01", b"\x02"])
    with pytest.raises(InvalidShare):
        combine([b"ab\x00", b"cd\x01"])


def test_invalid_share_is_an_unseal_failure_and_never_echoes_share_bytes() -> None:
    parts = split(b"top-secret-unseal-key", 5, 3)
    for bad in ([parts[0], parts[0]], [parts[0], parts[1][:-2]]):
        with pytest.raises(UnsealFailed) as info:
            combine(bad)
        text = str(info.value) + repr(info.value)
        assert all(p.hex() not in text and repr(p) not in text for p in parts)


def test_wrong_but_well_formed_shares_give_garbage_not_error() -> None:
    secret = os.urandom(32)
    mine = split(secret)
    other = split(os.urandom(32))
    # Two of mine plus a foreign share with a different x: well formed, so no error, just wrong bytes.
    foreign = next(p for p in other if p[-1] not in (mine[0][-1], mine[1][-1]))
    mixed = [mine[0], mine[1], foreign]
    assert combine(mixed) != secret


# --- text form --------------------------------------------------------------------------------------


@BOUNDED
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=255))
def test_encode_decode_round_trip(body: bytes, x: int) -> None:
    raw = body + bytes([x])
    text = encode_share(raw)
    assert text.startswith("kinko-share:")
    assert "=" not in text
    assert decode_share(text) == raw
    assert decode_share(f"  {text}\n") == raw  # pasted with surrounding whitespace


def test_text_form_is_base64url_and_hex_checksum() -> None:
    text = encode_share(b"\xfb\xff\xfe\x07")
    body, check = text.removeprefix("kinko-share:").split(".")
    assert body == "-__-Bw"
    assert len(check) == 8
    assert set(check) <= set(string.hexdigits.lower())


_B64URL = string.ascii_letters + string.digits + "-_"


@BOUNDED
@given(st.binary(min_size=2, max_size=40), st.data())
def test_every_single_character_typo_is_detected(body: bytes, data: st.DataObject) -> None:
    raw = body[:-1] + bytes([body[-1] | 1])  # non-zero x
    text = encode_share(raw)
    pos = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    replacement = data.draw(st.sampled_from(_B64URL + ".:"))
    typo = text[:pos] + replacement + text[pos + 1 :]
    if typo.lower() == text.lower():
        return  # no change, or only the case of a checksum hex digit (accepted on purpose)
    with pytest.raises(InvalidShare, match="malformed or mistyped"):
        decode_share(typo)


def test_typo_in_every_position_of_a_real_share_is_caught() -> None:
    text = encode_share(split(os.urandom(32))[0])
    rng = random.Random(1234)
    for pos in range(len(text)):
        choices = [c for c in _B64URL if c.lower() != text[pos].lower()]
        typo = text[:pos] + rng.choice(choices) + text[pos + 1 :]
        with pytest.raises(InvalidShare):
            decode_share(typo)


def test_adjacent_transposition_is_caught() -> None:
    text = encode_share(split(os.urandom(32))[0])
    start = len("kinko-share:")
    for pos in range(start, len(text) - 1):
        if text[pos] != text[pos + 1]:
            swapped = text[:pos] + text[pos + 1] + text[pos] + text[pos + 2 :]
            with pytest.raises(InvalidShare):
                decode_share(swapped)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "kinko-share:",
        "kinko-share:.",
        "vault-share:AQI.00000000",
        "kinko-share:AQI",  # no checksum
        "kinko-share:AQIé.00000000",
        "kinko-share:AQ=I.00000000",
    ],
)
def test_garbage_is_rejected_with_a_fixed_message(text: str) -> None:
    with pytest.raises(InvalidShare) as info:
        decode_share(text)
    assert info.value.message == "share is malformed or mistyped"


def test_non_canonical_base64_with_valid_checksum_is_rejected() -> None:
    # "AQJ" and "AQI" decode to the same 2 bytes (the low padding bits differ); only the canonical form
    # is a share we printed, so the other one is a typo even if someone recomputed the checksum.
    good = encode_share(b"\x01\x02")
    assert good.startswith("kinko-share:AQI.")
    forged = "kinko-share:AQJ." + sh._checksum("AQJ")
    with pytest.raises(InvalidShare):
        decode_share(forged)


def test_decoded_zero_x_share_is_rejected() -> None:
    body = "AQA"  # bytes 01 00: x coordinate 0 can never come from split
    with pytest.raises(InvalidShare):
        decode_share(f"kinko-share:{body}.{sh._checksum(body)}")


def test_full_operator_flow_text_shares_to_key() -> None:
    secret = os.urandom(32)
    texts = [encode_share(p) for p in split(secret)]
    assert combine([decode_share(t) for t in (texts[4], texts[0], texts[2])]) == secret
