"""Vault service behaviour: put/get/list/versions/attributes/delete/recover/purge/backup/restore, CAS, typed secrets."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kinko.core.model import MAX_VALUE_BYTES, Caller
from kinko.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidPath,
    InvalidSecretType,
    KinkoError,
    NotFound,
    PermissionDenied,
    PurgeProtected,
    SecretDisabled,
    SecretExpired,
    SecretNotYetValid,
    TooLarge,
    VersionConflict,
)
from kinko.vault import Vault, open_vault
from tests.conftest import DAY, ENGINES, T0, Dump, FixedClock, new_keyfile_vault, storage_for


@pytest.fixture(params=ENGINES)
def vault_storage(request: pytest.FixtureRequest) -> Path | str:
    """This module's vaults run on SQLite and on a real PostgreSQL."""
    return storage_for(request)

# -- basic operations ------------------------------------------------------------------------------------


def test_put_get_single_value_and_map(vault: Vault, caller: Caller) -> None:
    info = vault.put(caller, "team/app/db-pass", b"s3cret")
    assert (info.path, info.version) == ("team/app/db-pass", 1)
    assert vault.get(caller, "team/app/db-pass").value == b"s3cret"
    vault.put(caller, "team/app/cfg", {"user": b"bob", "pass": b"pw"}, content_type="Opaque")
    secret = vault.get(caller, "team/app/cfg")
    assert secret.value == {"user": b"bob", "pass": b"pw"}
    assert secret.info.attributes.content_type == "Opaque"


def test_versions_are_monotonic_and_old_versions_stay_readable(vault: Vault, caller: Caller) -> None:
    for i in range(1, 4):
        assert vault.put(caller, "a/b", f"v{i}".encode()).version == i
    assert vault.get(caller, "a/b").value == b"v3"
    assert vault.get(caller, "a/b", 1).value == b"v1"
    assert [v.version for v in vault.versions(caller, "a/b")] == [1, 2, 3]
    assert vault.info(caller, "a/b").current_version == 3
    with pytest.raises(NotFound):
        vault.get(caller, "a/b", 9)


def test_list_by_prefix_with_folders(vault: Vault, caller: Caller) -> None:
    for path in ("team/app/db", "team/app/api", "team/web/tls", "team/top", "other/x", "teamx/y"):
        vault.put(caller, path, b"v")
    assert vault.list(caller).keys == ("other/", "team/", "teamx/")
    assert vault.list(caller, "team").keys == ("app/", "top", "web/")
    assert vault.list(caller, "team/").keys == ("app/", "top", "web/")
    assert vault.list(caller, "team/app").keys == ("api", "db")
    assert vault.list(caller, "nothing/here").keys == ()


def test_update_attributes_changes_metadata_not_value(vault: Vault, caller: Caller, clock: FixedClock) -> None:
    vault.put(caller, "a/b", b"v1", tags={"owner": "ops"})
    clock.advance(10)
    info = vault.update_attributes(caller, "a/b", tags={"owner": "dev", "env": "prod"}, expires=T0 + DAY)
    assert info.attributes.tags == {"owner": "dev", "env": "prod"}
    assert info.updated == T0 + 10 and info.created == T0
    secret = vault.get(caller, "a/b")
    assert secret.value == b"v1" and secret.info.attributes.expires == T0 + DAY
    assert [v.version for v in vault.versions(caller, "a/b")] == [1]


def test_update_attributes_refuses_content_type_change(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "a/b", b"v1")
    with pytest.raises(InvalidInput, match="content_type"):
        vault.update_attributes(caller, "a/b", content_type="api-key")


def test_delete_list_deleted_recover(vault: Vault, caller: Caller, clock: FixedClock) -> None:
    vault.put(caller, "a/b", b"v1")
    info = vault.delete(caller, "a/b")
    assert info.deleted == T0 and info.scheduled_purge == T0 + 90 * DAY
    with pytest.raises(NotFound):
        vault.get(caller, "a/b")
    assert vault.list(caller).keys == ()
    assert [i.path for i in vault.list_deleted(caller)] == ["a/b"]
    with pytest.raises(AlreadyExists, match="deleted"):
        vault.put(caller, "a/b", b"v2")
    vault.recover(caller, "a/b")
    assert vault.get(caller, "a/b").value == b"v1"
    assert vault.list_deleted(caller) == []
    with pytest.raises(NotFound):
        vault.recover(caller, "a/b")


def test_purge_without_protection_removes_everything(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "a/b", b"v1")
    with pytest.raises(NotFound):
        vault.purge(caller, "a/b")  # only soft-deleted secrets can be purged
    vault.delete(caller, "a/b")
    vault.purge(caller, "a/b")
    assert vault.list_deleted(caller) == []
    with pytest.raises(NotFound):
        vault.recover(caller, "a/b")
    assert vault.put(caller, "a/b", b"new").version == 1


