"""The native /v1 routes: secrets, versions, attributes, delete/recover/purge, backup/restore and sys.

Handlers are `async def` on purpose: vault calls are short SQLite + AES-GCM work, so running them on the
event loop avoids a thread hop per request (the one slow call, a passphrase unseal, goes to a thread).
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kinko.api.auth import FailureLimiter, caller_for, client_address
from kinko.api.cluster import UnsealBroadcast
from kinko.api.models import (
    MAX_INT,
    AttributesBody,
    InitBody,
    PutBody,
    RestoreBody,
    UnsealBody,
    body_value,
    encode_value,
    parse_time,
    version_doc,
)
from kinko.core.model import Caller
from kinko.crypto.seal import SealType
from kinko.errors import AlreadyInitialized, InvalidInput, KinkoError, Sealed, UnsealFailed
from kinko.vault import Vault

log = logging.getLogger("kinko.api")


@dataclass
class ApiState:
    """Everything a worker's routes need; lives on `app.state.kinko`."""

    vault: Vault
    broadcast: UnsealBroadcast = field(default_factory=UnsealBroadcast)
    limiter: FailureLimiter = field(default_factory=FailureLimiter)


async def state(request: Request) -> ApiState:
    # async on purpose: FastAPI runs a plain `def` dependency in a thread pool (a thread hop per request).
    current: ApiState = request.app.state.kinko
    current.broadcast.sync(current.vault)
    return current


async def authorized(request: Request) -> Caller:
    """Unsealed vault + valid token. Sealed answers 503 before any token is looked at.

    One flat dependency on purpose: each FastAPI sub-dependency costs time on every request.
    """
    st = await state(request)
    st.vault.require_unsealed()  # raises Sealed (503) / NotInitialized (501)
    return caller_for(request, st.vault, st.limiter)


Who = Annotated[Caller, Depends(authorized)]
St = Annotated[ApiState, Depends(state)]
VersionQ = Annotated[int | None, Query(ge=1, le=MAX_INT)]

secrets = APIRouter(prefix="/v1", tags=["secrets"])
sys_router = APIRouter(prefix="/v1/sys", tags=["sys"])


# -- secrets ------------------------------------------------------------------------------------------------
@secrets.get("/secrets/{path:path}", response_model=dict[str, Any])
async def read_secret(path: str, request: Request, who: Who, version: VersionQ = None) -> Response:
    secret = request.app.state.kinko.vault.get(who, path, version)
    # The hottest route: a ready JSONResponse skips FastAPI's generic response encoding.
    return JSONResponse({**version_doc(secret.info), **encode_value(secret.value), "metadata": secret.metadata})


async def _write(path: str, body: PutBody, request: Request, who: Caller) -> dict[str, Any]:
    info = request.app.state.kinko.vault.put(
        who, path, body_value(body), content_type=body.content_type or ("Opaque" if body.data else "text"),
        cas=body.cas,
        max_versions=body.max_versions, not_before=parse_time("not_before", body.not_before),
        expires=parse_time("expires", body.expires), tags=body.tags, enabled=body.enabled,
    )
    return version_doc(info)


@secrets.put("/secrets/{path:path}")
async def put_secret(path: str, body: PutBody, request: Request, who: Who) -> dict[str, Any]:
    return await _write(path, body, request, who)


@secrets.post("/secrets/{path:path}")
async def post_secret(path: str, body: PutBody, request: Request, who: Who) -> dict[str, Any]:
    return await _write(path, body, request, who)


@secrets.delete("/secrets/{path:path}")
async def delete_secret(path: str, request: Request, who: Who) -> dict[str, Any]:
    return request.app.state.kinko.vault.delete(who, path).to_dict()  # type: ignore[no-any-return]


@secrets.get("/secrets-list")
async def list_root(request: Request, who: Who) -> dict[str, Any]:
    return await list_secrets("", request, who)


@secrets.get("/secrets-list/{prefix:path}")
async def list_secrets(prefix: str, request: Request, who: Who) -> dict[str, Any]:
    listing = request.app.state.kinko.vault.list(who, prefix)
    return {"prefix": listing.prefix, "keys": list(listing.keys)}


@secrets.get("/versions/{path:path}")
async def list_versions(path: str, request: Request, who: Who) -> dict[str, Any]:
    return {"versions": [version_doc(v) for v in request.app.state.kinko.vault.versions(who, path)]}


@secrets.patch("/attributes/{path:path}")
async def update_attributes(path: str, body: AttributesBody, request: Request, who: Who,
                            version: VersionQ = None) -> dict[str, Any]:
    changes: dict[str, Any] = {"enabled": body.enabled, "tags": body.tags}
    for name in ("not_before", "expires"):
        if name in body.model_fields_set:  # absent keeps the current value; null clears it
            changes[name] = parse_time(name, getattr(body, name))
    info = request.app.state.kinko.vault.update_attributes(who, path, version, **changes)
    return version_doc(info)


@secrets.get("/deleted-list")
async def list_deleted_root(request: Request, who: Who) -> dict[str, Any]:
    return await list_deleted("", request, who)


