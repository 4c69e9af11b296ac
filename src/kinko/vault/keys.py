"""Named keys (Vault's transit engine): each operation authorized and audited by the guard, the keys sealed by the
barrier in the vault's metadata (kinko.vault.transit has the rules; kinko.vault.key_crypto the cryptography).

Policy paths are Vault's transit paths (docs/compat.md): `transit/keys/<name>` (read, list on `transit/keys`,
update to create, delete), `transit/keys/<name>/config` and `/rotate` (update), `transit/<op>/<name>` (update; an
encrypt that creates its key needs create), `transit/datakey/<plaintext|wrapped>/<name>`, `transit/random`,
`transit/hash`. Rules for these paths are written under `transit/` (a `*` rule for secrets never reaches them).
Batch operations take Vault's item mappings and answer one result or one `TransitError` per item.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kinko.core.model import Caller
from kinko.crypto.barrier import UnknownTerm
from kinko.errors import InvalidInput
from kinko.storage.fresh import FreshCache
from kinko.storage.interface import Store
from kinko.vault import key_crypto
from kinko.vault.guard import Guard
from kinko.vault.seal_state import SealState
from kinko.vault.transit import (
    DEFAULT_TYPE,
    DERIVABLE,
    ENCRYPTING,
    SIGNING,
    KeyInfo,
    KeyMissing,
    KeyNotFound,
    KeyPolicy,
    KeyVersion,
    TransitError,
    b64decode_input,
    check_key_name,
    check_key_type,
    parse_versioned,
    versioned,
)

META_PREFIX = "transit/key/"
MAX_RANDOM = 128 * 1024
_CAS_ATTEMPTS = 20
Item = Mapping[str, Any]
Outcome = dict[str, Any] | TransitError


class KeyEngine:
    """Named keys over the store's metadata; key material exists in plaintext only in this process's memory."""

    def __init__(self, store: Store, seal: SealState, guard: Guard, clock: Callable[[], float]) -> None:
        self._store, self._seal, self._guard, self._clock = store, seal, guard, clock
        self._cache: dict[str, tuple[bytes, KeyPolicy]] = {}
        self._fresh: FreshCache[bytes | None] = FreshCache(store)  # no SELECT while nothing was committed

    def forget(self) -> None:
        self._cache.clear()
        self._fresh.clear()
        key_crypto.forget()

    # -- storage -----------------------------------------------------------------------------------------------
    def _aad(self, name: str) -> list[str | int]:
        return [self._seal.vault_id(), "transit-key", name]

    def _raw(self, name: str) -> bytes | None:
        return self._fresh.get(name, lambda: self._store.get_meta(META_PREFIX + name))

    def _load(self, name: str) -> tuple[bytes | None, KeyPolicy | None]:
        raw = self._raw(name)
        if raw is None:
            return None, None
        cached = self._cache.get(name)
        if cached is not None and cached[0] == raw:
            return raw, cached[1]
        try:
            plain = self._seal.barrier().open(raw, self._aad(name))
        except UnknownTerm:
            self._seal.reload_keyring()
            plain = self._seal.barrier().open(raw, self._aad(name))
        policy = KeyPolicy.from_bytes(plain)
        self._cache[name] = (raw, policy)
        return raw, policy

    def _key(self, name: str, missing: str) -> KeyPolicy:
        policy = self._load(name)[1]
        if policy is None:
            raise KeyMissing(missing)
        return policy

    def _swap(self, name: str, expected: bytes | None, policy: KeyPolicy) -> bool:
        sealed = self._seal.barrier().seal(policy.to_bytes(), self._aad(name))
        if not self._store.swap_meta(META_PREFIX + name, expected, sealed):
            return False
        self._cache[name] = (sealed, policy)
        return True

    def _change(self, name: str, missing: str, change: Callable[[KeyPolicy], KeyPolicy]) -> KeyPolicy:
        """Apply `change` with compare-and-swap, so two servers changing one key never lose a version."""
        for _attempt in range(_CAS_ATTEMPTS):
            raw, policy = self._load(name)
            if raw is None or policy is None:
                raise KeyMissing(missing)
            changed = change(policy)
            if self._swap(name, raw, changed):
                return changed
        raise TransitError("the key kept changing; try again")

    def _new_key(self, name: str, key_type: str, *, derived: bool = False, exportable: bool = False) -> KeyPolicy:
        if derived and key_type not in DERIVABLE - {"ed25519"}:
            raise TransitError(f"key derivation is not supported for key type {key_type}")
        now = self._clock()
        version = KeyVersion(key_crypto.new_material(key_type), secrets.token_bytes(32), now)
        return KeyPolicy(name, key_type, {1: version}, now, derived=derived, exportable=exportable)

    # -- managing keys -----------------------------------------------------------------------------------------
    def create(self, caller: Caller, name: str, *, key_type: str = DEFAULT_TYPE, derived: bool = False,
               exportable: bool = False, auto_rotate_period: float = 0.0) -> KeyInfo:
        """Create a key (an existing key is left as it is and shown, as Vault does)."""
        check_key_name(name)
        self._guard.check(caller, "update", f"transit/keys/{name}", "key.create")
        self._seal.barrier()
        existing = self._load(name)[1]
        if existing is not None:
            return self._info(existing)
        policy = self._new_key(name, check_key_type(key_type), derived=derived, exportable=exportable)
        policy = policy.configured(auto_rotate_period=auto_rotate_period)
        if not self._swap(name, None, policy):
            return self._info(self._key(name, "key not found"))
        return self._info(policy)

    def read(self, caller: Caller, name: str) -> KeyInfo:
        check_key_name(name)
        self._guard.check(caller, "read", f"transit/keys/{name}", "key.read")
        self._seal.barrier()
        policy = self._load(name)[1]
        if policy is None:
            raise KeyNotFound(f"no key named {name!r}")
        return self._info(policy)

    def names(self, caller: Caller) -> list[str]:
        self._guard.check(caller, "list", "transit/keys", "key.list")
        self._seal.barrier()
        return sorted(key[len(META_PREFIX):] for key in self._store.list_meta_keys(META_PREFIX))

    def delete(self, caller: Caller, name: str) -> None:
        check_key_name(name)
        self._guard.check(caller, "delete", f"transit/keys/{name}", "key.delete")
        self._seal.barrier()
        raw, policy = self._load(name)
        if raw is None or policy is None:
            raise TransitError(f"error deleting policy {name}: could not delete key; not found")
        if not policy.deletion_allowed:
            raise TransitError(f"error deleting policy {name}: deletion is not allowed for this key")
        self._store.delete_meta(META_PREFIX + name)
        self._cache.pop(name, None)

    def configure(self, caller: Caller, name: str, **settings: Any) -> KeyInfo:
        """Change min_decryption_version, min_encryption_version, deletion_allowed, exportable (one way) or
        auto_rotate_period; the others stay."""
        check_key_name(name)
        self._guard.check(caller, "update", f"transit/keys/{name}/config", "key.config")
        self._seal.barrier()
        missing = f"no existing key named {name} could be found"
        return self._info(self._change(name, missing, lambda policy: policy.configured(**settings)))

    def rotate(self, caller: Caller, name: str) -> KeyInfo:
        check_key_name(name)
        self._guard.check(caller, "update", f"transit/keys/{name}/rotate", "key.rotate")
        self._seal.barrier()
        return self._info(self._change(
            name, "key not found", lambda policy: policy.rotated(key_crypto.new_material(policy.type), self._clock())))

    def _info(self, policy: KeyPolicy) -> KeyInfo:
        shown = {n: (v.created, *key_crypto.public_key(policy.type, v.material)) for n, v in policy.versions.items()
                 if n >= policy.min_decryption_version}
        return KeyInfo(policy.name, policy.type, policy.created, policy.latest, policy.min_decryption_version,
                       policy.min_encryption_version, policy.deletion_allowed, policy.exportable, policy.derived,
                       policy.auto_rotate_period, shown)

    # -- encrypt / decrypt -------------------------------------------------------------------------------------
    def encrypt(self, caller: Caller, name: str, items: Sequence[Item], *, key_version: int | None = None,
                key_type: str = DEFAULT_TYPE) -> list[Outcome]:
        """Encrypt each item's base64 `plaintext` (with `associated_data`, and `context` for a derived key).
        A missing key is created (aes256-gcm96 or `key_type`) when the caller may create it, as in Vault."""
        check_key_name(name)
        exists = self._raw(name) is not None  # Vault's existence check: no decryption
        self._guard.check(caller, "update" if exists else "create", f"transit/encrypt/{name}", "key.encrypt")
        self._seal.barrier()
        policy = self._load(name)[1]
        if policy is None:
            policy = self._new_key(name, check_key_type(key_type))
            if not self._swap(name, None, policy):
                policy = self._key(name, "encryption key not found")
        policy = self._rotated_if_due(caller, policy)
        if policy.type not in ENCRYPTING:
            raise TransitError(f"message encryption not supported for key type {policy.type}")
        version = policy.version_for_encryption(key_version)
        return [_each(lambda item: _encrypt_item(policy, version, item), item) for item in items]

    def decrypt(self, caller: Caller, name: str, items: Sequence[Item]) -> list[Outcome]:
        policy = self._for(caller, name, "decrypt", "encryption key not found")
        if policy.type not in ENCRYPTING:
            raise TransitError(f"message decryption not supported for key type {policy.type}")
        return [_each(lambda item: {"plaintext": _b64(_decrypt_item(policy, item))}, item) for item in items]

    def rewrap(self, caller: Caller, name: str, items: Sequence[Item], *,
               key_version: int | None = None) -> list[Outcome]:
        """Decrypt and encrypt again with the latest (or the given) version; the plaintext never leaves."""
        policy = self._for(caller, name, "rewrap", "encryption key not found")
        if policy.type not in ENCRYPTING:
            raise TransitError(f"message encryption not supported for key type {policy.type}")
        version = policy.version_for_encryption(key_version)

        def one(item: Item) -> dict[str, Any]:
            plain = _decrypt_item(policy, item)
            return _encrypt_item(policy, version, {**item, "plaintext": _b64(plain)})
        return [_each(one, item) for item in items]

    def datakey(self, caller: Caller, name: str, *, plaintext: bool, bits: int = 256,
                context: object = None) -> dict[str, Any]:
        """A new random data key wrapped by the named key (and returned in plaintext too, if asked)."""
        kind = "plaintext" if plaintext else "wrapped"
        policy = self._for(caller, name, f"datakey/{kind}", "encryption key not found")
        if bits not in (128, 256, 512):
            raise TransitError("invalid bit length")
        if policy.type not in ENCRYPTING:
            raise TransitError(f"message encryption not supported for key type {policy.type}")
        key = secrets.token_bytes(bits // 8)
        item = {"plaintext": _b64(key)} if context is None else {"plaintext": _b64(key), "context": context}
        result = _encrypt_item(policy, policy.latest, item)
        return {**result, "plaintext": _b64(key)} if plaintext else result

    # -- sign / verify / hmac ----------------------------------------------------------------------------------
    def sign(self, caller: Caller, name: str, items: Sequence[Item], *, hash_name: str = "sha2-256",
             prehashed: bool = False, signature_algorithm: str = "pss", marshaling: str = "asn1",
             key_version: int | None = None) -> list[Outcome]:
        policy = self._for(caller, name, "sign", "signing key not found")
        if policy.type not in SIGNING:
            raise TransitError(f"key type {policy.type} does not support signing")
        version = policy.version_for_encryption(key_version)
        material = policy.versions[version].material

        def one(item: Item) -> dict[str, Any]:
            data = b64decode_input(item.get("input", ""), "input")
            signature = key_crypto.sign(policy.type, material, data, hash_name=hash_name, prehashed=prehashed,
                                        signature_algorithm=signature_algorithm, marshaling=marshaling)
            return {"signature": versioned(version, signature), "key_version": version}
        return [_each(one, item) for item in items]

    def verify(self, caller: Caller, name: str, items: Sequence[Item], *, hash_name: str = "sha2-256",
               prehashed: bool = False, signature_algorithm: str = "pss", marshaling: str = "asn1") -> list[Outcome]:
        """Check each item's `signature` (or `hmac`) over its `input`: {"valid": bool}."""
        policy = self._for(caller, name, "verify", "signature verification key not found")

        def one(item: Item) -> dict[str, Any]:
            data = b64decode_input(item.get("input", ""), "input")
            if item.get("hmac") is not None:
                version, given = parse_versioned(item["hmac"])
                entry = policy.version_for_decryption(version)
                return {"valid": key_crypto.mac_equal(entry.hmac_key, data, hash_name, given)}
            if item.get("signature") is None:
                raise TransitError("neither a 'signature' nor an 'hmac' were given to verify")
            if policy.type not in SIGNING:
                raise TransitError(f"key type {policy.type} does not support verification")
            version, signature = parse_versioned(item["signature"])
            entry = policy.version_for_decryption(version)
            return {"valid": key_crypto.verify(policy.type, entry.material, data, signature, hash_name=hash_name,
                                               prehashed=prehashed, signature_algorithm=signature_algorithm,
                                               marshaling=marshaling)}
        return [_each(one, item) for item in items]

    def hmac(self, caller: Caller, name: str, items: Sequence[Item], *, algorithm: str = "sha2-256",
             key_version: int | None = None) -> list[Outcome]:
        policy = self._for(caller, name, "hmac", "encryption key not found")
        version = policy.version_for_encryption(key_version)
        hmac_key = policy.versions[version].hmac_key

        def one(item: Item) -> dict[str, Any]:
            if item.get("input") is None:
                raise TransitError("missing input for HMAC")
            data = b64decode_input(item["input"], "input")
            return {"hmac": versioned(version, key_crypto.mac(hmac_key, data, algorithm))}
        return [_each(one, item) for item in items]

    # -- keyless -----------------------------------------------------------------------------------------------
    def random(self, caller: Caller, count: int = 32) -> bytes:
        self._guard.check(caller, "update", "transit/random", "key.random")
        self._seal.barrier()
        if count < 1:
            raise TransitError("'bytes' cannot be less than 1")
        if count > MAX_RANDOM:
            raise TransitError(f"'bytes' should be less than {MAX_RANDOM}")
        return secrets.token_bytes(count)

    def hash(self, caller: Caller, data: object, algorithm: str = "sha2-256") -> bytes:
        """The digest of base64 `data` (no key involved)."""
        self._guard.check(caller, "update", "transit/hash", "key.hash")
        self._seal.barrier()
        raw = b64decode_input(data, "input")
        if algorithm not in key_crypto.HASHES:
            raise TransitError(f"unsupported algorithm {algorithm[:32]}")
        return key_crypto.digest(raw, algorithm)

    def _for(self, caller: Caller, name: str, operation: str, missing: str) -> KeyPolicy:
        check_key_name(name)
        self._guard.check(caller, "update", f"transit/{operation}/{name}", f"key.{operation.split('/')[0]}")
        self._seal.barrier()
        return self._rotated_if_due(caller, self._key(name, missing))

    def _rotated_if_due(self, caller: Caller, policy: KeyPolicy) -> KeyPolicy:
        """auto_rotate_period: a key whose latest version is older is rotated on its next use (compare-and-swap,
        so servers sharing the database rotate it once), and the rotation is audited."""
        if not policy.rotation_due(self._clock()):
            return policy
        now = self._clock()
        rotated = self._change(policy.name, "key not found", lambda current: current.rotated(
            key_crypto.new_material(current.type), now) if current.rotation_due(now) else current)
        self._guard.record(caller, "key.rotate", f"transit/keys/{policy.name}/rotate", "auto")
        return rotated


