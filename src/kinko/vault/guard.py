"""The gate every vault operation passes: authorize, then audit (fail closed: no audit record, no operation)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from kinko.access.audit import AuditLog
from kinko.core.model import Caller
from kinko.errors import PermissionDenied


class Authorizer(Protocol):
    def __call__(self, caller: Caller, capability: str, path: str) -> bool: ...


class AuditSink(Protocol):
    def __call__(self, caller: Caller, operation: str, path: str, outcome: str,
                 data: Mapping[str, Any] | None = None) -> None: ...


class Guard:
    """Holds the authorizer (policies) and the audit sink; a sink that raises stops the operation."""

    def __init__(self, authorize: Authorizer, audit: AuditSink | None = None) -> None:
        self.authorize = authorize
        self.audit = audit

    def check(self, caller: Caller, capability: str, path: str, operation: str,
              data: Mapping[str, Any] | None = None) -> None:
        """Authorize, then audit the decision; PermissionDenied if refused. `data` values are HMAC'd by the sink."""
        allowed = self.authorize(caller, capability, path)
        audit = self.audit
        if audit is not None:
            outcome = "allowed" if allowed else "denied"
            if data is None:
                audit(caller, operation, path, outcome)
            else:
                audit(caller, operation, path, outcome, data)
        if not allowed:
            raise PermissionDenied()

    def allowed(self, caller: Caller, capability: str, path: str) -> bool:
        """The bare decision, unaudited: for filtering a listing the caller was already allowed to make."""
        return self.authorize(caller, capability, path)

    def record(self, caller: Caller, operation: str, path: str, outcome: str,
               data: Mapping[str, Any] | None = None) -> None:
        """Audit what is not an authorization decision: a response, a refused login or restore, an unseal."""
        audit = self.audit
        if audit is None:
            return
        if data is None:
            audit(caller, operation, path, outcome)
        else:
            audit(caller, operation, path, outcome, data)

    @property
    def audit_file(self) -> Path | None:
        """The audit log's file, when the sink is one."""
        return self.audit.path if isinstance(self.audit, AuditLog) else None

    def policies_changed(self) -> None:
        """A policy was written or deleted here: drop the authorizer's cache now (others see the new revision)."""
        invalidate = getattr(self.authorize, "invalidate", None)
        if invalidate is not None:
            invalidate()
