"""hvac 2.x's transit client, unchanged, against a real `kinko server --dev`: keys, encrypt/decrypt, rewrap,
datakey, sign/verify, HMAC, random and hash; audit and server log never see a plaintext or key."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import hvac
import hvac.exceptions
import pytest

from tests.api.conftest import Server

CANARY = "kinko-transit-canary-71d3"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def transit(server: Server) -> Iterator[hvac.api.secrets_engines.Transit]:
    client = hvac.Client(url=server.addr, token=server.token)
    yield client.secrets.transit
    client.adapter.close()


def test_keys_lifecycle(transit: hvac.api.secrets_engines.Transit) -> None:
    transit.create_key(name="hvac-life", key_type="aes256-gcm96")
    transit.create_key(name="hvac-life-ed", key_type="ed25519")
    assert {"hvac-life", "hvac-life-ed"} <= set(transit.list_keys()["data"]["keys"])
    read = transit.read_key(name="hvac-life")["data"]
    assert (read["type"], read["latest_version"], read["deletion_allowed"]) == ("aes256-gcm96", 1, False)
    assert transit.rotate_key(name="hvac-life")["data"]["latest_version"] == 2
    transit.update_key_configuration(name="hvac-life", min_decryption_version=2)
    assert transit.read_key(name="hvac-life")["data"]["min_decryption_version"] == 2
    with pytest.raises(hvac.exceptions.InvalidRequest, match="deletion is not allowed for this key"):
        transit.delete_key(name="hvac-life")
    transit.update_key_configuration(name="hvac-life", deletion_allowed=True)
    transit.delete_key(name="hvac-life")
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name="hvac-life")


def test_encrypt_decrypt_rewrap_and_datakey(transit: hvac.api.secrets_engines.Transit, server: Server) -> None:
    transit.create_key(name="hvac-enc")
    sealed = transit.encrypt_data(name="hvac-enc", plaintext=b64(CANARY))["data"]["ciphertext"]
    assert sealed.startswith("vault:v1:")
    assert transit.decrypt_data(name="hvac-enc", ciphertext=sealed)["data"]["plaintext"] == b64(CANARY)
    transit.rotate_key(name="hvac-enc")
    rewrapped = transit.rewrap_data(name="hvac-enc", ciphertext=sealed)["data"]["ciphertext"]
    assert rewrapped.startswith("vault:v2:")
    assert transit.decrypt_data(name="hvac-enc", ciphertext=rewrapped)["data"]["plaintext"] == b64(CANARY)
    batch = transit.encrypt_data(name="hvac-enc", batch_input=[{"plaintext": b64("a")}, {"plaintext": b64("b")}])
    opened = transit.decrypt_data(name="hvac-enc", batch_input=[
        {"ciphertext": r["ciphertext"]} for r in batch["data"]["batch_results"]])
    assert [r["plaintext"] for r in opened["data"]["batch_results"]] == [b64("a"), b64("b")]
    key = transit.generate_data_key(name="hvac-enc", key_type="plaintext", bits=256)["data"]
    assert transit.decrypt_data(name="hvac-enc", ciphertext=key["ciphertext"])["data"]["plaintext"] == key["plaintext"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="cipher: message authentication failed"):
        transit.decrypt_data(name="hvac-enc", ciphertext="vault:v2:" + "A" * 40)
    for line in (server.stderr.read_text(), *(p.read_text() for p in server.stderr.parent.glob("audit.log*"))):
        assert CANARY not in line and b64(CANARY) not in line


@pytest.mark.parametrize(("key_type", "options"), [
    ("ed25519", {}), ("ecdsa-p256", {"marshaling_algorithm": "jws"}),
    ("rsa-2048", {"signature_algorithm": "pkcs1v15", "hash_algorithm": "sha2-512"})])
def test_sign_and_verify(transit: hvac.api.secrets_engines.Transit, key_type: str, options: dict[str, str]) -> None:
    name = f"hvac-sign-{key_type}"
    transit.create_key(name=name, key_type=key_type)
    signature = transit.sign_data(name=name, hash_input=b64("message"), **options)["data"]["signature"]
    assert transit.verify_signed_data(name=name, hash_input=b64("message"), signature=signature,
                                      **options)["data"]["valid"] is True
    assert transit.verify_signed_data(name=name, hash_input=b64("massage"), signature=signature,
                                      **options)["data"]["valid"] is False


def test_hmac_random_and_hash(transit: hvac.api.secrets_engines.Transit) -> None:
    transit.create_key(name="hvac-mac")
    mac = transit.generate_hmac(name="hvac-mac", hash_input=b64("data"), algorithm="sha2-384")["data"]["hmac"]
    assert transit.verify_signed_data(name="hvac-mac", hash_input=b64("data"), hmac=mac,
                                      hash_algorithm="sha2-384")["data"]["valid"] is True
    assert len(base64.b64decode(transit.generate_random_bytes(n_bytes=24)["data"]["random_bytes"])) == 24
    assert len(transit.generate_random_bytes(n_bytes=8, output_format="hex")["data"]["random_bytes"]) == 16
    summed = transit.hash_data(hash_input=b64("hello"), algorithm="sha2-256")["data"]["sum"]
    assert summed == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
