"""The ASGI application factory: the FastAPI /v1 app inside the request guard (kinko.api.middleware)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from kinko.api import errors, routes
from kinko.api.auth import FailureLimiter
from kinko.api.cluster import UnsealBroadcast
from kinko.api.compat import azure_keyvault, vault_policies
from kinko.api.compat.vault_kv2 import DEFAULT_MOUNTS, check_mounts, kv_router
from kinko.api.compat.vault_sys import sys_router
from kinko.api.compat.vault_transit import transit_router
from kinko.api.hot_read import HotReads
from kinko.api.middleware import RequestGuard
from kinko.api.state import ApiState
from kinko.vault import Vault

DEFAULT_MAX_BODY = 2 * 1024 * 1024


def create_app(
    vault: Vault, *, broadcast: UnsealBroadcast | None = None, limiter: FailureLimiter | None = None,
    max_body: int = DEFAULT_MAX_BODY, close_vault: bool = False, extra_routers: Sequence[APIRouter] = (),
    kv_mounts: Mapping[str, str] = DEFAULT_MOUNTS, azure_prefix: str | None = None,
) -> ASGIApp:
    """One worker's app over an open vault. `close_vault`: close it when the server shuts down. `kv_mounts`:
    Vault KV v2 mount name -> kinko path prefix (kinko.api.compat.vault_kv2).

    `extra_routers` are mounted beside /v1 (bench/http_native.py adds its hello-world baseline route this way, so
    production servers never serve it). `azure_prefix`: the kinko path Key Vault secret names live under.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if close_vault:
            vault.close()

    app = FastAPI(
        title="kinko", version="1", description="kinko secrets vault, native API",
        openapi_url="/v1/openapi.json", docs_url=None, redoc_url=None, lifespan=lifespan,
        strict_content_type=False,  # the Vault/bao CLI sends JSON bodies without a Content-Type
    )
    state = app.state.kinko = ApiState(vault, broadcast or UnsealBroadcast(), limiter or FailureLimiter())
    errors.install(app)
    app.include_router(vault_policies.router())  # before the native routes: `sys/policies/acl` is not a name
    routes.install(app)
    mounts = state.kv_mounts = check_mounts(kv_mounts)
    app.include_router(sys_router(mounts))
    for name, prefix in mounts.items():
        app.include_router(kv_router(name, prefix))
    app.include_router(transit_router())
    app.state.vault_only_prefixes = (*(f"/v1/{name}/" for name in mounts), "/v1/transit/",
                                     *vault_policies.VAULT_ONLY_PREFIXES)
    app.state.vault_only_paths = vault_policies.VAULT_ONLY_PATHS
    azure_keyvault.install(app, prefix=azure_prefix)
    for router in extra_routers:
        app.include_router(router)
    _document_auth(app)
    return RequestGuard(HotReads(app, state, mounts), max_body, vault)


def _document_auth(app: FastAPI) -> None:
    """Describe the token header in OpenAPI (checked by one plain dependency, not a FastAPI security class)."""
    from fastapi.openapi.utils import get_openapi

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            doc.setdefault("components", {})["securitySchemes"] = {
                "kinkoToken": {"type": "apiKey", "in": "header", "name": "X-Kinko-Token"},
                "vaultToken": {"type": "apiKey", "in": "header", "name": "X-Vault-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
