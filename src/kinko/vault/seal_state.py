"""The vault's key lifecycle: init, unseal, seal, rotate. Holds the only in-memory copies of key material."""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
import uuid
from pathlib import Path

from kinko.access.integrity import LIFECYCLE_TAGS_MARKER, RecordMac
from kinko.access.tokens import ROOT_PREFIX, ROOT_TOKEN_MAC_META, ROOT_TOKEN_META, new_token, token_hash
from kinko.crypto.barrier import Barrier, associated_data, open_with_key, seal_with_key
from kinko.crypto.keyring import KEY_BYTES, Keyring
from kinko.crypto.seal import (
    UNSEAL_KEY_BYTES,
    SealConfig,
    SealType,
    ShareCollector,
    check_shamir_params,
    decode_single_share,
    encode_single_share,
    passphrase_key,
    read_key_file,
    share_tag,
    unwrap_root_key,
    wrap_root_key,
    write_key_file,
)
from kinko.crypto.shares import SHARE_OVERHEAD, decode_share, encode_share, split
from kinko.errors import (
    AlreadyInitialized,
    CorruptVault,
    IntegrityError,
    InvalidInput,
    InvalidShare,
    NotInitialized,
    Sealed,
    SharesDoNotCombine,
    UnsealFailed,
)
from kinko.storage.interface import Store
from kinko.vault.types import (
    DEFAULT_RETENTION_DAYS,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    InitResult,
    RetentionSettings,
    VaultStatus,
)

# Meta keys (all values are bytes; only the wrapped ones are sensitive, and they are ciphertext).
M_VAULT_ID, M_SEAL, M_ROOT, M_KEYRING = "vault_id", "seal_config", "root_key_wrapped", "keyring_wrapped"
M_POLICY, M_KEY_FILE, M_OPERATOR_SEALED = "policy", "key_file", "sealed"
#: {x coordinate: share_tag} of every Shamir share, written at init (absent in vaults initialised before it).
M_SHARE_TAGS = "share_tags"


def check_init_options(seal: SealType, shares: int, threshold: int, retention_days: int) -> None:
    """InvalidInput for init options that cannot work, before anything is created."""
    if seal is SealType.SHAMIR:
        check_shamir_params(shares, threshold)
    if not MIN_RETENTION_DAYS <= retention_days <= MAX_RETENTION_DAYS:
        raise InvalidInput(f"retention must be {MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS} days")


