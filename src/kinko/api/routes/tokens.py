"""/v1/auth/token routes: create, lookup(-self, -accessor), renew(-self, -accessor), revoke(-self, -accessor),
list accessors. Answers carry kinko's fields and Vault's (`auth{...}` / `data{...}`), so kinko's client, hvac and
the `vault`/`bao` CLI all read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from kinko.api.compat.vault_shapes import envelope
from kinko.api.compat.vault_tokens import auth_block, lookup_data, optional_duration, refuse_unsupported
from kinko.api.models import Strict
from kinko.api.routing import routes
from kinko.api.state import SelfSession, Session
from kinko.errors import InvalidInput, NotFound
from kinko.vault import DEFAULT_TTL, TokenInfo

router = APIRouter(prefix="/v1/auth/token", tags=["auth"],
                   strict_content_type=False)  # the Vault/bao CLI sends JSON bodies without a Content-Type
#: Vault takes POST and PUT alike for writes; the bao/vault CLI sends PUT for renew and revoke.
WRITE = ("POST", "PUT")
MAX_SECONDS = 10 * 365 * 86400
Duration = float | str | None
PolicyName = Annotated[str, Field(max_length=64)]


class CreateBody(Strict):
    policies: list[PolicyName] | None = Field(None, max_length=64)
    ttl: Duration = None
    max_ttl: Duration = None
    num_uses: int = Field(0, ge=0, le=2**31 - 1)
    display_name: str = Field("", max_length=128)
    renewable: bool = True
    metadata: dict[str, str] | None = None
    # Vault's names and options (the CLI sends every one, empty when not given)
    meta: dict[str, str] | None = None
    explicit_max_ttl: Duration = None
    no_parent: bool = False
    no_default_policy: bool = False
    period: Duration = None
    type: str | None = Field(None, max_length=32)
    entity_alias: str | None = Field(None, max_length=256)
    id: str | None = Field(None, max_length=512)


class TargetBody(Strict):
    token: str | None = Field(None, max_length=512)
    accessor: str | None = Field(None, max_length=128)


class RenewBody(TargetBody):
    increment: Duration = None


class AccessorBody(Strict):
    accessor: str = Field(max_length=128)


def seconds(value: Duration, name: str) -> float | None:
    parsed = optional_duration(value, name)
    if parsed is not None and not 0 < parsed <= MAX_SECONDS:
        raise InvalidInput(f"{name} must be between 1 second and 10 years")
    return parsed


def token_answer(request: Request, info: TokenInfo, *, token: str | None = None) -> dict[str, Any]:
    """kinko's fields at the top (its client reads them), Vault's envelope and `auth` beside them."""
    kinko = {"token": token, **info.to_dict()} if token is not None else info.to_dict()
    return {**envelope(request, None, auth=auth_block(info, token)), **kinko}


def lookup_answer(request: Request, info: TokenInfo, **extra: Any) -> dict[str, Any]:
    return {**envelope(request, lookup_data(info)), **extra, **info.to_dict()}


@routes(router, "/create", WRITE)
async def create_token(body: CreateBody, request: Request, session: Session) -> dict[str, Any]:
    """A child of the calling token. The new token is in the answer once and never again."""
    refuse_unsupported(body.model_dump())
    ttl = seconds(body.ttl, "ttl")
    if ttl is None and not ("ttl" in body.model_fields_set and body.ttl is None):
        ttl = DEFAULT_TTL  # absent or "" (the CLI's "not given"); an explicit null asks for no expiry
    token, info = session.create_token(
        policies=body.policies or [], ttl=ttl,
        max_ttl=seconds(body.max_ttl, "max_ttl") or seconds(body.explicit_max_ttl, "explicit_max_ttl"),
        num_uses=body.num_uses, display_name=body.display_name or "token", renewable=body.renewable,
        metadata=body.metadata if body.metadata is not None else body.meta)
    return token_answer(request, info, token=token)


@router.get("/lookup-self")
async def lookup_self(request: Request, session: SelfSession) -> dict[str, Any]:
    return lookup_answer(request, session.lookup_token(), subject=session.caller.subject)


@routes(router, "/lookup", WRITE)
async def lookup(body: TargetBody, request: Request, session: Session) -> dict[str, Any]:
    return lookup_answer(request, session.lookup_token(body.token, accessor=body.accessor))


@routes(router, "/lookup-accessor", WRITE)
async def lookup_accessor(body: AccessorBody, request: Request, session: Session) -> dict[str, Any]:
    """Vault's route (kinko's client looks up through /lookup): an accessor naming no live token is Vault's 400
    "invalid accessor"."""
    try:
        return lookup_answer(request, session.lookup_token(accessor=body.accessor))
    except NotFound:
        raise InvalidInput("invalid accessor") from None


@routes(router, "/renew", WRITE)
async def renew(body: RenewBody, request: Request, session: Session) -> dict[str, Any]:
    info = session.renew_token(body.token, accessor=body.accessor, increment=seconds(body.increment, "increment"))
    return token_answer(request, info)


@routes(router, "/renew-accessor", WRITE)
async def renew_accessor(body: RenewBody, request: Request, session: Session) -> dict[str, Any]:
    if body.accessor is None or body.token is not None:
        raise InvalidInput("renew-accessor takes an accessor")
    answer: dict[str, Any] = await renew(body, request, session)
    return answer


@routes(router, "/renew-self", WRITE)
async def renew_self(request: Request, session: SelfSession, body: RenewBody | None = None) -> dict[str, Any]:
    """Renew the calling token (never another: `token` / `accessor` are refused here). Spends no use."""
    body = body or RenewBody(token=None, accessor=None)
    if body.token is not None or body.accessor is not None:
        raise InvalidInput("renew-self renews the calling token; use /renew for another token")
    return token_answer(request, session.renew_token(increment=seconds(body.increment, "increment")))


@routes(router, "/revoke", WRITE)
async def revoke(body: TargetBody, session: Session) -> dict[str, Any]:
    """Revoke `token` (default: the caller's own) and all its children."""
    if body.accessor is not None:
        return {"revoked": session.revoke_accessor(body.accessor)}
    return {"revoked": session.revoke_token(body.token)}


@routes(router, "/revoke-self", WRITE)  # `bao token revoke -self` sends PUT
async def revoke_self(session: SelfSession) -> Response:
    session.revoke_token()
    return Response(status_code=204)


@routes(router, "/revoke-accessor", WRITE)
async def revoke_accessor(body: AccessorBody, session: Session) -> dict[str, Any]:
    return {"revoked": session.revoke_accessor(body.accessor)}


@router.get("/accessors")
async def list_tokens(session: Session) -> dict[str, Any]:
    return {"tokens": [i.to_dict() for i in session.list_tokens()]}


@routes(router, "/accessors", ["LIST"])
async def list_accessors_vault(request: Request, session: Session) -> dict[str, Any]:
    """Vault's `LIST auth/token/accessors` (keys only)."""
    return envelope(request, {"keys": [i.accessor for i in session.list_tokens()]})

