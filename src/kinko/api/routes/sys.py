"""/v1/sys routes: health, seal status, init, unseal, seal, rotate, rewrap, and the audit hash/verify checks."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from kinko.api.auth import client_address
from kinko.api.cluster import material
from kinko.api.compat.vault_sys import health_fields, seal_status_fields
from kinko.api.models import InitBody, Strict, UnsealBody
from kinko.api.routing import routes
from kinko.api.state import Session, St
from kinko.errors import AlreadyInitialized, KinkoError, SharesDoNotCombine, UnsealFailed
from kinko.vault import SealType

log = logging.getLogger("kinko.api")
router = APIRouter(prefix="/v1/sys", tags=["sys"],
                   strict_content_type=False)  # the Vault/bao CLI sends JSON bodies without a Content-Type


class HashBody(Strict):
    value: str = Field(max_length=1024 * 1024)


@routes(router, "/health", ["GET", "HEAD"])
async def health(request: Request, st: St) -> Response:
    """200 unsealed and active, 503 sealed, 501 not initialised (as Vault's /sys/health, whose `sealedcode`,
    `uninitcode` and `activecode` query parameters choose other codes)."""
    status = st.vault.status()
    chosen = ("uninitcode", 501) if not status.initialized else ("sealedcode", 503) if status.sealed \
        else ("activecode", 200)
    code = _status_code(request.query_params.get(chosen[0]), chosen[1])
    body = {**health_fields(status, time.time()), "initialized": status.initialized, "sealed": status.sealed}
    return Response(json.dumps(body), status_code=code, media_type="application/json")


def _status_code(raw: str | None, default: int) -> int:
    if raw is None or not raw.isdigit() or not 100 <= int(raw) <= 599:
        return default
    return int(raw)


@router.get("/seal-status")
async def seal_status(st: St) -> dict[str, Any]:
    status = st.vault.status()
    return {**seal_status_fields(status), **status.to_dict()}


@router.get("/init")
async def init_status(st: St) -> dict[str, Any]:
    return {"initialized": st.vault.initialized}


@routes(router, "/init", ["POST", "PUT"])
async def init(body: InitBody, st: St) -> dict[str, Any]:
    """Unauthenticated (the first caller gets the root token). Takes kinko's fields or Vault's (`secret_shares`,
    `secret_threshold`); answers with both (`shares` and Vault's `keys`). On an initialised vault it is a 400 for
    anyone, token or not, sealed or not, as Vault answers: `GET /init` tells the same to anyone already."""
    if st.vault.initialized:
        raise AlreadyInitialized("vault is already initialized")
    shares, threshold = body.counts()
    result = await run_in_threadpool(
        st.vault.init, seal=SealType(body.seal), shares=shares, threshold=threshold,
        passphrase=body.passphrase, retention_days=body.retention_days, purge_protection=body.purge_protection)
    return {"vault_id": result.vault_id, "root_token": result.root_token, "shares": list(result.shares),
            "threshold": result.threshold, "keys": list(result.shares), "keys_base64": list(result.shares)}


@routes(router, "/unseal", ["POST", "PUT"])
async def unseal(body: UnsealBody, request: Request, st: St) -> dict[str, Any]:
    """Unauthenticated by nature, so failed attempts are rate limited per client and every attempt is recorded.
    Vault's `{"key": ...}` takes a kinko share (the text `kinko operator init` or Vault's `keys` gave)."""
    client = client_address(request)
    st.limiter.check(client)  # 429 before any share is looked at or any argon2 run
    kind, value = material(body.material())
    try:
        status = await run_in_threadpool(st.broadcast.unseal, st.vault, kind, value)
    except KinkoError as exc:
        # Charged only to the client whose own material failed: shares that fail only together (a vault without
        # share tags) are nobody's in particular, so a stranger's bad share cannot get the operator locked out.
        if isinstance(exc, UnsealFailed) and not isinstance(exc, SharesDoNotCombine):
            st.limiter.failed(client)
        _record_unseal(st, client, kind, exc.code)
        raise
    _record_unseal(st, client, kind, "allowed")
    return {**seal_status_fields(status), **status.to_dict()}


def _record_unseal(st: St, client: str, kind: str, outcome: str) -> None:
    """A log line and an audit record (best effort while sealed): the method and the outcome, never the material."""
    log.info("unseal attempt (%s) from %s: %s", kind, client, outcome)
    st.vault.record_unseal(client, kind, outcome)


@routes(router, "/seal", ["POST", "PUT"], status_code=204)
async def seal(st: St, session: Session) -> Response:
    session.seal()
    st.broadcast.sealed(st.vault)
    return Response(status_code=204)


@router.post("/rotate")
async def rotate(session: Session) -> dict[str, Any]:
    return {"key_term": session.rotate()}


@router.post("/rewrap")
async def rewrap(session: Session) -> dict[str, Any]:
    """Re-encrypt versions sealed under older key terms with the newest one."""
    return {"rewrapped": await run_in_threadpool(session.rewrap)}


@router.post("/audit/hash")
async def audit_hash(body: HashBody, session: Session) -> dict[str, str]:
    """The HMAC the audit log would record for `value` (sudo: it is an oracle for guesses)."""
    return {"hash": session.audit_hash(body.value)}


class VerifyBody(Strict):
    allow_v1: bool = False
    allow_continued: bool = False


@router.post("/audit/verify")
async def audit_verify(session: Session, body: VerifyBody | None = None) -> dict[str, Any]:
    """Check the server's own audit file with the vault's chain key (sudo). Never takes a path: no file oracle.
    Unkeyed (v1) records and a file that continues a rotated one fail unless the body accepts them."""
    options = body or VerifyBody()
    report = session.audit_verify(allow_v1=options.allow_v1, allow_continued=options.allow_continued)
    doc = report.to_dict()
    doc["bad_file"] = "server audit file" if doc["bad_file"] else None  # never the server's file path
    return {"file": "server audit file", **doc}
