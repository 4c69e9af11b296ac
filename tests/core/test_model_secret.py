"""Secret (eager and deferred info), and the payload codec the hot read slices values out of."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError

import pytest

from kinko.core.model import Attributes, Secret, VersionInfo, decode_payload, encode_payload

INFO = VersionInfo("team/app/db", 3, Attributes(tags={"env": "prod"}), 10.0, 11.0, 2)
CANARY = b"canary-value-7f3a"


def _deferred(calls: list[str]) -> Secret:
    def build(source: str) -> VersionInfo:
        calls.append(source)
        return INFO

    return Secret.deferred(build, "row", CANARY, b'{"host":"db"}')


def test_positional_construction_like_the_remote_client() -> None:
    secret = Secret(INFO, {"user": b"u"}, b'{"host":"db"}')
    assert secret.info is INFO and secret.value == {"user": b"u"} and secret.metadata == {"host": "db"}
    assert Secret(INFO, b"v").metadata_json == b"{}"


def test_deferred_info_is_built_once_on_first_access() -> None:
    calls: list[str] = []
    secret = _deferred(calls)
    assert calls == [] and secret.value == CANARY
    assert secret.info is INFO and secret.info is INFO
    assert calls == ["row"]
    assert secret.metadata == {"host": "db"}


def test_deferred_and_eager_secrets_are_equal() -> None:
    assert _deferred([]) == Secret(INFO, CANARY, b'{"host":"db"}')
    assert _deferred([]) != Secret(INFO, b"other", b'{"host":"db"}')
    assert _deferred([]) != (INFO, CANARY, b'{"host":"db"}')


@pytest.mark.parametrize("secret", [Secret(INFO, CANARY), _deferred([])], ids=["eager", "deferred"])
def test_repr_names_the_version_but_never_the_value(secret: Secret) -> None:
    text = repr(secret) + str(secret)
    assert "team/app/db" in text and "canary" not in text
    assert text.startswith("Secret(info=VersionInfo(")


@pytest.mark.parametrize("secret", [Secret(INFO, CANARY), _deferred([])], ids=["eager", "deferred"])
def test_secret_is_immutable(secret: Secret) -> None:
    for name in ("value", "info", "metadata_json", "_info", "_pending", "new"):
        with pytest.raises(FrozenInstanceError):
            setattr(secret, name, b"x")
    with pytest.raises(FrozenInstanceError):
        del secret.value
    assert secret.value == CANARY


def test_deferred_secret_pickles_with_its_info() -> None:
    restored = pickle.loads(pickle.dumps(_deferred([])))
    assert restored == Secret(INFO, CANARY, b'{"host":"db"}') and restored.info == INFO


@pytest.mark.parametrize("value", [b"", b"v", bytes(range(256)) * 4, {"a": b"1", "b": b"\x00\xff"}])
def test_payload_round_trip(value: bytes | dict[str, bytes]) -> None:
    decoded, metadata = decode_payload(encode_payload(value, {"host": "db", "n": "1"}))
    assert decoded == value and type(decoded) is type(value)
    assert metadata == b'{"host":"db","n":"1"}'


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x01\x00\x00", b"\x02\x00\x00\x00\x00v", b"v"])
def test_malformed_payload_is_a_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="unknown payload format"):
        decode_payload(blob)
