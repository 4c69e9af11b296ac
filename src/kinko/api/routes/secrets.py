"""/v1 secret routes: read, write (PUT or POST), list, versions, attributes, delete/recover/purge, backup/restore.

Handlers are `async def` on purpose: vault calls are short SQLite + AES-GCM work, so running them on the event
loop avoids a thread hop per request.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from kinko.api.models import (
    MAX_INT,
    AttributesBody,
    PutBody,
    RestoreBody,
    Strict,
    body_value,
    encode_value,
    parse_time,
    version_doc,
)
from kinko.api.state import Session
from kinko.errors import InvalidInput

router = APIRouter(prefix="/v1", tags=["secrets"])
VersionQ = Annotated[int | None, Query(ge=1, le=MAX_INT)]


@router.get("/secrets/{path:path}", response_model=dict[str, Any])
async def read_secret(path: str, session: Session, version: VersionQ = None) -> Response:
    secret = session.get(path, version)
    # The hottest route: a ready JSONResponse skips FastAPI's generic response encoding.
    return JSONResponse({**version_doc(secret.info), **encode_value(secret.value), "metadata": secret.metadata})


@router.put("/secrets/{path:path}")
@router.post("/secrets/{path:path}")
async def write_secret(path: str, body: PutBody, session: Session) -> dict[str, Any]:
    info = session.put(
        path, body_value(body), content_type=body.content_type or ("Opaque" if body.data else "text"),
        cas=body.cas, max_versions=body.max_versions, not_before=parse_time("not_before", body.not_before),
        expires=parse_time("expires", body.expires), tags=body.tags, enabled=body.enabled,
    )
    return version_doc(info)


@router.delete("/secrets/{path:path}")
async def delete_secret(path: str, session: Session) -> dict[str, Any]:
    return session.delete(path).to_dict()


class FingerprintBody(Strict):
    prefix: str = Field("", max_length=4096)
    key: str = Field(..., min_length=44, max_length=1024, description="base64 of the scan's random key (>= 32 bytes)")
    algorithm: Literal["blake2b-128", "hmac-sha256-128"] = "hmac-sha256-128"


@router.post("/scan-fingerprints")
async def scan_fingerprints(body: FingerprintBody, session: Session) -> dict[str, Any]:
    """Keyed fingerprints of the values under `prefix` the caller holds `scan` on (`kinko scan --known-from-vault`)."""
    try:
        key = base64.b64decode(body.key, validate=True)
    except (binascii.Error, ValueError):  # ValueError: characters outside ASCII
        raise InvalidInput("key must be base64") from None
    prints = session.scan_fingerprints(body.prefix, key, body.algorithm)
    return {"algorithm": body.algorithm,
            "fingerprints": [{"path": f.path, "length": f.length, "digest": base64.b64encode(f.digest).decode()}
                             for f in prints]}  # fmt: skip


@router.get("/secrets-list")
async def list_root(session: Session) -> dict[str, Any]:
    return await list_secrets("", session)


@router.get("/secrets-list/{prefix:path}")
async def list_secrets(prefix: str, session: Session) -> dict[str, Any]:
    listing = session.list(prefix)
    return {"prefix": listing.prefix, "keys": list(listing.keys)}


@router.get("/versions/{path:path}")
async def list_versions(path: str, session: Session) -> dict[str, Any]:
    return {"versions": [version_doc(v) for v in session.versions(path)]}


@router.patch("/attributes/{path:path}")
async def update_attributes(path: str, body: AttributesBody, session: Session,
                            version: VersionQ = None) -> dict[str, Any]:
    changes: dict[str, Any] = {"enabled": body.enabled, "tags": body.tags}
    for name in ("not_before", "expires"):
        if name in body.model_fields_set:  # absent keeps the current value; null clears it
            changes[name] = parse_time(name, getattr(body, name))
    return version_doc(session.update_attributes(path, version, **changes))


@router.get("/deleted-list")
async def list_deleted_root(session: Session) -> dict[str, Any]:
    return await list_deleted("", session)


@router.get("/deleted-list/{prefix:path}")
async def list_deleted(prefix: str, session: Session) -> dict[str, Any]:
    return {"deleted": [i.to_dict() for i in session.list_deleted(prefix)]}


@router.post("/recover/{path:path}")
async def recover(path: str, session: Session) -> dict[str, Any]:
    return session.recover(path).to_dict()


@router.delete("/deleted/{path:path}")
async def purge(path: str, session: Session) -> Response:
    session.purge(path)
    return Response(status_code=204)


@router.get("/backup/{path:path}")
async def backup(path: str, session: Session) -> dict[str, Any]:
    return {"path": path, "backup": session.backup(path).decode("ascii")}


@router.post("/restore")
async def restore(body: RestoreBody, session: Session) -> dict[str, Any]:
    try:
        blob = body.backup.strip().encode("ascii")
    except UnicodeEncodeError:
        raise InvalidInput("not a kinko backup") from None
    return session.restore(blob).to_dict()
