"""Named keys (Vault transit's operations) through the engine: every key type, versions and their limits,
deletion, tampering, associated data and derivation, batches, policies per key and per operation."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kinko.core.model import Caller
from kinko.errors import InvalidPath, PermissionDenied, Sealed
from kinko.vault import KEY_TYPES, TransitError, Vault
from kinko.vault.transit import KeyNotFound
from tests.conftest import FixedClock

ENCRYPTING = ["aes256-gcm96", "chacha20-poly1305", "rsa-2048"]
SIGNING = ["rsa-2048", "ecdsa-p256", "ecdsa-p384", "ed25519"]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def ok(results: list[Any]) -> dict[str, Any]:
    assert len(results) == 1 and isinstance(results[0], dict), results
    return results[0]


def error(results: list[Any]) -> str:
    assert len(results) == 1 and isinstance(results[0], TransitError), results
    return results[0].message


@pytest.mark.parametrize("key_type", ENCRYPTING)
def test_encrypt_decrypt_round_trip_with_associated_data(vault: Vault, caller: Caller, key_type: str) -> None:
    keys = vault.keys
    info = keys.create(caller, "k", key_type=key_type)
    assert (info.type, info.latest_version, info.supports_encryption) == (key_type, 1, True)
    aad = {"associated_data": b64(b"row-7")} if key_type != "rsa-2048" else {}
    sealed = ok(keys.encrypt(caller, "k", [{"plaintext": b64(b"hello"), **aad}]))
    assert sealed["ciphertext"].startswith("vault:v1:") and sealed["key_version"] == 1
    assert ok(keys.decrypt(caller, "k", [{"ciphertext": sealed["ciphertext"], **aad}]))["plaintext"] == b64(b"hello")
    if aad:
        wrong = keys.decrypt(caller, "k", [{"ciphertext": sealed["ciphertext"], "associated_data": b64(b"row-8")}])
        assert error(wrong) == "cipher: message authentication failed"


def test_every_type_is_known_and_asymmetric_keys_show_only_their_public_half(vault: Vault, caller: Caller) -> None:
    assert set(KEY_TYPES) == {*ENCRYPTING, *SIGNING, "rsa-3072", "rsa-4096"}
    ed = vault.keys.create(caller, "ed", key_type="ed25519")
    ec = vault.keys.create(caller, "ec", key_type="ecdsa-p384")
    assert ed.versions[1][1] == "ed25519" and len(base64.b64decode(ed.versions[1][2])) == 32
    assert ec.versions[1][1] == "P-384" and ec.versions[1][2].startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in repr(ed) + repr(ec)
    aes = vault.keys.create(caller, "aes")
    assert aes.versions[1][1:] == ("", "") and not aes.supports_signing


@pytest.mark.parametrize("key_type", SIGNING)
def test_sign_verify_round_trip(vault: Vault, caller: Caller, key_type: str) -> None:
    keys = vault.keys
    keys.create(caller, "s", key_type=key_type)
    signed = ok(keys.sign(caller, "s", [{"input": b64(b"message")}]))
    assert signed["signature"].startswith("vault:v1:")
    assert ok(keys.verify(caller, "s", [{"input": b64(b"message"), "signature": signed["signature"]}]))["valid"]
    assert not ok(keys.verify(caller, "s", [{"input": b64(b"massage"), "signature": signed["signature"]}]))["valid"]


@pytest.mark.parametrize(("key_type", "options"), [
    ("rsa-2048", {"signature_algorithm": "pkcs1v15", "hash_name": "sha2-512"}),
    ("rsa-2048", {"signature_algorithm": "pss", "hash_name": "sha2-384", "prehashed": True}),
    ("ecdsa-p256", {"marshaling": "jws"}),
    ("ecdsa-p256", {"prehashed": True}),
])
def test_signature_options(vault: Vault, caller: Caller, key_type: str, options: dict[str, Any]) -> None:
    import hashlib

    keys = vault.keys
    keys.create(caller, "s", key_type=key_type)
    data = b"message"
    if options.get("prehashed"):
        data = hashlib.new(options.get("hash_name", "sha2-256").replace("sha2-", "sha"), data).digest()
    signature = ok(keys.sign(caller, "s", [{"input": b64(data)}], **options))["signature"]
    assert ok(keys.verify(caller, "s", [{"input": b64(data), "signature": signature}], **options))["valid"]


def test_rotation_and_min_decryption_version_are_enforced(vault: Vault, caller: Caller) -> None:
    keys = vault.keys
    keys.create(caller, "k")
    old = ok(keys.encrypt(caller, "k", [{"plaintext": b64(b"v1 data")}]))["ciphertext"]
    assert keys.rotate(caller, "k").latest_version == 2
    new = ok(keys.encrypt(caller, "k", [{"plaintext": b64(b"v2 data")}]))
    assert new["key_version"] == 2 and new["ciphertext"].startswith("vault:v2:")
    rewrapped = ok(keys.rewrap(caller, "k", [{"ciphertext": old}]))["ciphertext"]
    assert rewrapped.startswith("vault:v2:")
    info = keys.configure(caller, "k", min_decryption_version=2)
    assert info.min_decryption_version == 2 and set(info.versions) == {2}
    assert error(keys.decrypt(caller, "k", [{"ciphertext": old}])) == (
        "ciphertext or signature version is disallowed by policy (too old)")
    assert ok(keys.decrypt(caller, "k", [{"ciphertext": rewrapped}]))["plaintext"] == b64(b"v1 data")
    assert error(keys.decrypt(caller, "k", [{"ciphertext": old.replace("v1", "v9", 1)}])) == (
        "invalid ciphertext: version is too new")
    with pytest.raises(TransitError, match="cannot set min decryption version of 5, latest key version is 2"):
        keys.configure(caller, "k", min_decryption_version=5)


def test_min_encryption_version_limits_the_versions_asked_for(vault: Vault, caller: Caller) -> None:
    keys = vault.keys
    keys.create(caller, "k")
    keys.rotate(caller, "k")
    keys.rotate(caller, "k")
    keys.configure(caller, "k", min_encryption_version=2)
    with pytest.raises(TransitError, match="less than the minimum encryption key version"):
        keys.encrypt(caller, "k", [{"plaintext": b64(b"x")}], key_version=1)
    with pytest.raises(TransitError, match="higher than the latest key version"):
        keys.encrypt(caller, "k", [{"plaintext": b64(b"x")}], key_version=4)
    assert ok(keys.encrypt(caller, "k", [{"plaintext": b64(b"x")}], key_version=2))["key_version"] == 2
    with pytest.raises(TransitError, match="must be greater than or equal to min decryption version of 3"):
        keys.configure(caller, "k", min_decryption_version=3)


def test_a_key_is_deleted_only_once_deletion_is_allowed(vault: Vault, caller: Caller) -> None:
    keys = vault.keys
    keys.create(caller, "k")
    with pytest.raises(TransitError, match="deletion is not allowed for this key"):
        keys.delete(caller, "k")
    assert keys.names(caller) == ["k"]
    keys.configure(caller, "k", deletion_allowed=True)
    keys.delete(caller, "k")
    assert keys.names(caller) == []
    with pytest.raises(KeyNotFound):
        keys.read(caller, "k")
    with pytest.raises(TransitError, match="could not delete key; not found"):
        keys.delete(caller, "k")


def test_exportable_is_one_way(vault: Vault, caller: Caller) -> None:
    keys = vault.keys
    assert not keys.create(caller, "k").exportable
    assert keys.configure(caller, "k", exportable=True).exportable
    assert keys.configure(caller, "k", exportable=False).exportable


def test_tampered_ciphertext_and_malformed_input_are_refused(vault: Vault, caller: Caller) -> None:
    keys = vault.keys
    keys.create(caller, "k")
    text = ok(keys.encrypt(caller, "k", [{"plaintext": b64(b"payload")}]))["ciphertext"]
    raw = bytearray(base64.b64decode(text.split(":", 2)[2]))
    raw[-1] ^= 1
    assert error(keys.decrypt(caller, "k", [{"ciphertext": "vault:v1:" + b64(bytes(raw))}])) == (
        "cipher: message authentication failed")
    assert error(keys.decrypt(caller, "k", [{"ciphertext": "vault:v1:" + b64(b"short")}])) == (
        "invalid ciphertext length")
    assert error(keys.decrypt(caller, "k", [{"ciphertext": "nope"}])) == "invalid ciphertext: no prefix"
    assert error(keys.decrypt(caller, "k", [{"ciphertext": "vault:vx:AAAA"}])) == (
        "invalid ciphertext: version number could not be decoded")
    assert error(keys.encrypt(caller, "k", [{"plaintext": "not base64!"}])) == "illegal base64 data at input byte 3"
    assert error(keys.encrypt(caller, "k", [{}])) == "missing plaintext to encrypt"
    # another key's ciphertext does not open: each key has its own material
    keys.create(caller, "other")
    assert error(keys.decrypt(caller, "other", [{"ciphertext": text}])) == "cipher: message authentication failed"


def test_derived_keys_need_their_context(vault: Vault, caller: Caller) -> None:
    keys = vault.keys
    keys.create(caller, "d", derived=True)
    with pytest.raises(TransitError, match="derivation is not supported"):
        keys.create(caller, "e", key_type="ed25519", derived=True)
    assert "missing 'context'" in error(keys.encrypt(caller, "d", [{"plaintext": b64(b"x")}]))
    text = ok(keys.encrypt(caller, "d", [{"plaintext": b64(b"x"), "context": b64(b"tenant-1")}]))["ciphertext"]
    assert error(keys.decrypt(caller, "d", [{"ciphertext": text, "context": b64(b"tenant-2")}])) == (
        "cipher: message authentication failed")
    assert ok(keys.decrypt(caller, "d", [{"ciphertext": text, "context": b64(b"tenant-1")}]))["plaintext"] == b64(b"x")


def test_batches_answer_per_item(vault: Vault, caller: Caller) -> None:
    keys = vault.keys
    keys.create(caller, "k")
    results = keys.encrypt(caller, "k", [{"plaintext": b64(b"a")}, {"plaintext": "!!"}, {"plaintext": ""}])
    assert isinstance(results[0], dict) and isinstance(results[2], dict)
    assert isinstance(results[1], TransitError) and results[1].message == "illegal base64 data at input byte 0"
    opened = keys.decrypt(caller, "k", [{"ciphertext": r["ciphertext"]} for r in results if isinstance(r, dict)])
    assert [r["plaintext"] for r in opened if isinstance(r, dict)] == [b64(b"a"), ""]


def test_datakey_hmac_random_and_hash(vault: Vault, caller: Caller) -> None:
    keys = vault.keys
    keys.create(caller, "k")
    both = keys.datakey(caller, "k", plaintext=True, bits=512)
    assert len(base64.b64decode(both["plaintext"])) == 64
    assert ok(keys.decrypt(caller, "k", [{"ciphertext": both["ciphertext"]}]))["plaintext"] == both["plaintext"]
    assert set(keys.datakey(caller, "k", plaintext=False)) == {"ciphertext", "key_version"}
    with pytest.raises(TransitError, match="invalid bit length"):
        keys.datakey(caller, "k", plaintext=False, bits=100)
    mac = ok(keys.hmac(caller, "k", [{"input": b64(b"data")}]))["hmac"]
    assert ok(keys.verify(caller, "k", [{"input": b64(b"data"), "hmac": mac}]))["valid"]
    assert not ok(keys.verify(caller, "k", [{"input": b64(b"date"), "hmac": mac}]))["valid"]
    assert len(keys.random(caller, 16)) == 16
    with pytest.raises(TransitError, match="cannot be less than 1"):
        keys.random(caller, 0)
    assert keys.hash(caller, b64(b"hello")).hex().startswith("2cf24dba")


def test_wrong_key_type_and_missing_keys_answer_vaults_messages(vault: Vault, caller: Caller) -> None:
    keys = vault.keys
    keys.create(caller, "aes")
    keys.create(caller, "ed", key_type="ed25519")
    with pytest.raises(TransitError, match="key type aes256-gcm96 does not support signing"):
        keys.sign(caller, "aes", [{"input": ""}])
    with pytest.raises(TransitError, match="message encryption not supported for key type ed25519"):
        keys.encrypt(caller, "ed", [{"plaintext": ""}])
    with pytest.raises(TransitError, match=r"encryption key not found$"):
        keys.decrypt(caller, "missing", [{"ciphertext": "vault:v1:AAAA"}])
    with pytest.raises(TransitError, match=r": signing key not found$"):
        keys.sign(caller, "missing", [{"input": ""}])
    with pytest.raises(TransitError, match="unknown key type nope"):
        keys.create(caller, "bad", key_type="nope")


def test_encrypt_creates_a_missing_key_only_with_create(vault: Vault, caller: Caller, clock: FixedClock) -> None:
    keys = vault.keys
    vault.write_policy(caller, {"name": "enc-only", "rules": [
        {"path": "transit/encrypt/app", "capabilities": ["update"]},
        {"path": "transit/encrypt/new", "capabilities": ["create", "update"]}]})
    token, _ = vault.create_token(caller, policies=["enc-only"])
    app = vault.authenticate(token)
    with pytest.raises(PermissionDenied):  # `app` does not exist yet: encrypting would create it
        keys.encrypt(app, "app", [{"plaintext": b64(b"x")}])
    assert ok(keys.encrypt(app, "new", [{"plaintext": b64(b"x")}]))["key_version"] == 1
    keys.create(caller, "app")
    text = ok(keys.encrypt(app, "app", [{"plaintext": b64(b"x")}]))["ciphertext"]
    for denied in (lambda: keys.decrypt(app, "app", [{"ciphertext": text}]), lambda: keys.read(app, "app"),
                   lambda: keys.rotate(app, "app"), lambda: keys.names(app), lambda: keys.random(app, 8)):
        with pytest.raises(PermissionDenied):
            denied()


def test_secret_rules_never_reach_transit_and_transit_is_no_secret_path(vault: Vault, caller: Caller) -> None:
    vault.write_policy(caller, {"name": "all-secrets", "rules": [{"path": "*", "capabilities": [
        "read", "list", "create", "update", "delete"]}]})
    token, _ = vault.create_token(caller, policies=["all-secrets"])
    who = vault.authenticate(token)
    vault.keys.create(caller, "k")
    with pytest.raises(PermissionDenied):
        vault.keys.encrypt(who, "k", [{"plaintext": ""}])
    with pytest.raises(InvalidPath, match="may not start with 'transit'"):
        vault.put(caller, "transit/encrypt/k", b"v")


def test_sealed_vault_serves_no_key_operation(vault: Vault, caller: Caller) -> None:
    vault.keys.create(caller, "k")
    vault.seal(caller)
    with pytest.raises(Sealed):
        vault.keys.encrypt(caller, "k", [{"plaintext": ""}])
    with pytest.raises(Sealed):
        vault.keys.read(caller, "k")


def test_key_material_is_sealed_in_the_store_and_hidden_from_repr(vault: Vault, caller: Caller,
                                                                 vault_path: Any) -> None:
    from kinko.vault.keys import META_PREFIX

    vault.keys.create(caller, "k")
    policy = vault.keys._load("k")[1]  # the engine's own view: the test needs the material to look for it
    assert policy is not None
    material = policy.versions[1].material
    assert material.hex() not in repr(policy) and "material" not in repr(policy)
    stored = vault._store.get_meta(META_PREFIX + "k")
    assert stored is not None and material not in stored and b"aes256" not in stored


def test_auto_rotate_period_rotates_on_the_next_use(vault: Vault, caller: Caller, clock: FixedClock) -> None:
    keys = vault.keys
    keys.create(caller, "k", auto_rotate_period=3600)
    with pytest.raises(TransitError, match="at least an hour"):
        keys.configure(caller, "k", auto_rotate_period=60)
    clock.now += 3599
    assert ok(keys.encrypt(caller, "k", [{"plaintext": ""}]))["key_version"] == 1
    clock.now += 1
    assert ok(keys.encrypt(caller, "k", [{"plaintext": ""}]))["key_version"] == 2
    assert ok(keys.hmac(caller, "k", [{"input": ""}]))["hmac"].startswith("vault:v2:")
    assert keys.read(caller, "k").latest_version == 2
    keys.configure(caller, "k", auto_rotate_period=0)
    clock.now += 86400
    assert ok(keys.encrypt(caller, "k", [{"plaintext": ""}]))["key_version"] == 2
