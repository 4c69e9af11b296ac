"""Canary: a secret written through every path never shows up in plaintext outside an explicit `get`.

Scanned: the raw bytes of the .db, -wal and -shm files, backup files, every exception's str/repr/args, captured
logs at DEBUG, and CLI output of every command except `get`; on PostgreSQL every table, pg_dump's output and the
server's log with every statement and its parameters logged. Tags and paths are plaintext metadata BY DESIGN
(listing and policy work without decrypting), so the canary is never put in a tag or a path.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.crypto.seal import SealType
from kinko.errors import KinkoError
from kinko.vault import Vault, open_vault
from tests.cli.test_cli_operator import run
from tests.conftest import FixedClock, dump_storage, new_keyfile_vault
from tests.pg import PgCluster, database_of

CANARY = f"KINKO-CANARY-{uuid.uuid4().hex}".encode()


def _needles(canary: bytes) -> list[bytes]:
    """The canary, and its base64 at each of the three alignments it could sit at inside a larger blob."""
    forms = [canary]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + canary)
        forms.append(encoded[4:-4])  # the middle does not depend on neighbouring bytes
    return forms


NEEDLES = _needles(CANARY)


def assert_clean(label: str, data: bytes | str) -> None:
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    for needle in NEEDLES:
        assert needle not in raw, f"canary found in {label}"


def scan_files(directory: Path) -> int:
    scanned = 0
    for path in sorted(directory.iterdir()):
        if path.is_file():
            assert_clean(path.name, path.read_bytes())
            scanned += 1
    return scanned


def expect_error(action: Callable[[], object]) -> KinkoError:
    with pytest.raises(KinkoError) as err:
        action()
    error = err.value
    for text in (str(error), repr(error), repr(error.args), error.message):
        assert_clean(f"{type(error).__name__} message", text)
    return error


def test_needles_would_catch_a_leak() -> None:
    """Guard against a scanner that can never fail."""
    with pytest.raises(AssertionError):
        assert_clean("x", b"prefix" + base64.b64encode(b"ab" + CANARY) + b"suffix")


def _every_path(vault: Vault, caller: Caller, tmp_path: Path) -> list[bytes]:
    """The canary through every operation: writes, reads, failures, backup/restore, rotation, delete/recover,
    named keys. Returns the named keys' material (which must not reach the disk either)."""
    conn_string = b"postgresql://app:" + CANARY + b"@db.example:5432/orders"
    vault.put(caller, "c/single", CANARY)
    vault.put(caller, "c/map", {"password": CANARY, "user": b"bob"}, content_type="Opaque")
    vault.put(caller, "c/conn", conn_string, content_type="connection-string", tags={"owner": "ops"})
    vault.put(caller, "c/single", CANARY + b"-v2", cas=1)
    vault.update_attributes(caller, "c/single", 1, enabled=False)

    # every read path: explicit reads return it, but nothing else carries it
    assert vault.get(caller, "c/single").value == CANARY + b"-v2"
    secret = vault.get(caller, "c/conn")
    assert secret.value == conn_string
    assert_clean("connection-string metadata", repr(dict(secret.metadata)))
    assert_clean("repr(Secret)", repr(secret) + str(secret))
    assert_clean("repr(VersionInfo)", repr(vault.versions(caller, "c/single")))
    assert_clean("listing", repr(vault.list(caller, "c")) + repr(vault.info(caller, "c/map")))

    # failures along the way, each with the canary in the rejected input
    expect_error(lambda: vault.put(caller, "c/single", CANARY, cas=0))
    expect_error(lambda: vault.put(caller, "c/bad", CANARY + b" x", content_type="api-key"))
    expect_error(lambda: vault.put(caller, "c/bad", b"postgresql://u:" + CANARY + b"@:99999/x",
                                   content_type="connection-string"))
    expect_error(lambda: vault.put(caller, "c/bad", {"tls.crt": CANARY, "tls.key": CANARY},
                                   content_type="kubernetes.io/tls"))
    expect_error(lambda: vault.put(caller, "c/bad", {"a b": CANARY}, content_type="Opaque"))
    expect_error(lambda: vault.put(caller, "c/bad", CANARY * 30_000))
    expect_error(lambda: vault.get(caller, "c/single", 1))  # disabled

    # backup and restore, rotation and rewrap (old and new ciphertext both in the file)
    backup = vault.backup(caller, "c/map")
    (tmp_path / "c-map.backup").write_bytes(backup)
    vault.delete(caller, "c/map")
    vault.purge(caller, "c/map")
    vault.restore(caller, backup)
    expect_error(lambda: vault.restore(caller, backup))
    expect_error(lambda: vault.restore(caller, backup[:-8] + b"AAAAAAAA"))
    vault.rotate(caller)
    vault.rewrap(caller)
    vault.delete(caller, "c/conn")
    vault.recover(caller, "c/conn")
    _kv_paths(vault, caller)
    return _transit_paths(vault, caller)


