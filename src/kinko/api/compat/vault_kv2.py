"""Vault's KV v2 secrets engine API on a mount (`/v1/<mount>/data|metadata|delete|undelete|destroy|subkeys|config`),
over `Vault.kv` (kinko.vault.kv_engine): the same authorization, audit, seal state and encryption as /v1/secrets.

A mount maps onto a kinko path prefix: with the default mount `secret` -> "", `secret/data/team/db` is the kinko
secret `team/db`; a mount `apps` -> "apps/" puts `apps/data/web` at `apps/web`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from kinko.api.compat.vault_shapes import (
    envelope,
    errors,
    go_duration,
    json_body,
    no_content,
    note_outcome,
    parse_vault_duration,
    rfc3339,
    vault_json,
)
from kinko.api.routing import add_routes, routes
from kinko.api.state import ApiState, St, Who
from kinko.core.model import MAX_VERSION
from kinko.errors import InvalidInput, NotFound
from kinko.vault import (
    DEFAULT_KV_MOUNTS,
    KEEP,
    Caller,
    KvEntry,
    KvMetadata,
    KvSettings,
    KvVersion,
    LatestVersionGone,
    subkeys,
)

#: Native route prefixes a KV mount may not shadow.
RESERVED_MOUNTS = frozenset({"secrets", "secrets-list", "versions", "attributes", "deleted-list", "deleted",
                             "recover", "backup", "restore", "sys", "auth", "openapi.json", "identity",
                             "cubbyhole", "deletedsecrets", "transit", "keys"})
DEFAULT_MOUNTS: Mapping[str, str] = DEFAULT_KV_MOUNTS
_MOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
MERGE_PATCH = "application/merge-patch+json"
INVALID_PATH_WARNING = ("Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
                        "endpoints to use. If using the vault CLI, use 'vault kv get' for this operation.")
ROOT_WARNING = "Non-listing operations on the root of a K/V v2 mount are not supported."
UNSUPPORTED = "1 error occurred:\n\t* unsupported operation\n\n"
TRAILING_SLASH = "cannot write to a path ending in '/'"


def check_mounts(mounts: Mapping[str, str]) -> dict[str, str]:
    """Validate a mount table (name -> kinko prefix, "" or ending in '/')."""
    checked: dict[str, str] = {}
    for name, prefix in mounts.items():
        if not isinstance(name, str) or not _MOUNT_NAME.fullmatch(name) or name in RESERVED_MOUNTS:
            raise InvalidInput(f"KV mount name {name!r} must be [a-z0-9_-] and not a native route "
                               f"({', '.join(sorted(RESERVED_MOUNTS))})")
        if not isinstance(prefix, str) or (prefix and (not prefix.endswith("/") or prefix.startswith("/"))):
            raise InvalidInput(f"KV mount {name!r}: prefix must be empty or a path ending in '/'")
        checked[name] = prefix
    return checked


def version_metadata(state: KvVersion, custom: Mapping[str, str] | None) -> dict[str, Any]:
    return {"created_time": rfc3339(state.created), "custom_metadata": None if custom is None else dict(custom),
            "deletion_time": rfc3339(state.deletion_time), "destroyed": state.destroyed, "version": state.version}


def entry_response_parts(request_id: str, entry: KvEntry) -> tuple[int, dict[str, Any]]:
    """(status, body) of a data read: 404 with the version's metadata when it is deleted or destroyed."""
    warnings = [f"the value of {key!r} is not UTF-8: it is given as {{\"base64\": ...}}" for key in entry.binary_keys]
    body = envelope(request_id, {"data": entry.data,
                                 "metadata": version_metadata(entry.version, entry.custom_metadata)},
                    warnings=warnings)
    return (200 if entry.data is not None else 404), body


def entry_body(request: Request, entry: KvEntry) -> Response:
    status, body = entry_response_parts(request.scope.get("state", {}).get("request_id", ""), entry)
    return vault_json(body, status)


def metadata_body(request: Request, meta: KvMetadata) -> dict[str, Any]:
    settings = meta.settings
    versions = {str(v.version): {"created_time": rfc3339(v.created), "deletion_time": rfc3339(v.deletion_time),
                                 "destroyed": v.destroyed} for v in meta.versions}
    return envelope(request, {
        "cas_required": settings.cas_required, "created_time": rfc3339(meta.created),
        "current_metadata_version": 0, "current_version": meta.current_version,
        "custom_metadata": None if settings.custom_metadata is None else dict(settings.custom_metadata),
        "delete_version_after": go_duration(settings.delete_version_after), "max_versions": settings.max_versions,
        "metadata_cas_required": False, "oldest_version": meta.oldest_version,
        "updated_time": rfc3339(meta.updated), "versions": versions})


def config_body(request: Request, settings: KvSettings) -> dict[str, Any]:
    return envelope(request, {"cas_required": settings.cas_required,
                              "delete_version_after": go_duration(settings.delete_version_after),
                              "max_versions": settings.max_versions, "metadata_cas_required": False})


