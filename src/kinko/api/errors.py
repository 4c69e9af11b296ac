"""The one place HTTP turns failures into `{"error": {"code", "message"}}` responses (status from kinko.errors)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kinko.api.compat.vault_shapes import vault_error
from kinko.errors import InvalidInput, KinkoError
from kinko.vault import current_request

log = logging.getLogger("kinko.api")


class RateLimited(KinkoError):
    """Too many failed authentications from one client address (HTTP only, so it lives here)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str = "too many failed authentication attempts; try again later") -> None:
        super().__init__(message)


#: Starlette's own HTTP errors (routing, methods) -> our stable codes.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


def error_body(code: str, message: str) -> dict[str, Any]:
    """kinko's error (`error`) and Vault's (`errors`) in one body: native and Vault clients each read theirs."""
    return {"error": {"code": code, "message": message}, "errors": [message]}


def answer(code: str, message: str, status: int, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The error response, with its code noted for the request's audit record (kinko.api.middleware)."""
    request = current_request()
    if request is not None:
        request.outcome = code
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def error_response(exc: KinkoError) -> JSONResponse:
    # KinkoError messages name paths/keys/rules, never values (errors.py contract), so they are safe to return.
    return answer(exc.code, exc.message, exc.http_status)


def _where(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] if isinstance(loc, list | tuple) else []
    return ".".join(parts) or "body"


#: Pydantic error types in plain words; {name} is filled from the error's ctx (schema limits, never the input).
_REASONS = {
    "missing": "is required", "extra_forbidden": "is not a known field",
    "greater_than_equal": "must be at least {ge}", "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}", "less_than": "must be less than {lt}",
    "string_too_long": "must be at most {max_length} characters",
    "string_too_short": "must be at least {min_length} characters",
    "too_long": "must have at most {max_length} items", "too_short": "must have at least {min_length} items",
    "int_type": "must be an integer", "int_parsing": "must be an integer", "int_from_float": "must be an integer",
    "float_type": "must be a number", "float_parsing": "must be a number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "string_type": "must be a string", "list_type": "must be a list", "dict_type": "must be an object",
    "model_type": "must be an object",
}


def _plain_reason(kind: str, ctx: Any) -> str:
    template = _REASONS.get(kind)
    if template is None:
        return f"is invalid ({kind})"
    try:
        return template.format(**(ctx if isinstance(ctx, dict) else {}))
    except (KeyError, IndexError, ValueError):
        return f"is invalid ({kind})"


def validation_message(errors: list[Any]) -> str:
    """Name the field and what was wrong; never echo the input (it may be a secret value)."""
    first = errors[0] if errors else {}
    kind = str(first.get("type", "invalid"))
    if kind in ("json_invalid", "json_type"):
        return "request body is not valid JSON"
    where = _where(first.get("loc", ()))
    reason = _plain_reason(kind, first.get("ctx"))
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where} {reason}{more}"


def _vault_only(request: Request) -> bool:
    """Paths only Vault clients use (KV mounts): errors there are Vault's exact shape."""
    prefixes: tuple[str, ...] = getattr(request.app.state, "vault_only_prefixes", ())
    path = request.url.path
    return (path.startswith(prefixes) if prefixes else False) or path in getattr(
        request.app.state, "vault_only_paths", ())


async def _kinko_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KinkoError)
    if _vault_only(request):
        return vault_error(exc)
    return error_response(exc)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return await _kinko_handler(request, InvalidInput(validation_message(list(exc.errors()))))


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = {404: "no such route", 405: f"method {request.method} not allowed on this route"}.get(
        exc.status_code, "request refused")
    return answer(code, message, exc.status_code, exc.headers)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    # Log the type only: a traceback's locals or message could carry request data.
    log.error("internal error %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return answer("internal", "internal server error", 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(KinkoError, _kinko_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
