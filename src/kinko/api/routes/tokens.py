"""/v1/auth/token routes: create, lookup(-self), renew(-self), revoke, revoke-accessor, list accessors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from kinko.api.models import Strict
from kinko.api.state import SelfSession, Session
from kinko.errors import InvalidInput

router = APIRouter(prefix="/v1/auth/token", tags=["auth"])
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


@router.post("/create")
async def create_token(body: CreateBody, session: Session) -> dict[str, Any]:
    """A child of the calling token. The new token is in the answer once and never again."""
    token, info = session.create_token(
        policies=body.policies, ttl=body.ttl, max_ttl=body.max_ttl, num_uses=body.num_uses,
        display_name=body.display_name, renewable=body.renewable, metadata=body.metadata)
    return {"token": token, **info.to_dict()}


@router.get("/lookup-self")
async def lookup_self(session: SelfSession) -> dict[str, Any]:
    return {"subject": session.caller.subject, **session.lookup_token().to_dict()}


@router.post("/lookup")
async def lookup(body: TargetBody, session: Session) -> dict[str, Any]:
    return session.lookup_token(body.token, accessor=body.accessor).to_dict()


@router.post("/renew")
async def renew(body: RenewBody, session: Session) -> dict[str, Any]:
    return session.renew_token(body.token, accessor=body.accessor, increment=body.increment).to_dict()


@router.post("/renew-self")
async def renew_self(body: RenewBody, session: SelfSession) -> dict[str, Any]:
    """Renew the calling token (never another: `token` / `accessor` are refused here). Spends no use."""
    if body.token is not None or body.accessor is not None:
        raise InvalidInput("renew-self renews the calling token; use /renew for another token")
    return session.renew_token(increment=body.increment).to_dict()


@router.post("/revoke")
async def revoke(body: TargetBody, session: Session) -> dict[str, Any]:
    """Revoke `token` (default: the caller's own) and all its children."""
    if body.accessor is not None:
        return {"revoked": session.revoke_accessor(body.accessor)}
    return {"revoked": session.revoke_token(body.token)}


@router.post("/revoke-accessor")
async def revoke_accessor(body: AccessorBody, session: Session) -> dict[str, Any]:
    return {"revoked": session.revoke_accessor(body.accessor)}


@router.get("/accessors")
async def list_tokens(session: Session) -> dict[str, Any]:
    return {"tokens": [i.to_dict() for i in session.list_tokens()]}
