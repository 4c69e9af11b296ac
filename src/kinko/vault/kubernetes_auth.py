"""Kubernetes service-account auth (config, roles, login): a component owned by `Vault`.

Config and roles are public data (public keys, names, policy names), kept as JSON in the store's meta table:
`k8s_auth/config` and `k8s_auth/roles` (every role in one document, updated by compare-and-swap so two
processes writing roles at once both win). Each value is `<integrity tag>\n<json>` (kinko.access.integrity):
a document written into the database file directly, or edited there, is treated as absent (login refused).
Authorization paths:

* `sys/auth/kubernetes/config` — `read`, `update` (write the issuer and keys).
* `sys/auth/kubernetes/role/<name>` — `read`, `create` / `update` (write), `delete`;
  `sys/auth/kubernetes/role` — `list`. Writing a role that grants policies the writer does not hold needs
  `sudo` there instead (the rule `create_token` applies: a role is a standing grant of its policies).

`login` takes no caller: it IS authentication. Every failure (unknown role, bad JWT, a service
account the role does not bind) is the same PermissionDenied to the client, and each attempt is audited; the
reason (wrong namespace, expired, bad signature, ...) goes only to the audit record's outcome ("denied: <reason>")
and a server log line, never the JWT.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from kinko.access.identity import (
    KubernetesAuthConfig,
    KubernetesRole,
    ServiceAccount,
    make_config,
    make_role,
    validate_role_name,
    verify_service_account_jwt,
)
from kinko.access.tokens import TokenManager, TokenRequest
from kinko.core.model import Caller
from kinko.errors import InvalidInput, KinkoError, NotFound, PermissionDenied
from kinko.storage.interface import Store
from kinko.vault.access import grant_capability
from kinko.vault.guard import Guard
from kinko.vault.seal_state import SealState
from kinko.vault.types import Login

log = logging.getLogger("kinko.auth")

M_CONFIG = "k8s_auth/config"
M_ROLES = "k8s_auth/roles"
CONFIG_PATH = "sys/auth/kubernetes/config"
ROLE_PATH = "sys/auth/kubernetes/role"
LOGIN_PATH = "auth/kubernetes/login"
MAX_ROLES = 1000


class KubernetesAuth:
    """Kubernetes service-account auth. Admin operations pass the guard (authorize + audit) first."""

    def __init__(self, store: Store, seal: SealState, guard: Guard, tokens: TokenManager,
                 clock: Callable[[], float]) -> None:
        self._store, self._seal, self._guard, self._tokens, self._clock = store, seal, guard, tokens, clock

    # -- config ---------------------------------------------------------------------------------------------
    def configure(self, caller: Caller, *, issuer: str | None, jwks: str | None,
                                  pem_keys: Sequence[str] = ()) -> KubernetesAuthConfig:
        """Set the expected issuer and the public keys service-account tokens are verified against."""
        config = make_config(issuer=issuer, jwks=jwks, pem_keys=pem_keys)
        self._guard.check(caller, "update", CONFIG_PATH, "k8s_auth.config.write")
        self._seal.barrier()
        self._store.put_meta(M_CONFIG, self._tagged(M_CONFIG, config.to_json()))
        return config

    def read_config(self, caller: Caller) -> KubernetesAuthConfig:
        self._guard.check(caller, "read", CONFIG_PATH, "k8s_auth.config.read")
        self._seal.barrier()
        config = self._k8s_config()
        if config is None:
            raise NotFound("Kubernetes auth is not configured; run `kinko auth kubernetes config`")
        return config

    def _k8s_config(self) -> KubernetesAuthConfig | None:
        body = self._verified(M_CONFIG, self._store.get_meta(M_CONFIG))
        return None if body is None else KubernetesAuthConfig.from_json(body)

    # -- integrity of the stored documents ------------------------------------------------------------------
    def _tagged(self, key: str, body: bytes) -> bytes:
        return self._seal.record_mac().tag("k8s_auth", key, body.decode()).encode() + b"\n" + body

    def _verified(self, key: str, raw: bytes | None) -> bytes | None:
        """The JSON body of a stored document, or None if absent or its tag does not verify."""
        if raw is None:
            return None
        tag, _, body = raw.partition(b"\n")
        text = body.decode(errors="replace")
        return body if self._seal.record_mac().verify(tag.decode(errors="replace"), "k8s_auth", key, text,
                                                 label=key) else None

    # -- roles ----------------------------------------------------------------------------------------------
    def _k8s_roles(self) -> tuple[bytes | None, dict[str, dict[str, Any]]]:
        """(the stored bytes for compare-and-swap, the roles); a tampered document reads as no roles."""
        raw = self._store.get_meta(M_ROLES)
        body = self._verified(M_ROLES, raw)
        return raw, ({} if body is None else json.loads(body))

    def _swap_roles(self, change: Callable[[dict[str, dict[str, Any]]], None]) -> None:
        for _ in range(50):  # optimistic concurrency: reread and reapply if another writer got in first
            raw, roles = self._k8s_roles()
            change(roles)
            if self._store.swap_meta(M_ROLES, raw, self._tagged(M_ROLES, json.dumps(roles, sort_keys=True).encode())):
                return
        raise KinkoError("Kubernetes roles are being changed concurrently; try again")

    def write_role(self, caller: Caller, name: str, *, service_account_names: Sequence[str],
                   namespaces: Sequence[str], audience: str | None, policies: Sequence[str],
                   ttl: int) -> KubernetesRole:
        """Create or replace a role."""
        role = make_role(name, service_account_names=service_account_names, namespaces=namespaces,
                         audience=audience, policies=policies, ttl=ttl)
        exists = name in self._k8s_roles()[1]
        # A role hands its policies to whoever logs in, so writing one is granting them: same rule as tokens.
        capability = grant_capability(caller, role.policies, "update" if exists else "create")
        self._guard.check(caller, capability, f"{ROLE_PATH}/{name}", "k8s_auth.role.write")
        self._seal.barrier()

        def put(roles: dict[str, dict[str, Any]]) -> None:
            if name not in roles and len(roles) >= MAX_ROLES:
                raise InvalidInput(f"at most {MAX_ROLES} Kubernetes roles")
            roles[name] = role.to_dict()

        self._swap_roles(put)
        return role

    def read_role(self, caller: Caller, name: str) -> KubernetesRole:
        validate_role_name(name)
        self._guard.check(caller, "read", f"{ROLE_PATH}/{name}", "k8s_auth.role.read")
        self._seal.barrier()
        role = self._k8s_roles()[1].get(name)
        if role is None:
            raise NotFound(f"no Kubernetes role named {name!r}")
        return KubernetesRole.from_dict(role)

    def list_roles(self, caller: Caller) -> list[str]:
        self._guard.check(caller, "list", ROLE_PATH, "k8s_auth.role.list")
        self._seal.barrier()
        return sorted(self._k8s_roles()[1])

    def delete_role(self, caller: Caller, name: str) -> None:
        """Delete a role (tokens it already issued live on until they expire or are revoked)."""
        validate_role_name(name)
        self._guard.check(caller, "delete", f"{ROLE_PATH}/{name}", "k8s_auth.role.delete")
        self._seal.barrier()

        def drop(roles: dict[str, dict[str, Any]]) -> None:
            if roles.pop(name, None) is None:
                raise NotFound(f"no Kubernetes role named {name!r}")

        self._swap_roles(drop)

    # -- login ----------------------------------------------------------------------------------------------
    def login(self, role: str, jwt: str, *, remote_addr: str | None = None) -> Login:
        """Exchange a service-account JWT for a kinko token with the role's policies and TTL."""
        self._seal.barrier()  # sealed: 503 before anything is looked at
        path = f"{LOGIN_PATH}/{role}" if isinstance(role, str) and len(role) <= 64 else LOGIN_PATH
        try:
            bound, account = self._verify_login(jwt, role)
        except PermissionDenied as exc:
            reason = getattr(exc, "login_reason", None) or _jwt_reason(exc)
            log.warning("kubernetes login denied for role %r from %s: %s", path.rpartition("/")[2],
                        remote_addr or "local", reason)
            self._guard.record(Caller("anonymous", remote_addr=remote_addr), "auth.kubernetes.login", path,
                               f"denied: {reason}")
            raise PermissionDenied() from None  # the client learns nothing about why
        caller = Caller(account.subject, frozenset(bound.policies), remote_addr=remote_addr)
        self._guard.record(caller, "auth.kubernetes.login", path, "allowed")  # fail closed: no record, no token
        metadata = {"role": bound.name, "service_account_namespace": account.namespace,
                    "service_account_name": account.name}
        if account.uid:
            metadata["service_account_uid"] = account.uid[:128]
        # max_ttl = the role's ttl: renewing never keeps a pod's token alive past what the role allows.
        request = TokenRequest(list(bound.policies), ttl=float(bound.ttl), max_ttl=float(bound.ttl),
                               display_name=f"k8s-{account.namespace}-{account.name}"[:128], metadata=metadata)
        token, info = self._tokens.create(request, None)
        return Login(token, info.accessor, info.policies, dict(info.metadata),
                     int(info.ttl) if info.ttl is not None else 0, info.renewable)

    def _verify_login(self, jwt: object, role: object) -> tuple[KubernetesRole, ServiceAccount]:
        config = self._k8s_config()
        doc = self._k8s_roles()[1].get(role) if isinstance(role, str) else None
        if config is None or doc is None:
            raise _denied("kubernetes auth is not configured" if config is None else "unknown role")
        bound = KubernetesRole.from_dict(doc)
        account = verify_service_account_jwt(jwt, config, audience=bound.audience, now=self._clock())
        if not bound.binds(account):
            wrong_ns = "*" not in bound.namespaces and account.namespace not in bound.namespaces
            raise _denied("wrong namespace" if wrong_ns else "wrong service account")
        return bound, account


