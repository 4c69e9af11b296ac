"""The ASGI application factory: FastAPI /v1 app wrapped in request-id, size-limit and access-log middleware."""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kinko.api import errors, routes
from kinko.api.auth import FailureLimiter
from kinko.api.cluster import UnsealBroadcast
from kinko.api.errors import error_body
from kinko.api.state import ApiState
from kinko.vault import Vault, request_context

DEFAULT_MAX_BODY = 2 * 1024 * 1024
access_log = logging.getLogger("kinko.access")


def create_app(
    vault: Vault, *, broadcast: UnsealBroadcast | None = None, limiter: FailureLimiter | None = None,
    max_body: int = DEFAULT_MAX_BODY, close_vault: bool = False, extra_routers: Sequence[APIRouter] = (),
) -> ASGIApp:
    """One worker's app over an open vault. `close_vault`: close it when the server shuts down.

    `extra_routers` are mounted beside /v1 (bench/http.py adds its hello-world baseline route this way, so
    production servers never serve it).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if close_vault:
            vault.close()

    app = FastAPI(
        title="kinko", version="1", description="kinko secrets vault, native API",
        openapi_url="/v1/openapi.json", docs_url=None, redoc_url=None, lifespan=lifespan,
    )
    app.state.kinko = ApiState(vault, broadcast or UnsealBroadcast(), limiter or FailureLimiter())
    errors.install(app)
    routes.install(app)
    for router in extra_routers:
        app.include_router(router)
    _document_auth(app)
    return RequestGuard(app, max_body)


def _document_auth(app: FastAPI) -> None:
    """Describe the token header in OpenAPI (checked by one plain dependency, not a FastAPI security class)."""
    from fastapi.openapi.utils import get_openapi

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            doc.setdefault("components", {})["securitySchemes"] = {
                "kinkoToken": {"type": "apiKey", "in": "header", "name": "X-Kinko-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


async def _send_json(send: Send, status: int, body: dict[str, Any], request_id: str) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
        (b"x-request-id", request_id.encode())]})
    await send({"type": "http.response.body", "body": raw})


class RequestGuard:
    """Outermost layer: request id, body limit (413), one JSON access-log line, and a last-resort 500.

    The log line holds method, path, status, duration, request id and client only: never headers
    (tokens), query strings or bodies (values).
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, started, status = uuid.uuid4().hex[:16], time.perf_counter(), 500
        scope.setdefault("state", {})["request_id"] = request_id
        sent = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status, sent = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if body is None:
                status = 413
                await _send_json(send, 413, error_body("too_large", f"request body is larger than {self.max_body}"
                                                       " bytes"), request_id)
                return
            if lone_surrogate(body):  # valid JSON, invalid Unicode: refused before any route could store it
                status = 400
                await _send_json(send, 400, error_body("invalid_input", "the request body is not valid Unicode "
                                                       "(it contains a lone surrogate escape)"), request_id)
                return
            client = scope.get("client")
            # Audit records written while serving this request carry its id and client address.
            with request_context(request_id, client[0] if client else None):
                await self.app(scope, _replay(body, receive), send_wrapper)
        except Exception as exc:  # Starlette re-raises after answering 500; keep tracebacks out of stderr
            logging.getLogger("kinko.api").error("unhandled %s", type(exc).__name__)
            if not sent:
                status = 500
                await _send_json(send, 500, error_body("internal", "internal server error"), request_id)
        finally:
            self._log(scope, status, started, request_id)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it exceeds the limit (checked on Content-Length and as it streams)."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _log(scope: Scope, status: int, started: float, request_id: str) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        access_log.info(json.dumps({
            "time": time.time(), "request_id": request_id, "method": scope.get("method"),
            "path": scope.get("path"), "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "client": client[0] if client else None, "pid": os.getpid(),
        }))


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def lone_surrogate(body: bytes) -> bool:
    """True when a JSON body decodes to text holding a lone surrogate (`"\\udfff"`): JSON allows the escape,
    UTF-8 cannot encode the result, so a value, key or tag holding it would be stored and then fail every read.
    Cheap for every other body: the JSON is parsed only when a surrogate escape appears in the raw bytes."""
    if not _SURROGATE_ESCAPE.search(body):
        return False
    try:
        pending: list[Any] = [json.loads(body)]
    except (ValueError, RecursionError):
        return False  # not JSON (or absurdly deep): the route's own validation answers
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            pending.extend(node)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return False


def _replay(body: bytes, upstream: Receive) -> Receive:
    """Hand the buffered body to the app once, then pass through (so disconnects are still seen)."""
    done = False

    async def receive() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await upstream()

    return receive
