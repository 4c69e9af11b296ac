"""/v1/auth/kubernetes/*: service-account login (HashiCorp Vault's answer shape) and its config/role admin routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import Field

from kinko.api.auth import client_address
from kinko.api.models import Strict
from kinko.api.state import Session, St
from kinko.errors import PermissionDenied

router = APIRouter(prefix="/v1/auth/kubernetes", tags=["auth"])
RoleName = Annotated[str, Path(max_length=64)]
Name = Annotated[str, Field(max_length=253)]


class LoginBody(Strict):
    role: str = Field(max_length=64)
    jwt: str = Field(max_length=16 * 1024)


class ConfigBody(Strict):
    issuer: str | None = Field(None, max_length=1024)
    jwks: str | dict[str, Any] | None = Field(None, description="a JWKS document (object or JSON text)")
    pem_keys: list[Annotated[str, Field(max_length=16 * 1024)]] = Field(default_factory=list, max_length=64)


class RoleBody(Strict):
    service_account_names: list[Name] = Field(max_length=256)
    namespaces: list[Name] = Field(max_length=256)
    audience: str | None = Field(None, max_length=256)
    policies: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=64)
    ttl: int = Field(3600, ge=1, le=32 * 24 * 3600, description="token TTL in seconds")


@router.post("/login")
async def login(body: LoginBody, request: Request, st: St) -> dict[str, Any]:
    """Exchange a service-account JWT for a kinko token. Any failure: 403 permission_denied."""
    client = client_address(request)
    st.limiter.check(client)
    try:
        login = st.vault.login_kubernetes(body.role, body.jwt, remote_addr=client)
    except PermissionDenied:
        st.limiter.failed(client)
        raise
    return {"auth": login.to_auth()}


@router.post("/config")
async def write_config(body: ConfigBody, session: Session) -> dict[str, Any]:
    jwks: Any = body.jwks  # an object or JSON text: the vault normalises either
    return session.configure_kubernetes_auth(issuer=body.issuer, jwks=jwks, pem_keys=body.pem_keys).to_dict()


@router.get("/config")
async def read_config(session: Session) -> dict[str, Any]:
    return session.read_kubernetes_auth_config().to_dict()


@router.get("/role")
async def list_roles(session: Session) -> dict[str, Any]:
    return {"roles": session.list_kubernetes_roles()}


@router.post("/role/{name}")
async def write_role(name: RoleName, body: RoleBody, session: Session) -> dict[str, Any]:
    return session.write_kubernetes_role(
        name, service_account_names=body.service_account_names, namespaces=body.namespaces,
        audience=body.audience, policies=body.policies, ttl=body.ttl).to_dict()


@router.get("/role/{name}")
async def read_role(name: RoleName, session: Session) -> dict[str, Any]:
    return session.read_kubernetes_role(name).to_dict()


@router.delete("/role/{name}", status_code=204)
async def delete_role(name: RoleName, session: Session) -> Response:
    session.delete_kubernetes_role(name)
    return Response(status_code=204)