def test_purge_protection_refuses_until_retention_ends(tmp_path: Path, caller: Caller, clock: FixedClock) -> None:
    vault = new_keyfile_vault(tmp_path, clock, name="pp.db", retention_days=7, purge_protection=True)
    vault.put(caller, "a/b", b"v1")
    vault.delete(caller, "a/b")
    clock.advance(7 * DAY - 1)
    with pytest.raises(PurgeProtected) as err:
        vault.purge(caller, "a/b")
    assert "a/b" in err.value.message
    vault.recover(caller, "a/b")  # still recoverable: purge refused really kept it
    vault.delete(caller, "a/b")
    clock.advance(7 * DAY)
    vault.purge(caller, "a/b")
    assert vault.list_deleted(caller) == []
    vault.close()


# -- check-and-set and pruning -----------------------------------------------------------------------------


def test_check_and_set(vault: Vault, caller: Caller) -> None:
    assert vault.put(caller, "a/b", b"v1", cas=0).version == 1
    with pytest.raises(VersionConflict, match="version 1"):
        vault.put(caller, "a/b", b"x", cas=0)
    with pytest.raises(VersionConflict):
        vault.put(caller, "a/b", b"x", cas=5)
    assert vault.put(caller, "a/b", b"v2", cas=1).version == 2
    assert vault.get(caller, "a/b").value == b"v2"
    with pytest.raises(InvalidInput):
        vault.put(caller, "a/b", b"x", cas=-1)


def test_max_versions_prunes_oldest(vault: Vault, caller: Caller) -> None:
    for i in range(1, 6):
        vault.put(caller, "a/b", f"v{i}".encode(), max_versions=3)
    assert [v.version for v in vault.versions(caller, "a/b")] == [3, 4, 5]
    with pytest.raises(NotFound):
        vault.get(caller, "a/b", 2)
    assert vault.get(caller, "a/b", 3).value == b"v3"
    # the setting sticks for later writes that do not repeat it
    vault.put(caller, "a/b", b"v6")
    assert [v.version for v in vault.versions(caller, "a/b")] == [4, 5, 6]
    assert vault.info(caller, "a/b").max_versions == 3


# -- readability -------------------------------------------------------------------------------------------


def test_disabled_version_fails_saying_disabled(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "a/b", b"v1", enabled=False)
    with pytest.raises(SecretDisabled, match="disabled"):
        vault.get(caller, "a/b")
    vault.update_attributes(caller, "a/b", enabled=True)
    assert vault.get(caller, "a/b").value == b"v1"


def test_not_yet_valid_and_expired(vault: Vault, caller: Caller, clock: FixedClock) -> None:
    vault.put(caller, "a/b", b"v1", not_before=T0 + 100, expires=T0 + 200)
    with pytest.raises(SecretNotYetValid, match="not valid before 2030-01-01T00:01:40Z"):
        vault.get(caller, "a/b")
    clock.advance(100)
    assert vault.get(caller, "a/b").value == b"v1"
    clock.advance(100)
    with pytest.raises(SecretExpired, match="expired at 2030-01-01T00:03:20Z"):
        vault.get(caller, "a/b")
    assert SecretExpired.code != SecretNotYetValid.code != SecretDisabled.code


def test_non_root_caller_is_denied(vault: Vault) -> None:
    with pytest.raises(PermissionDenied):
        vault.put(Caller("someone"), "a/b", b"v")


# -- typed secrets -----------------------------------------------------------------------------------------


