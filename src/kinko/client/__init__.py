"""The HTTP side of kinko: `Client` (the /v1 API) and `RemoteVault` (a `VaultSession` over it)."""

from kinko.client.http import Client, error_from
from kinko.client.remote import RemoteVault

__all__ = ["Client", "RemoteVault", "error_from"]
