"""What the Vault's mixins (vault_access, vault_k8s) may rely on from the Vault class they are mixed into."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kinko.core.model import Caller
from kinko.lifecycle import SealState
from kinko.storage.interface import Store


class ServiceParts:
    """Declared here once so each mixin type-checks against the same surface of `kinko.vault.Vault`."""

    _store: Store
    _clock: Callable[[], float]
    _audit: Any
    keys: SealState

    if TYPE_CHECKING:
        def _check(self, caller: Caller, capability: str, path: str, operation: str,
                   data: Mapping[str, Any] | None = None) -> None: ...