def _transit_paths(vault: Vault, caller: Caller) -> list[bytes]:
    """The canary as a plaintext of named keys (encrypt, decrypt, rewrap, sign, HMAC, failures) and the keys'
    own material, read from the engine's memory so the files can be searched for it."""
    keys, text = vault.keys, base64.b64encode(CANARY).decode()
    for name, key_type in (("aes", "aes256-gcm96"), ("chacha", "chacha20-poly1305"), ("ed", "ed25519"),
                           ("rsa", "rsa-2048")):
        keys.create(caller, name, key_type=key_type)
    sealed = keys.encrypt(caller, "aes", [{"plaintext": text, "associated_data": text}])[0]
    assert isinstance(sealed, dict)
    keys.rotate(caller, "aes")
    rewrapped = keys.rewrap(caller, "aes", [{"ciphertext": sealed["ciphertext"], "associated_data": text}])[0]
    assert isinstance(rewrapped, dict)
    assert keys.decrypt(caller, "aes", [{"ciphertext": rewrapped["ciphertext"], "associated_data": text}]) == [
        {"plaintext": text}]
    keys.encrypt(caller, "chacha", [{"plaintext": text}])
    keys.encrypt(caller, "rsa", [{"plaintext": text}])
    keys.sign(caller, "ed", [{"input": text}])
    keys.hmac(caller, "aes", [{"input": text}])
    keys.datakey(caller, "aes", plaintext=True)
    failed = keys.decrypt(caller, "aes", [{"ciphertext": rewrapped["ciphertext"], "associated_data": "x" + text}])
    failed += keys.encrypt(caller, "aes", [{"plaintext": text + "!"}])
    for outcome in failed:
        assert isinstance(outcome, KinkoError)
        assert_clean("key operation error", repr(outcome) + str(outcome))
    expect_error(lambda: keys.delete(caller, "aes"))
    assert_clean("repr(KeyInfo)", repr([keys.read(caller, n) for n in keys.names(caller)]))
    materials = []
    for name in keys.names(caller):
        policy = keys._load(name)[1]  # the engine's own view: the one place the material is
        assert policy is not None
        assert_clean("repr(KeyPolicy)", repr(policy))
        materials += [v.material for v in policy.versions.values()] + [v.hmac_key for v in policy.versions.values()]
    return materials


def assert_no_key_material(label: str, data: bytes, materials: list[bytes]) -> None:
    for material in materials:
        for needle in _needles(material):
            assert needle not in data, f"key material found in {label}"


def _kv_paths(vault: Vault, caller: Caller) -> None:
    """The canary through Vault's KV v2 engine: JSON data, patch, custom metadata, version states, failures."""
    text = CANARY.decode()
    kv = vault.kv
    kv.write(caller, "secret", "kv/app", {"password": text, "nested": {"token": text, "n": 1}}, None)
    kv.patch(caller, "secret", "kv/app", {"password": text + "-2"}, None)
    kv.write_metadata(caller, "secret", "kv/app", custom_metadata={"note": text})
    kv.write_config(caller, "secret", max_versions=10)
    assert kv.read(caller, "kv/app").data == {"password": text + "-2", "nested": {"token": text, "n": 1}}
    assert_clean("repr(KvEntry)", repr(kv.read(caller, "kv/app")) + repr(kv.metadata(caller, "kv/app")))
    expect_error(lambda: kv.write(caller, "secret", "kv/app", {"password": text}, 0))  # cas mismatch
    expect_error(lambda: kv.patch(caller, "secret", "kv/app", {"password": text}, 1))
    expect_error(lambda: kv.write_metadata(caller, "secret", "kv/app", custom_metadata={"k": text * 20}))
    kv.delete_latest(caller, "kv/app")
    kv.undelete(caller, "kv/app", [2])
    kv.destroy(caller, "kv/app", [1])


def test_canary_through_the_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, clock: FixedClock, caller: Caller
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = new_keyfile_vault(tmp_path, clock)
    materials = _every_path(vault, caller, tmp_path)
    assert (tmp_path / "vault.db-wal").exists()  # scanned while the WAL still holds recent pages
    assert scan_files(tmp_path) >= 5  # db, -wal, -shm, key file, backup
    vault.seal(caller)
    expect_error(lambda: vault.get(caller, "c/single"))
    vault.close()
    scan_files(tmp_path)
    for path in tmp_path.iterdir():
        if path.is_file():
            assert_no_key_material(path.name, path.read_bytes(), materials)
    for record in caplog.records:
        assert_clean("log record", record.getMessage() + repr(record.args))


