"""Who is calling: token from the request headers -> Caller, with per-client rate limiting of failures."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace

from starlette.requests import Request

from kinko.api.errors import RateLimited
from kinko.errors import PermissionDenied
from kinko.vault import Caller, Vault, current_request

MAX_TOKEN_CHARS = 512


class FailureLimiter:
    """At most `limit` failed authentications per client address in `window` seconds (per worker process)."""

    def __init__(self, limit: int = 20, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float] | None:
        entries = self._failures.get(client)
        if entries is None:
            return None
        cutoff = self._clock() - self.window
        while entries and entries[0] < cutoff:
            entries.popleft()
        if not entries:
            del self._failures[client]
            return None
        return entries

    def check(self, client: str) -> None:
        entries = self._recent(client)
        if entries is not None and len(entries) >= self.limit:
            raise RateLimited()

    def failed(self, client: str) -> None:
        if len(self._failures) > 10_000:  # bound memory under a spray of addresses
            for name in list(self._failures):
                self._recent(name)
        self._failures.setdefault(client, deque()).append(self._clock())


def token_from(request: Request) -> str | None:
    """The token of `X-Kinko-Token`, Vault's `X-Vault-Token` or `Authorization: Bearer` (first given wins)."""
    headers = request.headers
    token = headers.get("x-kinko-token")
    if token is None:
        token = headers.get("x-vault-token")
    if token is None:
        scheme, _, rest = headers.get("authorization", "").partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else None
    return usable(token)


def token_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """`token_from` over raw ASGI headers (for the hot read path, which has no Request object)."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _TOKEN_HEADERS and name not in found:
            found[name] = value
    raw = found.get(b"x-kinko-token", found.get(b"x-vault-token"))
    if raw is None:
        scheme, _, rest = found.get(b"authorization", b"").partition(b" ")
        raw = rest.strip() if scheme.lower() == b"bearer" else None
    if raw is None:
        return None
    try:
        return usable(raw.decode("latin-1"))
    except UnicodeDecodeError:  # latin-1 decodes every byte; kept for clarity
        return None


_TOKEN_HEADERS = frozenset({b"x-kinko-token", b"x-vault-token", b"authorization"})


def usable(token: str | None) -> str | None:
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    return token


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def caller_for(request: Request, vault: Vault, limiter: FailureLimiter, *, consume: bool = True) -> Caller:
    """Authenticate the request or raise the one uniform PermissionDenied (or RateLimited). `consume`: spend a
    use of a use-limited token (not for its self-lookup or self-renewal)."""
    return caller_for_token(token_from(request), client_address(request), vault, limiter, consume=consume)


def caller_for_token(token: str | None, client: str, vault: Vault, limiter: FailureLimiter, *,
                     consume: bool = True) -> Caller:
    """The Caller of `token` from `client` (see caller_for).

    A valid token is always accepted: the limiter is keyed on the client address, and behind a shared NAT one
    guesser must not lock everyone else out. Only a missing or invalid token is answered 429 while over the limit.
    """
    try:
        if token is None:
            raise PermissionDenied()
        caller = vault.authenticate(token, remote_addr=client, consume=consume)
    except PermissionDenied:
        limiter.check(client)  # over the limit: 429 (and not counted again, so memory stays bounded)
        limiter.failed(client)
        raise PermissionDenied() from None  # same message whatever the reason
    caller = caller if caller.remote_addr else replace(caller, remote_addr=client)
    audit_scope = current_request()
    if audit_scope is not None:
        audit_scope.caller = caller  # who the request's audit record names if no operation writes one
    return caller
