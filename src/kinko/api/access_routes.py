"""/v1/auth/token/* and /v1/sys/policies, /v1/sys/audit/{hash,verify}: token, policy and audit operations over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from pydantic import Field

from kinko.access.tokens import uses_not_consumed
from kinko.api.auth import caller_for
from kinko.api.models import Strict
from kinko.api.native import St, Who, state
from kinko.core.model import Caller
from kinko.errors import InvalidInput

tokens = APIRouter(prefix="/v1/auth/token", tags=["auth"])
policies = APIRouter(prefix="/v1/sys", tags=["sys"])
PolicyName = Annotated[str, Path(max_length=64)]
Seconds = Annotated[float | None, Field(None, gt=0, le=10 * 365 * 86400)]


class CreateBody(Strict):
    policies: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=64)
    ttl: Seconds = 24 * 3600.0
    max_ttl: Seconds = None
    num_uses: int = Field(0, ge=0, le=2**31 - 1)
    display_name: str = Field("token", max_length=128)
    renewable: bool = True
    metadata: dict[str, str] | None = None


class TargetBody(Strict):
    token: str | None = Field(None, max_length=512)
    accessor: str | None = Field(None, max_length=128)


class RenewBody(TargetBody):
    increment: Seconds = None


class AccessorBody(Strict):
    accessor: str = Field(max_length=128)


class PolicyBody(Strict):
    rules: list[dict[str, Any]] = Field(max_length=256)


class HashBody(Strict):
    value: str = Field(max_length=1024 * 1024)


async def _self_caller(request: Request) -> Caller:
    """Like `Who`, but a use-limited token is not spent by looking at or renewing itself (as in Vault)."""
    st = await state(request)
    st.vault.require_unsealed()  # Sealed (503) before any token is looked at, like `authorized`
    with uses_not_consumed():
        return caller_for(request, st.vault, st.limiter)


SelfWho = Annotated[Caller, Depends(_self_caller)]


# -- tokens ---------------------------------------------------------------------------------------------------
@tokens.post("/create")
async def create_token(body: CreateBody, st: St, who: Who) -> dict[str, Any]:
    """A child of the calling token. The new token is in the answer once and never again."""
    token, info = st.vault.create_token(
        who, policies=body.policies, ttl=body.ttl, max_ttl=body.max_ttl, num_uses=body.num_uses,
        display_name=body.display_name, renewable=body.renewable, metadata=body.metadata)
    return {"token": token, **info.to_dict()}


@tokens.get("/lookup-self")
async def lookup_self(st: St, who: SelfWho) -> dict[str, Any]:
    return {"subject": who.subject, **st.vault.lookup_token(who).to_dict()}


@tokens.post("/lookup")
async def lookup(body: TargetBody, st: St, who: Who) -> dict[str, Any]:
    return st.vault.lookup_token(who, body.token, accessor=body.accessor).to_dict()


@tokens.post("/renew")
async def renew(body: RenewBody, st: St, who: Who) -> dict[str, Any]:
    return st.vault.renew_token(who, body.token, accessor=body.accessor, increment=body.increment).to_dict()


@tokens.post("/renew-self")
async def renew_self(body: RenewBody, st: St, who: SelfWho) -> dict[str, Any]:
    """Renew the calling token (never another: `token` / `accessor` are refused here). Spends no use."""
    if body.token is not None or body.accessor is not None:
        raise InvalidInput("renew-self renews the calling token; use /renew for another token")
    return st.vault.renew_token(who, increment=body.increment).to_dict()


@tokens.post("/revoke")
async def revoke(body: TargetBody, st: St, who: Who) -> dict[str, Any]:
    """Revoke `token` (default: the caller's own) and all its children."""
    if body.accessor is not None:
        return {"revoked": st.vault.revoke_accessor(who, body.accessor)}
    return {"revoked": st.vault.revoke_token(who, body.token)}


@tokens.post("/revoke-accessor")
async def revoke_accessor(body: AccessorBody, st: St, who: Who) -> dict[str, Any]:
    return {"revoked": st.vault.revoke_accessor(who, body.accessor)}


@tokens.get("/accessors")
async def list_tokens(st: St, who: Who) -> dict[str, Any]:
    return {"tokens": [i.to_dict() for i in st.vault.list_tokens(who)]}


# -- policies and audit ---------------------------------------------------------------------------------------
@policies.get("/policies")
async def list_policies(st: St, who: Who) -> dict[str, Any]:
    return {"policies": st.vault.list_policies(who)}


@policies.get("/policies/{name}")
async def read_policy(name: PolicyName, st: St, who: Who) -> dict[str, Any]:
    return st.vault.read_policy(who, name).to_dict()


@policies.put("/policies/{name}")
async def write_policy(name: PolicyName, body: PolicyBody, st: St, who: Who) -> dict[str, Any]:
    return st.vault.write_policy(who, {"name": name, "rules": body.rules}, name=name).to_dict()


@policies.delete("/policies/{name}", status_code=204)
async def delete_policy(name: PolicyName, st: St, who: Who) -> Response:
    st.vault.delete_policy(who, name)
    return Response(status_code=204)


@policies.post("/audit/hash")
async def audit_hash(body: HashBody, st: St, who: Who) -> dict[str, str]:
    """The HMAC the audit log would record for `value` (sudo: it is an oracle for guesses)."""
    return {"hash": st.vault.audit_hash(who, body.value)}


@policies.post("/audit/verify")
async def audit_verify(st: St, who: Who) -> dict[str, Any]:
    """Check the server's own audit file with the vault's chain key (sudo). Never takes a path: no file oracle."""
    return {"file": "server audit file", **st.vault.audit_verify(who).to_dict()}


def install(app: FastAPI) -> None:
    app.include_router(tokens)
    app.include_router(policies)
