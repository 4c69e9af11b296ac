"""HTTP side of the Key Vault routes: the bearer challenge, authentication first, Key Vault's errors, api-version."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from kinko.api.auth import token_from
from kinko.api.compat.azure_shapes import MAX_RESULTS, Place, Recovery
from kinko.api.errors import validation_message
from kinko.api.state import session
from kinko.errors import InvalidInput, KinkoError
from kinko.vault import LocalSession, current_request

#: What the challenge names: the SDK asks its credential for a token for "<resource>/.default".
RESOURCE = "https://vault.azure.net"
#: The "authority" a Key Vault client is sent to for a token; kinko tokens come from kinko, so this names no real
#: server (a .invalid name never resolves). The SDK reads the tenant ("kinko") from its path.
AUTHORITY = "https://kinko.invalid/kinko"
CHALLENGE = f'Bearer authorization="{AUTHORITY}", resource="{RESOURCE}"'
#: Every version azure-keyvault-secrets 4.x can send (4.12 sends the first by default).
API_VERSIONS = ("2026-04-01", "2025-07-01", "7.6", "7.5", "7.4", "7.3", "7.2", "7.1", "7.0", "2016-10-01")
#: HTTP status -> Key Vault's error code (the SDK maps the status to its exception type).
_CODES = {400: "BadParameter", 401: "Unauthorized", 403: "Forbidden", 404: "SecretNotFound", 409: "Conflict",
          413: "BadParameter", 429: "Throttled", 501: "NotImplemented", 503: "ServiceUnavailable"}


class Unauthenticated(KinkoError):
    """No bearer token: Key Vault's challenge (401 + WWW-Authenticate), which is how its clients learn to send one."""

    code = "unauthenticated"
    http_status = 401

    def __init__(self, message: str = "a bearer token is required (send a kinko token)") -> None:
        super().__init__(message)


@dataclass
class KeyVaultSettings:
    """The server's Key Vault settings (on `app.state.azure_keyvault`)."""

    prefix: str
    #: the vault's retention settings, fixed when it was initialised: read on the first request, then kept
    recovery: Recovery | None = None


def error_response(exc: KinkoError) -> JSONResponse:
    """Key Vault's `{"error": {"code", "message", "innererror": {"code"}}}`; the inner code is kinko's own. The
    audit outcome is kinko's code. Messages name paths and rules, never values (kinko.errors)."""
    scope = current_request()
    if scope is not None:
        scope.outcome = exc.code
    status = exc.http_status
    code = _CODES.get(status, "InternalServerError" if status >= 500 else "BadParameter")
    body = {"error": {"code": code, "message": exc.message, "innererror": {"code": exc.code}}}
    return JSONResponse(body, status_code=status, headers={"WWW-Authenticate": CHALLENGE} if status == 401 else None)


async def authenticate(request: Request) -> LocalSession:
    """No token: the challenge, before the route parses anything. Else the caller's session (seal state, token
    check and failure limit exactly as /v1)."""
    if token_from(request) is None:
        raise Unauthenticated()
    return await session(request)


class KeyVaultRoute(APIRoute):
    """Authenticates before FastAPI reads the body or parameters, and answers every failure in Key Vault's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def serve(request: Request) -> Response:
            try:
                request.state.kv_session = await authenticate(request)
                return await handler(request)
            except KinkoError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                return error_response(InvalidInput(validation_message(list(exc.errors()))))

        return serve


async def kv_session(request: Request) -> LocalSession:
    found: LocalSession = request.state.kv_session
    return found


async def place(request: Request) -> Place:
    """Runs after `authenticate`, so the vault is unsealed (and initialised) when its settings are read."""
    settings: KeyVaultSettings = request.app.state.azure_keyvault
    if settings.recovery is None:
        settings.recovery = Recovery.of(request.state.kv_session.status())
    return Place(settings.prefix, str(request.base_url).rstrip("/"), settings.recovery)


async def api_version(given: Annotated[str, Query(
        alias="api-version", json_schema_extra={"enum": list(API_VERSIONS)})]) -> str:
    if given not in API_VERSIONS:
        raise InvalidInput(f"api-version must be one of {', '.join(API_VERSIONS)}")
    return given


KvSession = Annotated[LocalSession, Depends(kv_session)]
Where = Annotated[Place, Depends(place)]
ApiVersion = Annotated[str, Depends(api_version)]
MaxResults = Annotated[int | None, Query(ge=1, le=MAX_RESULTS)]
SkipToken = Annotated[str | None, Query(alias="$skiptoken", max_length=256)]


# -- request bodies -------------------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


class AttributesBody(_Body):
    enabled: bool | None = None
    nbf: int | None = None
    exp: int | None = None


class SetBody(_Body):
    value: str
    content_type: str | None = Field(None, alias="contentType", max_length=255)
    tags: dict[str, str] | None = None
    attributes: AttributesBody | None = None


class UpdateBody(_Body):
    content_type: str | None = Field(None, alias="contentType", max_length=255)
    tags: dict[str, str] | None = None
    attributes: AttributesBody | None = None


class RestoreBody(_Body):
    value: str = Field(max_length=8 * 1024 * 1024)