def parse_version(raw: str | None) -> int | None:
    """`?version=`: absent, empty or 0 is the current version."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) > MAX_VERSION:
        raise InvalidInput(f"error converting input for field \"version\": {raw[:32]!r} is not a version number")
    return int(raw) or None


def parse_versions(body: Mapping[str, Any]) -> list[int]:
    raw = body.get("versions")
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else [] if raw is None else None
    if items is None:
        raise InvalidInput("versions must be a list of version numbers")
    numbers: list[int] = []
    for item in items:
        text = str(item).strip() if isinstance(item, int | str) and not isinstance(item, bool) else ""
        if not text.isdigit() or int(text) > MAX_VERSION:
            raise InvalidInput("error converting input for field \"versions\": each version must be a number")
        numbers.append(int(text))
    if not numbers:
        raise InvalidInput("No version number provided")
    return numbers


def parse_cas(body: Mapping[str, Any]) -> int | None:
    options = body.get("options")
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise InvalidInput("options must be an object")
    cas = options.get("cas")
    if cas is None:
        return None
    if isinstance(cas, str) and cas.strip().isdigit():
        cas = int(cas)
    if isinstance(cas, bool) or not isinstance(cas, int | float) or cas < 0 or cas != int(cas) or cas > MAX_VERSION:
        raise InvalidInput("options.cas must be a version number (0: the secret must not exist yet)")
    return int(cas)


def settings_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """max_versions / cas_required / delete_version_after present in a metadata or config body."""
    changes: dict[str, Any] = {}
    if body.get("max_versions") is not None:
        value = body["max_versions"]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput("max_versions must be a whole number")
        changes["max_versions"] = value
    if body.get("cas_required") is not None:
        value = body["cas_required"]
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise InvalidInput("cas_required must be true or false")
        changes["cas_required"] = value
    if body.get("delete_version_after") is not None:
        changes["delete_version_after"] = parse_vault_duration(body["delete_version_after"], "delete_version_after")
    return changes


def _require_merge_patch(request: Request) -> Response | None:
    given = request.headers.get("content-type", "")
    if given.split(";")[0].strip().lower() != MERGE_PATCH:
        return errors([f"PATCH requires Content-Type of {MERGE_PATCH}, provided {given[:128]}"], 415)
    return None


def is_folder(path: str) -> bool:
    """An empty path or one ending in '/' names no secret: Vault reads it as missing (404), deletes it as a no-op
    (204) and refuses to write it (400, TRAILING_SLASH) — before the body or the path's segments are looked at."""
    return not path or path.endswith("/")


