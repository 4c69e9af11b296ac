"""The hottest routes below the framework: GET of a secret by the native API (`/v1/secrets/<path>`) and by Vault's
KV v2 API (`/v1/<mount>/data/<path>`), with no query or only `?version=N`; and Vault transit's encrypt and decrypt
(`POST|PUT /v1/transit/encrypt|decrypt/<name>`, no query).

Routing and dependency resolution cost more than the whole vault read (profiled: ~70 % of a request), so these
two reads are answered here directly. They take exactly the framework path's steps, in its order — unseal state
from the other workers, sealed -> 503 before any token is looked at, token -> caller (rate-limited failures), then
`Vault.get` / `Vault.kv.read`, which authorize, audit and decrypt with the record's AAD — and answer the same
bytes (tests/api/test_hot_read.py compares them). Anything else goes on to the framework.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kinko.api.auth import caller_for_token, token_from_headers
from kinko.api.compat.vault_kv2 import entry_response_parts
from kinko.api.compat.vault_shapes import dumps, vault_error
from kinko.api.compat.vault_transit import decrypt_answer, encrypt_answer
from kinko.api.errors import error_response
from kinko.api.models import encode_value, version_doc
from kinko.api.state import ApiState
from kinko.errors import KinkoError
from kinko.vault import Caller, Vault

_NATIVE = "/v1/secrets/"
_TRANSIT = "/v1/transit/"
TransitAnswer = Callable[[Request, Caller, Vault, str], Awaitable[Response]]
_TRANSIT_OPS: dict[str, TransitAnswer] = {"encrypt": encrypt_answer, "decrypt": decrypt_answer}
_VERSION_QUERY = re.compile(rb"version=([1-9][0-9]{0,17})")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class HotReads:
    """ASGI layer in front of the FastAPI app (inside the request guard, which ids, audits and logs as usual)."""

    def __init__(self, app: ASGIApp, state: ApiState, kv_mounts: Mapping[str, str]) -> None:
        self.app, self.state = app, state
        self._kv = {f"/v1/{name}/data/": prefix for name, prefix in kv_mounts.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT") and not scope["query_string"]:
            op, _, name = scope["path"].removeprefix(_TRANSIT).partition("/")
            answer = _TRANSIT_OPS.get(op) if scope["path"].startswith(_TRANSIT) else None
            if answer is not None and name and "/" not in name:
                await self._transit(scope, receive, send, answer, name)
                return
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            query: bytes = scope["query_string"]
            version = None
            if query:
                matched = _VERSION_QUERY.fullmatch(query)
                if matched is None:
                    await self.app(scope, receive, send)
                    return
                version = int(matched.group(1))
            if path.startswith(_NATIVE) and len(path) > len(_NATIVE):
                await self._native(scope, send, path[len(_NATIVE):], version)
                return
            for start, prefix in self._kv.items():
                rest = path[len(start):]
                if path.startswith(start) and rest.strip("/") and not rest.endswith("/"):  # "x/": the routes' 404
                    await self._kv_read(scope, send, prefix + path[len(start):], version)
                    return
        await self.app(scope, receive, send)

    def _caller(self, scope: Scope) -> Any:
        st = self.state
        st.broadcast.sync(st.vault)  # unseals/seals done by other workers
        st.vault.require_unsealed()  # Sealed (503) / NotInitialized (501) before any token is looked at
        client = scope.get("client")
        return caller_for_token(token_from_headers(scope["headers"]), client[0] if client else "unknown",
                                st.vault, st.limiter)

    async def _native(self, scope: Scope, send: Send, path: str, version: int | None) -> None:
        try:
            with self.state.vault.pinned_reads():
                secret = self.state.vault.get(self._caller(scope), path, version)
        except KinkoError as exc:
            await error_response(exc)(scope, _no_body, send)
            return
        body = {**version_doc(secret.info), **encode_value(secret.value), "metadata": secret.metadata}
        await _send_json(send, 200, body)

    async def _kv_read(self, scope: Scope, send: Send, path: str, version: int | None) -> None:
        try:
            with self.state.vault.pinned_reads():
                entry = self.state.vault.kv.read(self._caller(scope), path, version)
        except KinkoError as exc:
            await vault_error(exc)(scope, _no_body, send)
            return
        status, body = entry_response_parts(scope.get("state", {}).get("request_id", ""), entry)
        await _send_json(send, status, body)


    async def _transit(self, scope: Scope, receive: Receive, send: Send, answer: TransitAnswer, name: str) -> None:
        # Not pinned (Vault.pinned_reads): an encrypt may create or auto-rotate its key and then use it.
        request = Request(scope, receive)
        try:
            response = await answer(request, self._caller(scope), self.state.vault, name)
        except KinkoError as exc:
            response = vault_error(exc)
        await response(scope, receive, send)


async def _send_json(send: Send, status: int, body: Any) -> None:
    raw = dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", b"%d" % len(raw))]})
    await send({"type": "http.response.body", "body": raw})


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}
