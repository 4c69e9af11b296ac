"""Fuzz the parsers that read what an unauthenticated client can send: share text, passphrases, tokens, the
stored seal configuration. Only kinko's own errors may come out, quickly, never another exception."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinko.crypto.passphrase import Argon2Params, derive_key
from kinko.crypto.seal import SealConfig, decode_single_share
from kinko.crypto.shares import decode_share, encode_share
from kinko.errors import KinkoError
from kinko.vault import SealType, Vault, open_vault
from tests.fuzz.budget import fuzz

WEAK = Argon2Params(time_cost=1, memory_kib=64, parallelism=1)  # the KDF itself is not what is fuzzed here
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)
_SHARE_LIKE = st.builds(lambda body, tail: "kinko-share:" + body + tail,
                        st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=80),
                        st.text(".0123456789abcdefABCDEF \n", max_size=12))


@pytest.fixture(scope="module")
def shamir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vault, list[str]]]:
    vault = open_vault(tmp_path_factory.mktemp("fuzz-shamir") / "vault.db", create=True)
    shares = list(vault.init(seal=SealType.SHAMIR, shares=5, threshold=3).shares)
    yield vault, shares
    vault.close()


@fuzz
@given(st.one_of(_TEXT, _SHARE_LIKE))
def test_share_text_parses_or_is_invalid_share(text: str) -> None:
    try:
        raw = decode_share(text)
    except KinkoError:
        return
    assert encode_share(raw).removeprefix("kinko-share:").split(".")[0] in text  # only canonical text parses
    with contextlib.suppress(KinkoError):
        decode_single_share(text)


@fuzz
@given(st.one_of(_TEXT, _SHARE_LIKE, st.binary(min_size=1, max_size=64).map(lambda b: encode_share(b + b"\x01"))))
def test_unseal_with_any_share_text_keeps_progress_or_refuses_it(shamir: tuple[Vault, list[str]],
                                                                  text: str) -> None:
    vault, _ = shamir
    with contextlib.suppress(KinkoError):
        vault.unseal(share=text)
    assert vault.status().sealed  # no text but the vault's own shares ever unseals it
    vault.drop_keys()


@fuzz
@given(st.one_of(_TEXT, st.binary(max_size=100)))
def test_passphrases_derive_or_are_refused(passphrase: str | bytes) -> None:
    try:
        key = derive_key(passphrase, os.urandom(16), WEAK)
    except KinkoError:
        return
    assert len(key) == 32


@fuzz
@given(st.one_of(st.binary(max_size=300),
                 st.dictionaries(st.sampled_from(["type", "shares", "threshold", "argon2", "salt", "x"]),
                                 st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans(),
                                           st.dictionaries(st.text(max_size=12), st.integers(), max_size=5)),
                                 max_size=6).map(lambda d: json.dumps(d).encode())))
def test_a_stored_seal_configuration_parses_or_is_a_corrupt_vault(raw: bytes) -> None:
    with contextlib.suppress(KinkoError):
        SealConfig.from_bytes(raw)


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    work: Path = tmp_path_factory.mktemp("fuzz-tokens")
    vault = open_vault(work / "vault.db", create=True)
    vault.init(seal=SealType.KEY_FILE, key_file=work / "key")
    vault.unseal(key_file=work / "key")
    yield vault
    vault.close()


@fuzz
@given(st.one_of(_TEXT, st.builds(lambda tail: "kinko_s_" + tail, _TEXT),
                 st.builds(lambda tail: "kinko_root_" + tail, st.text(min_size=43, max_size=43))))
def test_any_token_text_authenticates_or_is_the_uniform_denial(keyfile: Vault, token: str) -> None:
    try:
        keyfile.authenticate(token)
    except KinkoError as exc:
        assert exc.code == "permission_denied" and exc.message == "permission denied"
        return
    raise AssertionError("a made-up token authenticated")