def kv_router(mount: str, prefix: str) -> APIRouter:
    """The routes of one KV v2 mount."""
    router = APIRouter(prefix=f"/v1/{mount}", tags=["vault-kv2"])

    def kinko_path(path: str) -> str:
        if not path.strip("/"):
            raise NotFound("missing path")
        return prefix + path

    @router.get("/data/{path:path}")
    async def read(path: str, request: Request, caller: Who, st: St, version: str | None = None) -> Response:
        if is_folder(path):
            return errors([], 404)
        return entry_body(request, st.vault.kv.read(caller, kinko_path(path), parse_version(version)))

    @routes(router, "/data/{path:path}", ["POST", "PUT"])
    async def write(path: str, request: Request, caller: Who, st: St) -> Response:
        if is_folder(path):
            return errors([TRAILING_SLASH], 400)
        body = await json_body(request)
        if not isinstance(body.get("data"), dict):
            raise InvalidInput("no data provided")
        target = kinko_path(path)
        state = st.vault.kv.write(caller, mount, target, body["data"], parse_cas(body))
        return vault_json(envelope(request, version_metadata(state, st.vault.kv.custom_metadata(target))))

    @router.patch("/data/{path:path}")
    async def patch(path: str, request: Request, caller: Who, st: St) -> Response:
        if (refused := _require_merge_patch(request)) is not None:
            return refused
        if is_folder(path):
            return errors([TRAILING_SLASH], 400)
        body = await json_body(request)
        if not isinstance(body.get("data"), dict):
            raise InvalidInput("no data provided")
        target = kinko_path(path)
        try:
            state = st.vault.kv.patch(caller, mount, target, body["data"], parse_cas(body))
        except LatestVersionGone as gone:  # Vault: 404 with that version's metadata
            note_outcome(gone)
            custom = st.vault.kv.custom_metadata(target)
            return vault_json(envelope(request, version_metadata(gone.state, custom)), 404)
        except NotFound as exc:  # Vault answers a patch of a missing secret with an empty 404
            note_outcome(exc)
            return Response(status_code=404)
        return vault_json(envelope(request, version_metadata(state, st.vault.kv.custom_metadata(target))))

    @router.delete("/data/{path:path}")
    async def delete_latest(path: str, caller: Who, st: St) -> Response:
        if not is_folder(path):
            st.vault.kv.delete_latest(caller, kinko_path(path))
        return no_content()

    for action in ("delete", "undelete", "destroy"):
        add_routes(router, f"/{action}/{{path:path}}", _versions_route(mount, prefix, action), ["POST", "PUT"])

    @routes(router, "/metadata/{path:path}", ["GET", "LIST"])
    async def read_metadata(path: str, request: Request, caller: Who, st: St,
                            listing: Annotated[str | None, Query(alias="list")] = None) -> Response:
        if _listing(request, listing):
            return _list(request, st, caller, prefix + path)
        if is_folder(path):
            return errors([], 404)
        return vault_json(metadata_body(request, st.vault.kv.metadata(caller, kinko_path(path))))

    @routes(router, "/metadata/{path:path}", ["POST", "PUT", "PATCH"])
    async def write_metadata(path: str, request: Request, caller: Who, st: St) -> Response:
        patching = request.method == "PATCH"
        if patching and (refused := _require_merge_patch(request)) is not None:
            return refused
        if is_folder(path):
            return errors([TRAILING_SLASH], 400)
        body = await json_body(request)
        custom = body.get("custom_metadata", KEEP)
        st.vault.kv.write_metadata(caller, mount, kinko_path(path), custom_metadata=custom, patch=patching,
                                   **settings_changes(body))
        return no_content()

    @router.delete("/metadata/{path:path}")
    async def delete_metadata(path: str, caller: Who, st: St) -> Response:
        if not is_folder(path):
            st.vault.kv.delete_metadata(caller, kinko_path(path))
        return no_content()

    @router.get("/subkeys/{path:path}")
    async def read_subkeys(path: str, request: Request, caller: Who, st: St, version: str | None = None,
                           depth: str | None = None) -> Response:
        if depth not in (None, "") and not str(depth).isdigit():
            raise InvalidInput("depth must be a whole number")
        if is_folder(path):
            return errors([], 404)
        entry = st.vault.kv.read(caller, kinko_path(path), parse_version(version))
        meta = version_metadata(entry.version, entry.custom_metadata)
        if entry.data is None:  # deleted or destroyed: the version's metadata, as for a data read
            return vault_json(envelope(request, {"metadata": meta, "subkeys": None}), 404)
        return vault_json(envelope(request, {"metadata": meta, "subkeys": subkeys(entry.data, int(depth or 0))}))

    @router.get("/config")
    async def read_config(request: Request, caller: Who, st: St) -> Response:
        return vault_json(config_body(request, st.vault.kv.read_config(caller, mount)))

    @routes(router, "/config", ["POST", "PUT"])
    async def write_config(request: Request, caller: Who, st: St) -> Response:
        st.vault.kv.write_config(caller, mount, **settings_changes(await json_body(request)))
        return no_content()

    @routes(router, "/{rest:path}", ["GET", "POST", "PUT", "PATCH", "DELETE", "LIST", "HEAD"])
    async def other(rest: str, request: Request, caller: Who, st: St,
                    listing: Annotated[str | None, Query(alias="list")] = None) -> Response:
        if rest == "metadata" and _listing(request, listing):  # the mount's root: `bao kv list secret/`
            return _list(request, st, caller, prefix)
        return _unsupported_or_invalid(request, rest)

    return router


def _listing(request: Request, listing: str | None) -> bool:
    """Vault's LIST method, or a GET with `?list=true` (what clients that cannot send LIST use)."""
    return request.method == "LIST" or (request.method == "GET" and (listing or "").lower() in ("true", "1"))


def _list(request: Request, st: ApiState, caller: Caller, prefix: str) -> Response:
    found = st.vault.kv.list(caller, prefix.rstrip("/"))
    if not found.keys:
        return errors([], 404)
    return vault_json(envelope(request, {"keys": sorted(found.keys)}))


def _versions_route(mount: str, prefix: str, action: str) -> Any:
    """POST/PUT /<mount>/<action>/<path> with {"versions": [...]}: delete, undelete or destroy versions."""

    async def change_versions(path: str, request: Request, caller: Who, st: St) -> Response:
        if is_folder(path):
            return errors([TRAILING_SLASH], 400)
        body = await json_body(request)
        operation = {"delete": st.vault.kv.delete_versions, "undelete": st.vault.kv.undelete,
                     "destroy": st.vault.kv.destroy}[action]
        operation(caller, prefix + path, parse_versions(body))
        return no_content()

    return change_versions


#: Paths that take a secret path after them, and those of them whose bare name is the mount's root.
_WITH_PATH = frozenset({"data", "metadata", "delete", "undelete", "destroy", "subkeys"})
_ROOTS = frozenset({"data", "metadata", "delete", "undelete", "destroy"})


def _unsupported_or_invalid(request: Request, rest: str) -> Response:
    """What Vault answers on a KV mount when no route took the request: 405 for a known path with a method it does
    not take; 404 with a warning for the bare root of a path (`secret/metadata`) or any other path."""
    first, slash, _ = rest.partition("/")
    if (slash and first in _WITH_PATH) or rest == "config" or (rest == "data" and request.method == "LIST"):
        return errors([UNSUPPORTED], 405)
    warning = ROOT_WARNING if rest in _ROOTS else INVALID_PATH_WARNING
    return vault_json(envelope(request, None, warnings=[warning]), 404)
