"""The one error hierarchy: every failure a user can cause has a stable code and an actionable message.

Messages never contain secret values; they name the path, key or rule instead.
"""

from __future__ import annotations


class KinkoError(Exception):
    """Base of every error kinko raises on purpose. `code` is stable and machine-readable."""

    code = "error"
    #: HTTP status an API maps this error to (kept here so the mapping lives in one place).
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class UsageError(KinkoError):
    code = "usage"
    http_status = 400


class InvalidInput(KinkoError):
    """Input that fails validation (a path, an attribute, a typed secret's keys, ...)."""

    code = "invalid_input"
    http_status = 400


class InvalidPath(InvalidInput):
    code = "invalid_path"


class InvalidSecretType(InvalidInput):
    code = "invalid_secret_type"


class TooLarge(InvalidInput):
    code = "too_large"
    http_status = 413


class NotFound(KinkoError):
    code = "not_found"
    http_status = 404


class AlreadyExists(KinkoError):
    code = "already_exists"
    http_status = 409


class VersionConflict(KinkoError):
    """Check-and-set failed: the secret's current version is not the one the caller expected."""

    code = "version_conflict"
    http_status = 409


class VersionUnavailable(KinkoError):
    """The version exists but may not be read now (disabled, not yet valid, expired)."""

    code = "version_unavailable"
    http_status = 403


class SecretDisabled(VersionUnavailable):
    code = "secret_disabled"


class VersionDestroyed(NotFound):
    """The version's value was erased for good (Vault KV v2 `destroy`); its attributes remain."""

    code = "version_destroyed"


class SecretNotYetValid(VersionUnavailable):
    code = "secret_not_yet_valid"


class SecretExpired(VersionUnavailable):
    code = "secret_expired"


class PurgeProtected(KinkoError):
    code = "purge_protected"
    http_status = 403


class Sealed(KinkoError):
    code = "sealed"
    http_status = 503

    def __init__(self, message: str = "vault is sealed; unseal it with `kinko operator unseal`") -> None:
        super().__init__(message)


class NotInitialized(KinkoError):
    code = "not_initialized"
    http_status = 501

    def __init__(self, message: str = "vault is not initialized; run `kinko operator init`") -> None:
        super().__init__(message)


class AlreadyInitialized(KinkoError):
    code = "already_initialized"
    http_status = 400


class UnsealFailed(KinkoError):
    """Wrong share, passphrase or key file. Deliberately does not say which part was wrong."""

    code = "unseal_failed"
    http_status = 400


class InvalidShare(UnsealFailed):
    code = "invalid_share"


class SharesDoNotCombine(UnsealFailed):
    """The threshold of shares was reached but they do not open the vault together. Which one is wrong cannot be
    told (vaults initialised before share tags), so the failure is nobody's in particular: never rate-limited."""


class IntegrityError(KinkoError):
    """Stored data failed authentication (tampered, swapped or corrupt ciphertext or file)."""

    code = "integrity_error"
    http_status = 500


class CorruptVault(IntegrityError):
    code = "corrupt_vault"


class PermissionDenied(KinkoError):
    code = "permission_denied"
    http_status = 403

    def __init__(self, message: str = "permission denied") -> None:
        super().__init__(message)


class ScanError(KinkoError):
    """A scan input that cannot be read at all (not an archive, unreadable file, ...)."""

    code = "scan_error"
    http_status = 400


class StorageError(KinkoError):
    """The vault file could not be written or read for a reason outside kinko (disk, locks, I/O). Nothing was
    changed by the operation that got it; retry when the cause is gone."""

    code = "storage_error"
    http_status = 503


class StorageFull(StorageError):
    code = "storage_full"


class StorageBusy(StorageError):
    code = "storage_busy"


class StorageUnavailable(StorageError):
    """The database server cannot be reached now (down, restarting, refusing connections): 503 until it is back."""

    code = "storage_unavailable"


class AuditFailed(KinkoError):
    """The audit record could not be written, so the request was refused before it took effect."""

    code = "audit_failed"
    http_status = 503


class ServerUnreachable(KinkoError):
    """The client could not talk to the server at all (refused, timed out, bad address). Names the cause."""

    code = "unreachable"
    #: 503 like a sealed server: callers that map status (the CSI provider -> gRPC UNAVAILABLE) retry it.
    http_status = 503


class TLSFailure(ServerUnreachable):
    """The server's TLS certificate was not accepted (unknown CA, self-signed, hostname mismatch)."""

    code = "tls_error"