class SealState:
    """Owns the root key and keyring while unsealed; nothing while sealed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.RLock()
        self._barrier: Barrier | None = None
        self._root_key: bytearray | None = None
        self._collector: ShareCollector | None = None
        self._vault_id: str | None = None  # immutable once initialised; cached off the hot path
        self._record_mac: tuple[Barrier, RecordMac] | None = None  # for the barrier it was derived from
        self._keyring_blob: bytes | None = None  # the stored (wrapped) keyring the barrier was opened from

    # -- facts ---------------------------------------------------------------------------------------------
    def _meta(self, key: str) -> bytes:
        value = self._store.get_meta(key)
        if value is None:
            raise CorruptVault(f"vault metadata {key!r} is missing")
        return value

    @property
    def initialized(self) -> bool:
        return self._store.get_meta(M_VAULT_ID) is not None

    def vault_id(self) -> str:
        if self._vault_id is None:
            raw = self._store.get_meta(M_VAULT_ID)
            if raw is None:
                raise NotInitialized()
            self._vault_id = raw.decode()
        return self._vault_id

    def seal_config(self) -> SealConfig:
        self.vault_id()  # NotInitialized (not CorruptVault) on a vault that was never initialised
        return SealConfig.from_bytes(self._meta(M_SEAL))

    def retention(self) -> RetentionSettings:
        self.vault_id()
        return RetentionSettings.from_bytes(self._meta(M_POLICY))

    def status(self) -> VaultStatus:
        if not self.initialized:
            return VaultStatus(initialized=False, sealed=True)
        config, policy = self.seal_config(), self.retention()
        barrier = self._barrier
        return VaultStatus(
            initialized=True, sealed=barrier is None, seal_type=config.type.value, shares=config.shares,
            threshold=config.threshold, progress=self._collector.progress if self._collector else 0,
            key_term=barrier.keyring.active_term if barrier else None, vault_id=self.vault_id(),
            retention_days=policy.retention_days, purge_protection=policy.purge_protection,
        )

    def operator_sealed(self) -> bool:
        """True after `kinko operator seal` until an explicit unseal: auto-unseal stays off meanwhile."""
        return self._store.get_meta(M_OPERATOR_SEALED) is not None

    def barrier(self) -> Barrier:
        barrier = self._barrier
        if barrier is None:
            if not self.initialized:
                raise NotInitialized()
            raise Sealed()
        return barrier

    def write_barrier(self) -> Barrier:
        """The barrier to seal new records with: its newest term is the stored keyring's, even when another
        process (another server on the same database) rotated since this one unsealed. One meta read."""
        barrier = self.barrier()
        if self._store.get_meta(M_KEYRING) != self._keyring_blob:
            self.reload_keyring()
            barrier = self.barrier()
        return barrier

    def record_mac(self) -> RecordMac:
        """Integrity tags for tokens, policies and Kubernetes auth documents (keyed from the keyring: unsealed only)."""
        barrier = self.barrier()
        cached = self._record_mac
        if cached is None or cached[0] is not barrier:
            cached = self._record_mac = (barrier, RecordMac.from_keyring(barrier.keyring, self.vault_id()))
        return cached[1]

    # -- init ----------------------------------------------------------------------------------------------
    def init(
        self, *, seal: SealType = SealType.SHAMIR, shares: int = 5, threshold: int = 3,
        passphrase: str | None = None, key_file: Path | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS, purge_protection: bool = False,
    ) -> InitResult:
        if self.initialized:
            raise AlreadyInitialized("vault is already initialized")
        check_init_options(seal, shares, threshold, retention_days)
        config, unseal_key, share_texts = self._new_unseal_key(seal, shares, threshold, passphrase, key_file)
        vault_id, root_key, keyring = str(uuid.uuid4()), os.urandom(KEY_BYTES), Keyring.new()
        root_token = new_token(ROOT_PREFIX)
        items = {
            M_VAULT_ID: vault_id.encode(), M_SEAL: config.to_bytes(),
            M_ROOT: wrap_root_key(unseal_key, root_key, vault_id),
            M_KEYRING: seal_with_key(root_key, keyring.to_bytes(), _keyring_aad(vault_id)),
            M_POLICY: RetentionSettings(retention_days, purge_protection).to_bytes(),
            ROOT_TOKEN_META: token_hash(root_token).encode(),
        }
        # Tagged so that only this hash is ever adopted as the root token (kinko.access.tokens).
        macs = RecordMac.from_keyring(keyring, vault_id)
        items[ROOT_TOKEN_MAC_META] = macs.tag("root_token", items[ROOT_TOKEN_META].decode()).encode()
        # A new vault has no rows written before integrity tags: none is ever adopted untagged.
        items[LIFECYCLE_TAGS_MARKER] = macs.marker(LIFECYCLE_TAGS_MARKER).encode()
        if share_texts:
            items[M_SHARE_TAGS] = _share_tags(vault_id, share_texts)
        if key_file is not None:
            items[M_KEY_FILE] = str(key_file.resolve()).encode()
        if seal is SealType.KEY_FILE and key_file is not None:
            write_key_file(key_file, unseal_key)
        try:
            self._store.init_meta(items)
        except BaseException:
            if seal is SealType.KEY_FILE and key_file is not None:
                key_file.unlink(missing_ok=True)
            raise
        return InitResult(vault_id, root_token, tuple(share_texts), config.threshold,
                          key_file if seal is SealType.KEY_FILE else None)

    @staticmethod
    def _new_unseal_key(
        seal: SealType, shares: int, threshold: int, passphrase: str | None, key_file: Path | None
    ) -> tuple[SealConfig, bytes, list[str]]:
        if seal is SealType.SHAMIR:
            check_shamir_params(shares, threshold)
            key = os.urandom(UNSEAL_KEY_BYTES)
            if shares == 1:
                texts = [encode_single_share(key)]
            else:
                texts = [encode_share(p) for p in split(key, shares, threshold)]
            return SealConfig(SealType.SHAMIR, shares, threshold), key, texts
        if seal is SealType.PASSPHRASE:
            if passphrase is None:
                raise InvalidInput("a passphrase seal needs a passphrase")
            config = SealConfig.for_passphrase()
            return config, passphrase_key(config, passphrase), []
        if key_file is None:
            raise InvalidInput("a key-file seal needs --key-file PATH")
        if key_file.exists():
            raise InvalidInput(f"key file {str(key_file)!r} already exists; refusing to overwrite it")
        return SealConfig(SealType.KEY_FILE), os.urandom(UNSEAL_KEY_BYTES), []

    # -- unseal / seal -----------------------------------------------------------------------------------
    def precheck(self, seal: SealType, share: str | None = None) -> None:
        """Refuse material that cannot be right (wrong method, malformed share) without touching progress."""
        config = self._unseal_config(seal)
        if share is None:
            return
        raw = decode_share(share)
        if config.shares == 1:
            decode_single_share(share)
        elif len(raw) != UNSEAL_KEY_BYTES + SHARE_OVERHEAD:
            # Checked before the collector sees it: a wrong-length share used to reset everyone's progress.
            raise InvalidShare("share is malformed or mistyped")
        self._check_share_tag(raw)  # a share of another vault is refused alone, before it can spoil the others
        if config.shares > 1 and self._collector is not None:
            self._collector.check(raw)  # a repeated share must not reset everyone's progress either

    def _check_share_tag(self, raw: bytes) -> None:
        stored = self._store.get_meta(M_SHARE_TAGS)
        if stored is None:
            return  # initialised before share tags: a wrong share shows only when the shares are combined
        try:
            expected = json.loads(stored).get(str(raw[-1]))
        except (ValueError, AttributeError):
            raise CorruptVault("the stored share tags are unreadable") from None
        if not isinstance(expected, str) or not hmac.compare_digest(expected, share_tag(self.vault_id(), raw)):
            raise InvalidShare("this share does not belong to this vault (or is mistyped)")

    def unseal_share(self, share: str, given_at: float | None = None) -> VaultStatus:
        with self._lock:
            config = self._unseal_config(SealType.SHAMIR)
            if self._barrier is None:
                self.precheck(SealType.SHAMIR, share)
                if config.shares == 1:
                    self._open_with(decode_single_share(share))
                else:
                    self._collector = self._collector or ShareCollector(config.threshold)
                    key = self._collector.add(share, given_at)
                    if key is not None:
                        self._open_combined(key)
            return self.status()

    def unseal_passphrase(self, passphrase: str) -> VaultStatus:
        with self._lock:
            config = self._unseal_config(SealType.PASSPHRASE)
            if self._barrier is None:
                self._open_with(passphrase_key(config, passphrase))
            return self.status()

    def unseal_key_file(self, path: Path | None = None) -> VaultStatus:
        with self._lock:
            self._unseal_config(SealType.KEY_FILE)
            if path is None:
                hint = self._store.get_meta(M_KEY_FILE)
                if hint is None:
                    raise UnsealFailed("no key file given and none recorded at init")
                path = Path(hint.decode())
            if self._barrier is None:
                self._open_with(read_key_file(path))
            return self.status()

    def auto_unseal(self) -> bool:
        """Unseal from the recorded key file unless an operator sealed the vault. True if now unsealed."""
        if not self.initialized or self._barrier is not None:
            return self._barrier is not None
        if self.seal_config().type is not SealType.KEY_FILE or self._store.get_meta(M_OPERATOR_SEALED):
            return False
        self.unseal_key_file()
        return True

    def _unseal_config(self, expected: SealType) -> SealConfig:
        config = self.seal_config()
        if config.type is not expected:
            raise InvalidInput(f"this vault unseals with its {config.type.value}, not a {expected.value}")
        return config

    def _open_combined(self, unseal_key: bytes) -> None:
        try:
            self._open_with(unseal_key)
        except UnsealFailed:
            raise SharesDoNotCombine("the shares given do not unseal this vault together; unseal progress reset "
                                     "(give the threshold of shares again)") from None

    def _open_with(self, unseal_key: bytes) -> None:
        vault_id = self.vault_id()
        root_key = unwrap_root_key(unseal_key, self._meta(M_ROOT), vault_id)
        keyring, self._keyring_blob = self._load_keyring(root_key, vault_id)
        self._root_key, self._barrier, self._collector = bytearray(root_key), Barrier(keyring), None
        self._store.delete_meta(M_OPERATOR_SEALED)

    def _load_keyring(self, root_key: bytes, vault_id: str) -> tuple[Keyring, bytes]:
        """The stored keyring, opened, and its stored (wrapped) form."""
        stored = self._meta(M_KEYRING)
        try:
            raw = open_with_key(root_key, stored, _keyring_aad(vault_id))
        except IntegrityError:
            raise CorruptVault("keyring failed authentication") from None
        return Keyring.from_bytes(raw), stored

    def seal(self) -> None:
        with self._lock:
            # Writing the marker into an uninitialised vault would make init refuse it forever.
            self.vault_id()
            self._store.put_meta(M_OPERATOR_SEALED, b"1")
            self.forget()

    def forget(self) -> None:
        """Drop every key from memory (best effort: Python and OpenSSL may hold copies we cannot reach)."""
        with self._lock:
            if self._barrier is not None:
                self._barrier.forget()
                self._barrier.keyring.wipe()
            if self._root_key is not None:
                self._root_key[:] = b"\0" * len(self._root_key)
            self._barrier, self._root_key, self._collector, self._record_mac = None, None, None, None
            self._keyring_blob = None

    # -- keyring -------------------------------------------------------------------------------------------
    def reload_keyring(self) -> None:
        """Pick up terms another process added (a read met a term this process has not seen)."""
        with self._lock:
            if self._root_key is None:
                raise Sealed()
            keyring, self._keyring_blob = self._load_keyring(bytes(self._root_key), self.vault_id())
            self._barrier = Barrier(keyring)

    def rotate(self) -> int:
        """Add a key term atomically (compare-and-swap on the stored keyring so no term is ever lost)."""
        with self._lock:
            if self._root_key is None:
                raise Sealed()
            root_key, vault_id = bytes(self._root_key), self.vault_id()
            for _ in range(20):
                keyring, stored = self._load_keyring(root_key, vault_id)
                term = keyring.add_term()
                wrapped = seal_with_key(root_key, keyring.to_bytes(), _keyring_aad(vault_id))
                if self._store.swap_meta(M_KEYRING, stored, wrapped):
                    self._barrier, self._keyring_blob = Barrier(keyring), wrapped
                    return term
                time.sleep(0.01)
            raise CorruptVault("could not rotate: the keyring kept changing underneath")


def _share_tags(vault_id: str, share_texts: list[str]) -> bytes:
    tags = {str(raw[-1]): share_tag(vault_id, raw) for raw in map(decode_share, share_texts)}
    return json.dumps(tags, sort_keys=True).encode()


def _keyring_aad(vault_id: str) -> bytes:
    return associated_data(["kinko", "keyring", vault_id])