def _denied(reason: str) -> PermissionDenied:
    """The uniform PermissionDenied, carrying the reason for the audit record and log only."""
    exc = PermissionDenied()
    exc.login_reason = reason  # type: ignore[attr-defined]
    return exc


#: The identity layer's internal ValueError messages (fixed texts, never token content) -> audit reasons.
_VALUE_REASONS = {"expired": "expired", "not yet valid": "not yet valid", "issued in the future": "not yet valid",
                  "algorithm not allowed": "algorithm not allowed", "malformed token": "malformed token",
                  "no configured key verifies the signature": "bad signature",
                  "no service-account identity in the token": "no service-account identity",
                  "sub and kubernetes.io disagree": "sub and kubernetes.io disagree"}


def _jwt_reason(exc: BaseException) -> str:
    """Why verify_service_account_jwt refused: it raises PermissionDenied `from None`, which keeps the
    original error as __context__ (only the traceback display is suppressed)."""
    import jwt

    cause = exc.__context__
    if isinstance(cause, jwt.InvalidAudienceError) or (
            isinstance(cause, jwt.MissingRequiredClaimError) and cause.claim == "aud"):
        return "wrong audience"
    if isinstance(cause, jwt.InvalidIssuerError) or (
            isinstance(cause, jwt.MissingRequiredClaimError) and cause.claim == "iss"):
        return "wrong issuer"
    if isinstance(cause, jwt.MissingRequiredClaimError):
        return f"missing claim {cause.claim!r}"[:64]
    if isinstance(cause, jwt.InvalidSignatureError):
        return "bad signature"
    if isinstance(cause, jwt.PyJWTError):
        return "malformed token"
    if isinstance(cause, ValueError) and str(cause) in _VALUE_REASONS:
        return _VALUE_REASONS[str(cause)]
    return "invalid token"