def test_canary_never_reaches_postgresql(tmp_path: Path, caplog: pytest.LogCaptureFixture, clock: FixedClock,
                                         caller: Caller, pg_cluster: PgCluster, pg_url: str) -> None:
    """The same operations on PostgreSQL with every statement and its parameters logged: the canary is in no
    table, not in pg_dump's output, not in the server's log."""
    database = database_of(pg_url)
    for setting in ("log_statement = 'all'", "log_parameter_max_length = -1",
                    "log_parameter_max_length_on_error = -1"):
        pg_cluster.admin(f'ALTER DATABASE "{database}" SET {setting}')
    caplog.set_level(logging.DEBUG)
    log_start = len(pg_cluster.log_text())
    vault = new_keyfile_vault(tmp_path, clock, storage=pg_url)
    materials = _every_path(vault, caller, tmp_path)
    vault.seal(caller)
    expect_error(lambda: vault.get(caller, "c/single"))
    vault.close()
    rows = dump_storage(pg_url)
    assert len(rows["versions"]) >= 4
    for table, values in rows.items():
        for row in values:
            for value in row:
                assert_clean(f"table {table}", value if isinstance(value, bytes) else str(value))
    dumped = pg_cluster.dump(pg_url)
    assert b"COPY public.versions" in dumped
    assert_clean("pg_dump", dumped)
    assert_no_key_material("pg_dump", dumped, materials)
    logged = pg_cluster.log_text()[log_start:]
    assert "INSERT INTO versions" in logged and "parameters: $1" in logged  # the log did record statements
    assert_clean("PostgreSQL server log", logged)
    assert_no_key_material("PostgreSQL server log", logged.encode(), materials)
    scan_files(tmp_path)
    for record in caplog.records:
        assert_clean("log record", record.getMessage() + repr(record.args))


def test_canary_through_the_cli(tmp_path: Path) -> None:
    env = {"KINKO_VAULT": str(tmp_path / "v.db")}
    source = tmp_path / "in"
    source.mkdir()
    (source / "value").write_bytes(CANARY)
    outputs: list[str] = []

    def cli(*args: str, input: bytes | None = None, ok: bool = True) -> None:
        result = run(env, *args, input=input)
        assert (result.exit_code == 0) == ok, (args, result.output)
        outputs.append(result.output + result.stderr)

    cli("operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"))
    cli("secret", "put", "c/stdin", "-", input=CANARY)
    cli("secret", "put", "c/file", f"@{source / 'value'}", "-o", "json")
    cli("secret", "put", "c/pairs", f"password=@{source / 'value'}", "user=bob")
    cli("secret", "put", "c/conn", "--type", "connection-string", "-",
        input=b"mysql://root:" + CANARY + b"@db:3306/app")
    cli("secret", "put", "c/bad", "--type", "api-key", "-", input=CANARY + b" x", ok=False)
    cli("secret", "put", "c/stdin", "--cas", "0", "-", input=CANARY, ok=False)
    for fmt in ("text", "json"):
        cli("secret", "list", "c", "-o", fmt)
        cli("secret", "versions", "c/conn", "-o", fmt)
        cli("operator", "status", "-o", fmt)
    cli("secret", "update", "c/file", "--tag", "owner=ops", "-o", "json")
    cli("secret", "backup", "c/pairs", "-f", str(tmp_path / "pairs.backup"))
    cli("secret", "delete", "c/pairs")
    cli("secret", "list", "--deleted", "-o", "json")
    cli("secret", "purge", "c/pairs")
    cli("secret", "restore", str(tmp_path / "pairs.backup"), "-o", "json")
    cli("operator", "rotate", "-o", "json")
    cli("operator", "seal")
    cli("secret", "list", ok=False)
    for index, text in enumerate(outputs):
        assert_clean(f"CLI output #{index}", text)
    scan_files(tmp_path)
    cli("operator", "unseal")
    got = run(env, "secret", "get", "c/pairs", "--key", "password")
    assert got.stdout_bytes == CANARY  # the one place it may appear: an explicit get


def test_passphrase_is_not_stored(tmp_path: Path, clock: FixedClock) -> None:
    passphrase = CANARY.decode()
    vault = open_vault(tmp_path / "p.db", create=True, clock=clock)
    result = vault.init(seal=SealType.PASSPHRASE, passphrase=passphrase)
    assert_clean("InitResult", repr(result))
    vault.unseal(passphrase=passphrase)
    vault.close()
    scan_files(tmp_path)


def test_repr_of_secret_and_init_result_hide_values(vault: Vault, caller: Caller, tmp_path: Path) -> None:
    vault.put(caller, "a/b", CANARY)
    assert_clean("repr(Secret)", repr(vault.get(caller, "a/b")))
    result = open_vault(tmp_path / "s.db", create=True).init()
    text = repr(result)
    assert result.root_token not in text and all(share not in text for share in result.shares)