@secrets.get("/deleted-list/{prefix:path}")
async def list_deleted(prefix: str, request: Request, who: Who) -> dict[str, Any]:
    return {"deleted": [i.to_dict() for i in request.app.state.kinko.vault.list_deleted(who, prefix)]}


@secrets.post("/recover/{path:path}")
async def recover(path: str, request: Request, who: Who) -> dict[str, Any]:
    return request.app.state.kinko.vault.recover(who, path).to_dict()  # type: ignore[no-any-return]


@secrets.delete("/deleted/{path:path}")
async def purge(path: str, request: Request, who: Who) -> Response:
    request.app.state.kinko.vault.purge(who, path)
    return Response(status_code=204)


@secrets.get("/backup/{path:path}")
async def backup(path: str, request: Request, who: Who) -> dict[str, Any]:
    blob: bytes = request.app.state.kinko.vault.backup(who, path)
    return {"path": path, "backup": blob.decode("ascii")}


@secrets.post("/restore")
async def restore(body: RestoreBody, request: Request, who: Who) -> dict[str, Any]:
    try:
        blob = body.backup.strip().encode("ascii")
    except UnicodeEncodeError:
        raise InvalidInput("not a kinko backup") from None
    return request.app.state.kinko.vault.restore(who, blob).to_dict()  # type: ignore[no-any-return]


# -- sys ----------------------------------------------------------------------------------------------------
@sys_router.get("/health")
async def health(st: St) -> Response:
    """200 unsealed and active, 503 sealed, 501 not initialised (as Vault's /sys/health)."""
    status = st.vault.status()
    code = 501 if not status.initialized else 503 if status.sealed else 200
    body = {"initialized": status.initialized, "sealed": status.sealed}
    return Response(json.dumps(body), status_code=code, media_type="application/json")


@sys_router.get("/seal-status")
async def seal_status(st: St) -> dict[str, Any]:
    return st.vault.status().to_dict()


@sys_router.post("/init")
async def init(body: InitBody, request: Request, st: St) -> dict[str, Any]:
    """Unauthenticated only while the vault is uninitialised (the first caller gets the root token)."""
    if st.vault.initialized:
        caller_for(request, st.vault, st.limiter)
        raise AlreadyInitialized("vault is already initialized")
    result = await run_in_threadpool(
        st.vault.init, seal=SealType(body.seal), shares=body.shares, threshold=body.threshold,
        passphrase=body.passphrase, retention_days=body.retention_days, purge_protection=body.purge_protection)
    return {"vault_id": result.vault_id, "root_token": result.root_token, "shares": list(result.shares),
            "threshold": result.threshold}


@sys_router.post("/unseal")
async def unseal(body: UnsealBody, request: Request, st: St) -> dict[str, Any]:
    """Unauthenticated by nature, so failed attempts are rate limited per client and every attempt is recorded."""
    from kinko.api.cluster import material

    client = client_address(request)
    st.limiter.check(client)  # 429 before any share is looked at or any argon2 run
    kind, value = material(body.model_dump())
    try:
        status = await run_in_threadpool(st.broadcast.unseal, st.vault, kind, value)
    except KinkoError as exc:
        if isinstance(exc, UnsealFailed):
            st.limiter.failed(client)
        _record_unseal(st.vault, client, kind, exc.code)
        raise
    _record_unseal(st.vault, client, kind, "allowed")
    return status.to_dict()


def _record_unseal(vault: Vault, client: str, kind: str, outcome: str) -> None:
    """Log and audit an unseal attempt: the method and the outcome only, never the material.

    No `data` goes to the audit sink: the vault is usually sealed, so its HMAC salt is unavailable.
    Not fail-closed on a sealed vault on purpose: refusing to unseal because nothing can be audited until
    the vault is unsealed would make a vault with an audit log impossible to unseal.
    """
    log.info("unseal attempt (%s) from %s: %s", kind, client, outcome)
    sink = vault._audit
    if sink is not None:
        # A sink that needs the vault's salt cannot write while sealed: the log line above is then the record.
        with contextlib.suppress(Sealed):
            sink(Caller("anonymous", remote_addr=client), "sys.unseal", f"sys/unseal/{kind}", outcome)


@sys_router.post("/seal", status_code=204)
async def seal(st: St, who: Who) -> Response:
    st.vault.seal(who)
    st.broadcast.sealed(st.vault)
    return Response(status_code=204)


@sys_router.post("/rotate")
async def rotate(st: St, who: Who) -> dict[str, Any]:
    return {"key_term": st.vault.rotate(who)}


@sys_router.post("/rewrap")
async def rewrap(st: St, who: Who) -> dict[str, Any]:
    """Re-encrypt versions sealed under older key terms with the newest one."""
    return {"rewrapped": await run_in_threadpool(st.vault.rewrap, who)}


@sys_router.get("/bench-hello", include_in_schema=False)
async def bench_hello() -> dict[str, str]:
    """A hello-world on the same stack, the baseline bench/http.py compares against."""
    return {"hello": "world"}


def install(app: FastAPI) -> None:
    app.include_router(secrets)
    app.include_router(sys_router)