def _tls_pair() -> tuple[bytes, bytes, bytes]:
    """(cert, its key, an unrelated key) as PEM, generated at run time."""
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example")])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=90))
            .sign(key, hashes.SHA256()))

    def pem(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    return cert.public_bytes(serialization.Encoding.PEM), pem(key), pem(other)


def test_tls_secret_with_mismatched_key_fails_naming_the_key(
    vault: Vault, caller: Caller, snapshot: Callable[[], Dump]
) -> None:
    cert, key, other = _tls_pair()
    before = snapshot()
    with pytest.raises(InvalidSecretType) as err:
        vault.put(caller, "web/tls", {"tls.crt": cert, "tls.key": other}, content_type="kubernetes.io/tls")
    assert "tls.key" in err.value.message and "does not match" in err.value.message
    assert "PRIVATE KEY" not in str(err.value)
    assert snapshot() == before
    vault.put(caller, "web/tls", {"tls.crt": cert, "tls.key": key}, content_type="kubernetes.io/tls")
    assert vault.get(caller, "web/tls").metadata["content_type"] == "kubernetes.io/tls"


def test_connection_string_metadata_has_no_password(vault: Vault, caller: Caller) -> None:
    url = b"postgresql://app:Sup3rS3cretPw@db.example:5432/orders"
    vault.put(caller, "app/db", url, content_type="connection-string")
    secret = vault.get(caller, "app/db")
    assert secret.value == url
    assert secret.metadata["host"] == "db.example" and secret.metadata["has_password"] == "true"
    assert "Sup3rS3cretPw" not in repr(dict(secret.metadata))


# -- backup / restore --------------------------------------------------------------------------------------


def test_backup_restore_round_trip_with_all_versions(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "a/b", b"v1")
    vault.put(caller, "a/b", b"v2", tags={"t": "x"})
    blob = vault.backup(caller, "a/b")
    with pytest.raises(AlreadyExists):
        vault.restore(caller, blob)
    vault.delete(caller, "a/b")
    vault.purge(caller, "a/b")
    info = vault.restore(caller, blob)
    assert info.current_version == 2
    assert vault.get(caller, "a/b").value == b"v2"
    assert vault.get(caller, "a/b", 1).value == b"v1"
    assert vault.get(caller, "a/b").info.attributes.tags == {"t": "x"}


def test_backup_restore_keeps_the_kv_settings_purge_removed(vault: Vault, caller: Caller) -> None:
    """max_versions, cas_required and custom_metadata come back with the secret; a refused restore changes none."""
    vault.kv.write(caller, "secret", "app/kv", {"token": "t0k3n-value"}, None)
    vault.kv.write_metadata(caller, "secret", "app/kv", max_versions=3, cas_required=True,
                            custom_metadata={"owner": "payments"})  # fmt: skip
    blob = vault.backup(caller, "app/kv")
    vault.kv.write_metadata(caller, "secret", "app/kv", max_versions=9)
    with pytest.raises(AlreadyExists):
        vault.restore(caller, blob)
    assert vault.kv.metadata(caller, "app/kv").settings.max_versions == 9  # untouched by the refused restore
    vault.delete(caller, "app/kv")
    vault.purge(caller, "app/kv")
    vault.restore(caller, blob)
    settings = vault.kv.metadata(caller, "app/kv").settings
    assert (settings.max_versions, settings.cas_required) == (3, True)
    assert dict(settings.custom_metadata or {}) == {"owner": "payments"}


def test_backup_from_another_vault_is_refused_and_changes_nothing(
    vault: Vault, caller: Caller, tmp_path: Path, clock: FixedClock, snapshot: Callable[[], Dump]
) -> None:
    other = new_keyfile_vault(tmp_path, clock, name="other.db")
    other.put(caller, "a/b", b"theirs")
    blob = other.backup(caller, "a/b")
    other.close()
    before = snapshot()
    with pytest.raises(InvalidInput, match="another vault"):
        vault.restore(caller, blob)
    assert snapshot() == before


@pytest.mark.parametrize("mangle", [
    lambda b: b[:-10] + b"AAAAAAAAAA",  # flipped ciphertext
    lambda b: b[:40],  # truncated
    lambda b: b"kinko-backup-1:!!!not base64!!!",
    lambda b: b"something else entirely",
    lambda b: b"",
])
def test_corrupt_backup_is_refused_and_changes_nothing(
    vault: Vault, caller: Caller, snapshot: Callable[[], Dump], mangle: Callable[[bytes], bytes]
) -> None:
    vault.put(caller, "a/b", b"v1")
    blob = vault.backup(caller, "a/b")
    vault.delete(caller, "a/b")
    vault.purge(caller, "a/b")
    before = snapshot()
    with pytest.raises(InvalidInput) as err:
        vault.restore(caller, mangle(blob))
    assert err.value.code == "invalid_input"
    assert snapshot() == before


# -- bad input changes nothing on disk ---------------------------------------------------------------------

BAD_PUTS: list[tuple[str, dict[str, Any], type[KinkoError]]] = [
    ("", {}, InvalidPath),
    ("/lead", {}, InvalidPath),
    ("trail/", {}, InvalidPath),
    ("dou//ble", {}, InvalidPath),
    ("a/../b", {}, InvalidPath),
    ("sp ace", {}, InvalidPath),
    ("uni/cödé", {}, InvalidPath),
    ("x" * 600, {}, InvalidPath),
    ("a/b", {"content_type": "no-such-type"}, InvalidSecretType),
    ("a/b", {"content_type": "kubernetes.io/basic-auth"}, InvalidSecretType),  # single value for a map type
    ("a/b", {"tags": {f"t{i}": "v" for i in range(16)}}, InvalidInput),
    ("a/b", {"not_before": T0 + 10, "expires": T0 + 10}, InvalidInput),
    ("a/b", {"not_before": T0 + 10, "expires": T0 + 5}, InvalidInput),
    ("a/b", {"not_before": -1.0}, InvalidInput),
    ("a/b", {"expires": -5}, InvalidInput),
    ("a/b", {"expires": float("nan")}, InvalidInput),
    ("a/b", {"max_versions": -1}, InvalidInput),
    ("a/b", {"cas": 7}, VersionConflict),
]


@pytest.mark.parametrize(("path", "kwargs", "error"), BAD_PUTS)
def test_bad_put_changes_nothing(
    vault: Vault, caller: Caller, snapshot: Callable[[], Dump],
    path: str, kwargs: dict[str, Any], error: type[KinkoError],
) -> None:
    vault.put(caller, "a/b", b"original")
    before = snapshot()
    with pytest.raises(error) as err:
        vault.put(caller, path, b"new-value", **kwargs)
    assert err.value.code == error.code
    assert "new-value" not in str(err.value)
    assert snapshot() == before
    assert vault.get(caller, "a/b").value == b"original"


@pytest.mark.parametrize("value", [
    b"x" * (MAX_VALUE_BYTES + 1),
    {"a": b"x" * MAX_VALUE_BYTES, "b": b"y"},
])
def test_oversized_value_is_refused_and_changes_nothing(
    vault: Vault, caller: Caller, snapshot: Callable[[], Dump], value: Any
) -> None:
    before = snapshot()
    with pytest.raises(TooLarge) as err:
        vault.put(caller, "a/b", value, content_type="Opaque" if isinstance(value, dict) else "text")
    assert err.value.code == "too_large"
    assert snapshot() == before


def test_exactly_one_mib_is_accepted(vault: Vault, caller: Caller) -> None:
    vault.put(caller, "a/b", b"x" * MAX_VALUE_BYTES)
    assert len(vault.get(caller, "a/b").value) == MAX_VALUE_BYTES


@pytest.mark.parametrize("kwargs", [
    {"tags": {f"t{i}": "v" for i in range(16)}},
    {"expires": T0 - 10, "not_before": T0},
    {"not_before": -3.0},
    {"content_type": "Opaque"},
])
def test_bad_attribute_update_changes_nothing(
    vault: Vault, caller: Caller, snapshot: Callable[[], Dump], kwargs: dict[str, Any]
) -> None:
    vault.put(caller, "a/b", b"v1", tags={"keep": "me"})
    before = snapshot()
    with pytest.raises(InvalidInput):
        vault.update_attributes(caller, "a/b", **kwargs)
    assert snapshot() == before
    assert vault.get(caller, "a/b").info.attributes.tags == {"keep": "me"}


def test_writers_without_cas_never_fail_each_other(tmp_path: Path, clock: FixedClock, caller: Caller,
                                                   vault_storage: Path | str) -> None:
    # Found by bench/soak.py: two servers' workers writing one path at once got 409 "changed while writing".
    first = new_keyfile_vault(tmp_path, clock, storage=vault_storage)
    second = open_vault(vault_storage, clock=clock)  # another process on the same file (or database)
    errors: list[Exception] = []

    def write(vault: Vault, name: str) -> None:
        for index in range(40):
            try:
                vault.put(caller, "race/one", f"{name}-{index}".encode())
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(v, n)) for v, n in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [v.version for v in first.versions(caller, "race/one")] == list(range(1, 81))
    with pytest.raises(VersionConflict):  # with cas the caller asked for exactly one version: still refused
        first.put(caller, "race/one", b"late", cas=3)
    second.close()
    first.close()


def test_a_rotation_in_another_process_is_used_by_the_next_write(tmp_path: Path, clock: FixedClock, caller: Caller,
                                                                 vault_storage: Path | str) -> None:
    """Two processes (two servers on one database): B encrypts with the term A added, and reads A's new values,
    without reopening."""
    a = new_keyfile_vault(tmp_path, clock, storage=vault_storage)
    b = open_vault(vault_storage, clock=clock)
    b.put(caller, "rot/before", b"v0")
    assert a.rotate(caller) == 2
    assert b.put(caller, "rot/by-b", b"v1").key_term == 2
    assert a.put(caller, "rot/by-a", b"v2").key_term == 2
    assert b.get(caller, "rot/by-a").value == b"v2" and a.get(caller, "rot/by-b").value == b"v1"
    assert b.rewrap(caller) == 1  # the version written before the rotation
    assert a.get(caller, "rot/before").value == b"v0"
    b.close()
    a.close()
