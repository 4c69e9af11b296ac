"""`kinko operator migrate`: copy a vault between storage engines as stored (nothing is unsealed to copy it), then
check the copy row by row and, given unseal material, decrypt a sample of it."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from kinko.errors import CorruptVault, InvalidInput, NotInitialized
from kinko.storage.interface import Store
from kinko.storage.location import is_postgres, open_store, sqlite_path
from kinko.vault.guard import Guard
from kinko.vault.records import SecretRecords
from kinko.vault.seal_state import M_OPERATOR_SEALED, M_VAULT_ID, SealState
from kinko.vault.types import SealType

#: How many stored versions are decrypted after a copy when unseal material is given.
DEFAULT_SAMPLE = 20


@dataclass(frozen=True)
class UnsealMaterial:
    """What may open the vault to check the copy: a key file (else the one recorded at init), a passphrase, or
    Shamir shares. Never stored."""

    key_file: Path | None = None
    passphrase: str | None = field(default=None, repr=False)
    shares: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class MigrationReport:
    source: str
    target: str
    #: rows copied per table (each compared with the source's, byte for byte)
    rows: dict[str, int]
    #: versions decrypted from the target, and how it was unsealed ("" when nothing was decrypted)
    decrypted: int = 0
    versions: int = 0
    unsealed_with: str = ""


def migrate(source: str | Path, target: str | Path, *, material: UnsealMaterial | None = None,
            sample: int = DEFAULT_SAMPLE) -> MigrationReport:
    """Copy every row of the vault at `source` into the empty store at `target` in one transaction, compare the
    two, and decrypt up to `sample` versions when `material` can unseal. AlreadyExists for a target that holds
    anything; a SQLite target created here is removed again when the copy fails."""
    if _key(source) == _key(target):
        raise InvalidInput("the source and the target are the same")
    created = not is_postgres(target) and not sqlite_path(target).exists()
    src = open_store(source, create=False)
    try:
        if src.get_meta(M_VAULT_ID) is None:
            raise NotInitialized(f"{src.describe()} holds no initialised vault")
        how = _check_material(src, material) if material is not None else ""  # wrong material: before copying
        rows = src.dump()
        where, decrypted = _copy(rows, target, created, material if how else None, sample)
        return MigrationReport(src.describe(), where, {t: len(r) for t, r in rows.items()}, decrypted,
                               len(rows["versions"]), how)
    finally:
        src.close()


Rows = dict[str, list[tuple[object, ...]]]


def _copy(rows: Rows, target: str | Path, created: bool, material: UnsealMaterial | None,
          sample: int) -> tuple[str, int]:
    """Load `rows` into the target, compare, decrypt a sample: (the target's description, versions decrypted)."""
    try:
        dst = open_store(target, create=True)
    except BaseException:
        _remove_created(target, created)
        raise
    try:
        try:
            dst.load(rows)
        except BaseException:
            _remove_created(target, created, dst)
            raise
        if dst.dump() != rows:
            raise CorruptVault(f"the copy in {dst.describe()} differs from the source; do not use it")
        return dst.describe(), _decrypt_sample(dst, rows, material, sample) if material is not None else 0
    finally:
        dst.close()


def _remove_created(target: str | Path, created: bool, store: Store | None = None) -> None:
    """A SQLite file this copy created is removed when the copy fails (a store given is closed first)."""
    if not created:
        return
    if store is not None:
        store.close()
    path = sqlite_path(target)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)


def _key(location: str | Path) -> str:
    return str(location) if is_postgres(location) else str(sqlite_path(location).resolve())


def _check_material(store: Store, material: UnsealMaterial) -> str:
    """Unseal the source with `material` and seal it again (its operator-seal marker kept): what did it."""
    seal = SealState(store)
    try:
        return _unseal_keeping_marker(store, seal, material)
    finally:
        seal.forget()


def _unseal_keeping_marker(store: Store, seal: SealState, material: UnsealMaterial) -> str:
    """Unsealing removes an operator's seal marker; a check must leave the store as it was."""
    marker = store.get_meta(M_OPERATOR_SEALED)
    try:
        return _unseal(seal, material)
    finally:
        if marker is not None:
            store.put_meta(M_OPERATOR_SEALED, marker)


def _unseal(seal: SealState, material: UnsealMaterial) -> str:
    """Unseal `seal` with what was given; the name of what did it ("" when nothing given fits this vault)."""
    kind = seal.seal_config().type
    if kind is SealType.KEY_FILE:
        seal.unseal_key_file(material.key_file)
        return "the key file"
    if kind is SealType.PASSPHRASE and material.passphrase is not None:
        seal.unseal_passphrase(material.passphrase)
        return "the passphrase"
    if kind is SealType.SHAMIR and material.shares:
        for share in material.shares:
            if not seal.unseal_share(share).sealed:
                return "the unseal shares"
        raise InvalidInput("the unseal shares given are fewer than the threshold")
    return ""


def _decrypt_sample(dst: Store, rows: Rows, material: UnsealMaterial, sample: int) -> int:
    """Unseal the copy (an operator-seal marker stays as it was copied) and open a random sample of versions."""
    seal = SealState(dst)
    _unseal_keeping_marker(dst, seal, material)
    records = SecretRecords(dst, seal, Guard(lambda *_: False), time.time)
    keys = [(str(r[0]), int(str(r[1]))) for r in rows["versions"]]
    chosen = secrets.SystemRandom().sample(keys, min(sample, len(keys)))
    try:
        for path, version in chosen:
            records.verify_stored(path, version)
    finally:
        seal.forget()
    return len(chosen)
