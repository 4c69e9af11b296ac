"""The Vault's lifecycle operations (status, init, unseal, seal, rotate), mixed into kinko.vault.Vault.

Interfaces call these instead of reaching into `Vault.keys` (the SealState that holds the key material).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kinko.core.model import Caller
from kinko.crypto.seal import SealType
from kinko.lifecycle import InitResult, VaultStatus
from kinko.service_parts import ServiceParts


class LifecycleMixin(ServiceParts):
    """Seal state as the interfaces see it. Operator actions go through `_check` (authorize + audit)."""

    def status(self) -> VaultStatus:
        return self.keys.status()

    @property
    def initialized(self) -> bool:
        return self.keys.initialized

    def operator_sealed(self) -> bool:
        """True after an operator sealed the vault, until an explicit unseal (auto-unseal stays off)."""
        return self.keys.operator_sealed()

    def require_unsealed(self) -> None:
        """Raise Sealed / NotInitialized unless the vault can serve secrets now."""
        self.keys.barrier()

    def init(self, **options: Any) -> InitResult:
        return self.keys.init(**options)

    def precheck_unseal(self, seal: SealType, share: str | None = None) -> None:
        """Refuse unseal material that cannot be right (malformed share, wrong method) without touching progress."""
        self.keys.precheck(seal, share)

    def unseal(self, *, share: str | None = None, passphrase: str | None = None,
               key_file: Path | None = None) -> VaultStatus:
        if share is not None:
            return self.keys.unseal_share(share)
        if passphrase is not None:
            return self.keys.unseal_passphrase(passphrase)
        return self.keys.unseal_key_file(key_file)

    def seal(self, caller: Caller) -> None:
        self._check(caller, "sudo", "sys/seal", "seal")
        self.keys.seal()

    def drop_keys(self) -> None:
        """Forget every key and unseal progress in this process (another worker sealed); no operator marker."""
        self.keys.forget()

    def rotate(self, caller: Caller) -> int:
        self._check(caller, "sudo", "sys/rotate", "rotate")
        return self.keys.rotate()

    def close(self) -> None:
        self.keys.forget()
        self._store.close()
