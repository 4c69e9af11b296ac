"""The outermost ASGI layer: request id, body limit, Unicode check, one audit record for every request, one JSON
access-log line, and a last-resort 500."""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kinko.api.errors import error_body
from kinko.errors import AuditFailed, Sealed
from kinko.vault import Caller, RequestScope, Vault, request_context

access_log = logging.getLogger("kinko.access")
log = logging.getLogger("kinko.api")
#: Unauthenticated reads that change nothing and are polled constantly: not audited (as in Vault).
NOT_AUDITED = frozenset({("GET", "/v1/sys/health"), ("GET", "/v1/sys/seal-status"), ("GET", "/v1/openapi.json")})


class RequestGuard:
    """Every request gets an id; a body over the limit is a 413 and one that is not valid Unicode a 400, before
    any route runs; a request that no vault operation recorded (no token, a body that does not validate, an
    unknown route) is audited here before its answer goes out — fail closed: if that record cannot be written,
    the answer is a 500 instead. The access-log line holds method, path, status, duration, request id and
    client only: never headers (tokens), query strings or bodies (values).
    """

    def __init__(self, app: ASGIApp, max_body: int, vault: Vault | None = None) -> None:
        self.app, self.max_body, self.vault = app, max_body, vault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, started = uuid.uuid4().hex[:16], time.perf_counter()
        scope.setdefault("state", {})["request_id"] = request_id
        client = scope.get("client")
        answer = _Answer(send, request_id)
        # Audit records written while serving this request carry its id and client address.
        with request_context(request_id, client[0] if client else None) as audit:
            try:
                await self._serve(scope, receive, answer, audit)
            except Exception as exc:  # Starlette re-raises after answering 500; keep tracebacks out of stderr
                log.error("unhandled %s", type(exc).__name__)
                if not answer.started:
                    await self._refuse(answer, scope, audit, 500, "internal", "internal server error")
            finally:
                _log(scope, answer.status, started, request_id)

    async def _serve(self, scope: Scope, receive: Receive, answer: _Answer, audit: RequestScope) -> None:
        body = await self._read_body(scope, receive)
        if body is None:
            await self._refuse(answer, scope, audit, 413, "too_large",
                               f"request body is larger than {self.max_body} bytes")
            return
        if lone_surrogate(body):  # valid JSON, invalid Unicode: refused before any route could store it
            await self._refuse(answer, scope, audit, 400, "invalid_input",
                               "the request body is not valid Unicode (it contains a lone surrogate escape)")
            return

        async def send_audited(message: Message) -> None:
            starting = message["type"] == "http.response.start" and not answer.replaced
            if starting and not self._audit_unrecorded(scope, audit, message["status"]):
                await answer.replace(AuditFailed.http_status, AuditFailed.code, "the request could not be audited; "
                                     "nothing was returned (see the server log)")
                return
            await answer.send(message)

        await self.app(scope, _replay(body, receive), send_audited)

    async def _refuse(self, answer: _Answer, scope: Scope, audit: RequestScope, status: int, code: str,
                      message: str) -> None:
        audit.outcome = code
        self._audit_unrecorded(scope, audit, status)  # best effort: the refusal is the answer either way
        await answer.replace(status, code, message)

    def _audit_unrecorded(self, scope: Scope, audit: RequestScope, status: int) -> bool:
        """Write the request's record if nothing else did. False only when it should be and cannot be written."""
        method, path = str(scope.get("method")), str(scope.get("path"))
        if self.vault is None or audit.recorded or (method, path) in NOT_AUDITED:
            return True
        caller = audit.caller or Caller("anonymous", remote_addr=audit.client)
        outcome = audit.outcome or ("ok" if status < 400 else f"http {status}")
        try:
            self.vault.record_request(caller, f"http.{method.lower()}", path, outcome)
        except Sealed:
            return True  # no key to write a keyed record with while sealed: the access log line is the record
        except AuditFailed as exc:
            log.error("request %s %s not answered: %s", method, path, exc.message)
            return False
        return True

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


class _Answer:
    """The response side of one request: adds the request id, remembers the status, and can replace the app's
    answer with an error before it starts (the app's later messages are then dropped)."""

    def __init__(self, send: Send, request_id: str) -> None:
        self._send, self._request_id = send, request_id
        self.status, self.started, self.replaced = 500, False, False

    async def send(self, message: Message) -> None:
        if self.replaced:
            return
        if message["type"] == "http.response.start":
            self.status, self.started = message["status"], True
            message["headers"] = [*message.get("headers", []), (b"x-request-id", self._request_id.encode())]
        await self._send(message)

    async def replace(self, status: int, code: str, message: str) -> None:
        raw = json.dumps(error_body(code, message)).encode()
        await self.send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
        await self.send({"type": "http.response.body", "body": raw})
        self.replaced = True


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
