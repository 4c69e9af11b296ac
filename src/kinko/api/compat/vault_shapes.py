"""Vault's JSON shapes: the response envelope, `{"errors": [...]}`, RFC 3339 times and durations."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kinko.errors import AlreadyExists, InvalidInput, KinkoError, NotFound, Sealed, VersionConflict
from kinko.vault import current_request


def envelope(request: Request | str | None, data: Any = None, *, auth: Any = None,
             warnings: Sequence[str] | None = None) -> dict[str, Any]:
    """The body of every Vault answer that carries something (`request_id` is the server's request id; give the
    request or the id itself)."""
    if isinstance(request, str):
        request_id = request
    else:
        request_id = request.scope.get("state", {}).get("request_id", "") if request is not None else ""
    return {"request_id": request_id, "lease_id": "", "renewable": False, "lease_duration": 0, "data": data,
            "wrap_info": None, "warnings": list(warnings) if warnings else None, "auth": auth}


def vault_json(body: Any, status: int = 200) -> Response:
    """JSON with exactly `Content-Type: application/json`, as Vault sends it (some clients compare the string)."""
    return Response(dumps(body), status_code=status, media_type="application/json")


def dumps(body: Any) -> bytes:
    """Compact UTF-8 JSON, byte for byte what Starlette's JSONResponse renders (so every path answers alike)."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def no_content() -> Response:
    return Response(status_code=204)


def errors(messages: Sequence[str], status: int) -> Response:
    return vault_json({"errors": list(messages)}, status)


@functools.lru_cache(maxsize=4096)  # a read formats the same few version times over and over
def rfc3339(ts: float | None) -> str:
    """Vault's time format (Go's RFC3339Nano: UTC, fraction without trailing zeros); "" for no time."""
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(ts, UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def go_duration(seconds: float) -> str:
    """A duration as Go prints it ("0s", "1h0m0s", "90s" -> "1m30s")."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_vault_duration(value: Any, name: str) -> float:
    """Seconds from what Vault accepts for a duration: a number of seconds, "30", or Go-style "1h30m"."""
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a duration such as 30s, 10m or 1h")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return float(text)
        parts = _DURATION_PART.findall(text)
        if text and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _UNIT[u] for n, u in parts)
    raise InvalidInput(f"{name} must be a duration such as 30s, 10m or 1h")


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body), or Vault's 400 for anything else."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput("failed to decode JSON input") from None
    if not isinstance(doc, dict):
        raise InvalidInput("failed to decode JSON input: the body must be a JSON object")
    return doc


def note_outcome(exc: KinkoError) -> None:
    """Note the error's code as the outcome in the request's audit record (for an error answered by the route)."""
    scope = current_request()
    if scope is not None:
        scope.outcome = exc.code


def vault_error(exc: KinkoError) -> Response:
    """A kinko error as Vault's KV engine answers it: 404 without a message, a check-and-set mismatch 400.
    The code is noted for the request's audit record (kinko.api.middleware)."""
    note_outcome(exc)
    if isinstance(exc, NotFound):
        return errors([], 404)
    if isinstance(exc, Sealed):
        return errors(["Vault is sealed"], 503)
    if isinstance(exc, VersionConflict | AlreadyExists):
        return errors([exc.message], 400)
    return errors([exc.message], exc.http_status)
