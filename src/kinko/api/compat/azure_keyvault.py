"""The Azure Key Vault secrets API (/secrets, /deletedsecrets) over the caller's VaultSession (docs/compat.md)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Response
from fastapi.responses import JSONResponse

from kinko.api.compat.azure_http import (
    ApiVersion,
    AttributesBody,
    KeyVaultRoute,
    KeyVaultSettings,
    KvSession,
    MaxResults,
    RestoreBody,
    SetBody,
    SkipToken,
    UpdateBody,
    Where,
)
from kinko.api.compat.azure_shapes import (
    CONTENT_TYPE_TAG,
    DEFAULT_PREFIX,
    MAX_RESULTS,
    NAME_PATTERN,
    VERSION_PATTERN,
    Place,
    check_prefix,
    deleted_bundle,
    page,
    secret_bundle,
    secret_item,
    split_content_type,
    summary_bundle,
    user_tags,
    version_id,
    version_number,
    with_content_tag,
)
from kinko.core.model import SecretInfo, VersionInfo, check_text
from kinko.errors import InvalidInput, NotFound, PermissionDenied
from kinko.vault import KEEP, LocalSession

# Every route authenticates first (KeyVaultRoute: no token is Key Vault's 401 challenge); each operation is then
# one or more calls on the caller's VaultSession, so authorization, audit, seal state and AAD are the service's.
router = APIRouter(route_class=KeyVaultRoute, tags=["azure-keyvault"])
Name = Annotated[str, Path(json_schema_extra={"pattern": NAME_PATTERN})]
VersionId = Annotated[str, Path(json_schema_extra={"pattern": VERSION_PATTERN})]
OutContentType = Annotated[str | None, Query(alias="outContentType", max_length=64)]


def install(app: FastAPI, *, prefix: str | None = None) -> None:
    """Serve the Key Vault routes on `app`, with secret names under the kinko path `prefix` (default "azure/")."""
    app.state.azure_keyvault = KeyVaultSettings(check_prefix(DEFAULT_PREFIX if prefix is None else prefix))
    app.include_router(router, include_in_schema=False)  # not /v1's document: Key Vault's errors and auth differ


def openapi() -> dict[str, Any]:
    """The OpenAPI document of the Key Vault routes (not served: it is Key Vault's API; the tests fuzz it)."""
    from fastapi.openapi.utils import get_openapi

    return get_openapi(title="kinko: Azure Key Vault secrets API", version="1", routes=router.routes)


def _listing(items: list[dict[str, Any]], link: str | None) -> JSONResponse:
    return JSONResponse({"value": items, "nextLink": link})


def _version(session: LocalSession, path: str, number: int | None) -> VersionInfo:
    """One version's info without reading its value (`number` None: the latest)."""
    versions = session.versions(path)
    if number is not None:
        versions = [v for v in versions if v.version == number]
    if not versions:
        raise NotFound(f"secret {path!r} has no version {version_id(number or 0)}")
    return max(versions, key=lambda v: v.version)


def _current_bundle(session: LocalSession, where: Place, name: str, info: SecretInfo) -> dict[str, Any]:
    """A secret's latest version as recover and restore answer it; only its secret-level facts when the caller
    may not list its versions."""
    try:
        return secret_bundle(where, name, _version(session, info.path, None))
    except PermissionDenied:
        return summary_bundle(where, name, info)


# -- secrets --------------------------------------------------------------------------------------------------
@router.get("/secrets")
async def list_secrets(session: KvSession, where: Where, api: ApiVersion, maxresults: MaxResults = None,
                       skiptoken: SkipToken = None) -> JSONResponse:
    names = [key for key in session.list(where.prefix).keys if where.name(where.prefix + key) == key]
    chosen, more = page(names, skiptoken, maxresults)
    items = []
    for name in chosen:
        try:
            items.append(secret_item(where, name, _version(session, where.path(name), None), versioned=False))
        except (NotFound, PermissionDenied):
            continue  # deleted since it was listed, or its versions are not the caller's to see
    link = where.next_link("/secrets", api, chosen[-1], maxresults or MAX_RESULTS) if more else None
    return _listing(items, link)


@router.put("/secrets/{name}")
async def set_secret(name: Name, body: SetBody, session: KvSession, where: Where, api: ApiVersion) -> JSONResponse:
    attrs = body.attributes or AttributesBody()
    kind, content_tag = split_content_type(body.content_type)
    info = session.put(
        where.path(name), check_text(body.value, "value").encode("utf-8"), content_type=kind,
        enabled=attrs.enabled is not False, not_before=attrs.nbf, expires=attrs.exp,
        tags=with_content_tag(user_tags(body.tags), content_tag),
    )
    return JSONResponse(secret_bundle(where, name, info, body.value))


@router.get("/secrets/{name}/versions")
async def list_versions(name: Name, session: KvSession, where: Where, api: ApiVersion,
                        maxresults: MaxResults = None, skiptoken: SkipToken = None) -> JSONResponse:
    versions = {v.version: v for v in session.versions(where.path(name))}
    chosen, more = page(list(versions), version_number(skiptoken) if skiptoken else None, maxresults)
    items = [secret_item(where, name, versions[number], versioned=True) for number in chosen]
    size = maxresults or MAX_RESULTS
    link = where.next_link(f"/secrets/{name}/versions", api, version_id(chosen[-1]), size) if more else None
    return _listing(items, link)


@router.get("/secrets/{name}")
@router.get("/secrets/{name}/")
async def get_latest(name: Name, session: KvSession, where: Where, api: ApiVersion,
                     out: OutContentType = None) -> JSONResponse:
    return _read(session, where, name, None)


@router.get("/secrets/{name}/{version}")
async def get_version(name: Name, version: VersionId, session: KvSession, where: Where, api: ApiVersion,
                      out: OutContentType = None) -> JSONResponse:
    return _read(session, where, name, version_number(version))


def _read(session: LocalSession, where: Place, name: str, number: int | None) -> JSONResponse:
    path = where.path(name)
    secret = session.get(path, number)
    try:
        if not isinstance(secret.value, bytes):
            raise UnicodeError
        text = secret.value.decode("utf-8")
    except UnicodeError:
        raise InvalidInput(f"secret {path!r} holds binary or key/value data, which a Key Vault secret cannot "
                           "carry; read it through /v1") from None
    return JSONResponse(secret_bundle(where, name, secret.info, text))


@router.patch("/secrets/{name}")
@router.patch("/secrets/{name}/")
async def update_latest(name: Name, body: UpdateBody, session: KvSession, where: Where,
                        api: ApiVersion) -> JSONResponse:
    return _update(session, where, name, None, body)


@router.patch("/secrets/{name}/{version}")
async def update_version(name: Name, version: VersionId, body: UpdateBody, session: KvSession, where: Where,
                         api: ApiVersion) -> JSONResponse:
    return _update(session, where, name, version_number(version), body)


def _update(session: LocalSession, where: Place, name: str, number: int | None, body: UpdateBody) -> JSONResponse:
    path = where.path(name)
    kind, tags = _description(session, path, number, body)
    attrs = body.attributes or AttributesBody()
    info = session.update_attributes(
        path, number, enabled=attrs.enabled, not_before=KEEP if attrs.nbf is None else attrs.nbf,
        expires=KEEP if attrs.exp is None else attrs.exp, tags=tags, content_type=kind,
    )
    return JSONResponse(secret_bundle(where, name, info))


def _description(session: LocalSession, path: str, number: int | None,
                 body: UpdateBody) -> tuple[str | None, dict[str, str] | None]:
    """kinko content type and tags for an update: the half (contentType or tags) not given is kept."""
    if body.content_type is None and body.tags is None:
        return None, None
    current: dict[str, str] = {}
    if body.content_type is None or body.tags is None:
        current = dict(_version(session, path, number).attributes.tags)
    kind, content_tag = None, current.pop(CONTENT_TYPE_TAG, None)
    if body.content_type is not None:
        kind, content_tag = split_content_type(body.content_type)
    tags = current if body.tags is None else user_tags(body.tags)
    return kind, with_content_tag(tags, content_tag)


@router.delete("/secrets/{name}")
async def delete_secret(name: Name, session: KvSession, where: Where, api: ApiVersion) -> JSONResponse:
    return JSONResponse(deleted_bundle(where, name, session.delete(where.path(name))))


@router.post("/secrets/{name}/backup")
async def backup_secret(name: Name, session: KvSession, where: Where, api: ApiVersion) -> JSONResponse:
    blob = session.backup(where.path(name))
    return JSONResponse({"value": base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")})


@router.post("/secrets/restore")
async def restore_secret(body: RestoreBody, session: KvSession, where: Where, api: ApiVersion) -> JSONResponse:
    try:
        blob = base64.b64decode(body.value + "=" * (-len(body.value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("not a kinko backup (the value is not base64url)") from None
    info = session.restore(blob)
    name = where.name(info.path)
    if name is None:
        raise InvalidInput(f"the backup was restored at kinko path {info.path!r}, which has no Key Vault name "
                           f"under {where.prefix!r}; read it through /v1")
    return JSONResponse(_current_bundle(session, where, name, info))


# -- deleted secrets ------------------------------------------------------------------------------------------
@router.get("/deletedsecrets")
async def list_deleted(session: KvSession, where: Where, api: ApiVersion, maxresults: MaxResults = None,
                       skiptoken: SkipToken = None) -> JSONResponse:
    deleted = {name: info for info in session.list_deleted(where.prefix) if (name := where.name(info.path))}
    chosen, more = page(list(deleted), skiptoken, maxresults)
    items = [deleted_bundle(where, name, deleted[name], versioned=False) for name in chosen]
    link = where.next_link("/deletedsecrets", api, chosen[-1], maxresults or MAX_RESULTS) if more else None
    return _listing(items, link)


@router.get("/deletedsecrets/{name}")
async def get_deleted(name: Name, session: KvSession, where: Where, api: ApiVersion) -> JSONResponse:
    path = where.path(name)
    for info in session.list_deleted(path):
        if info.path == path:
            return JSONResponse(deleted_bundle(where, name, info))
    raise NotFound(f"no deleted secret at {path!r}")


@router.delete("/deletedsecrets/{name}", status_code=204)
async def purge_deleted(name: Name, session: KvSession, where: Where, api: ApiVersion) -> Response:
    session.purge(where.path(name))
    return Response(status_code=204)


@router.post("/deletedsecrets/{name}/recover")
async def recover_deleted(name: Name, session: KvSession, where: Where, api: ApiVersion) -> JSONResponse:
    return JSONResponse(_current_bundle(session, where, name, session.recover(where.path(name))))


# -- anything else under the two collections: still challenged, then Key Vault's BadParameter ------------------
_METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]


@router.api_route("/secrets", methods=_METHODS, include_in_schema=False)
@router.api_route("/secrets/{rest:path}", methods=_METHODS, include_in_schema=False)
@router.api_route("/deletedsecrets", methods=_METHODS, include_in_schema=False)
@router.api_route("/deletedsecrets/{rest:path}", methods=_METHODS, include_in_schema=False)
async def not_an_operation() -> Response:
    raise InvalidInput("not a Key Vault secrets operation (a secret name is 1-127 letters, digits and '-')")