# -- per item ------------------------------------------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


def _each(operation: Callable[[Item], dict[str, Any]], item: Item) -> Outcome:
    """One batch item's result, or the error that item alone met."""
    if not isinstance(item, Mapping):
        return TransitError("each batch item must be an object")
    try:
        return operation(item)
    except TransitError as exc:
        return exc
    except InvalidInput as exc:
        return TransitError(exc.message)


def _key_for(policy: KeyPolicy, material: bytes, item: Item) -> bytes:
    """The version's key, or the per-context key of a derived key."""
    if not policy.derived:
        return material  # Vault ignores a context given for a key that is not derived
    if not item.get("context"):
        raise TransitError("missing 'context' for key derivation; the key was created using a derived key, which "
                           "means additional, per-request information must be included in order to perform "
                           "operations with the key")
    return key_crypto.derive(material, b64decode_input(item["context"], "context"))


def _aad(item: Item) -> bytes:
    given = item.get("associated_data")
    return b"" if not given else b64decode_input(given, "associated_data")


def _encrypt_item(policy: KeyPolicy, version: int, item: Item) -> dict[str, Any]:
    if item.get("plaintext") is None:
        raise TransitError("missing plaintext to encrypt")
    plain = b64decode_input(item["plaintext"], "plaintext")
    key = _key_for(policy, policy.versions[version].material, item)
    blob = key_crypto.encrypt(policy.type, key, plain, _aad(item))
    return {"ciphertext": versioned(version, blob), "key_version": version}


def _decrypt_item(policy: KeyPolicy, item: Item) -> bytes:
    if not item.get("ciphertext"):
        raise TransitError("missing ciphertext to decrypt")
    version, blob = parse_versioned(item["ciphertext"])
    entry = policy.version_for_decryption(version)
    return key_crypto.decrypt(policy.type, _key_for(policy, entry.material, item), blob, _aad(item))

