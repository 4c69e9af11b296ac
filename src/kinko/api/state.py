"""What a worker's routes share (the vault, the unseal broadcast, the failure limiter) and the typed FastAPI
dependencies that hand it out: `St` (the state), `Who` (an authenticated caller), `Session` (a VaultSession as
that caller), `SelfSession` (the same, without spending a use of a use-limited token).

Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a thread pool (a thread hop per
request); each is one flat function because every FastAPI sub-dependency costs time on every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from kinko.api.auth import FailureLimiter, caller_for
from kinko.api.cluster import UnsealBroadcast
from kinko.vault import DEFAULT_KV_MOUNTS, Caller, LocalSession, Vault


@dataclass
class ApiState:
    """Everything a worker's routes need; lives on `app.state.kinko`."""

    vault: Vault
    broadcast: UnsealBroadcast = field(default_factory=UnsealBroadcast)
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    #: Vault KV v2 mount name -> kinko path prefix (what a Vault policy's `<mount>/data/...` paths mean)
    kv_mounts: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_KV_MOUNTS))


async def state(request: Request) -> ApiState:
    current: ApiState = request.app.state.kinko
    current.broadcast.sync(current.vault)  # unseals/seals done by other workers
    return current


async def authorized(request: Request) -> Caller:
    """Unsealed vault + valid token. Sealed answers 503 before any token is looked at."""
    st = await state(request)
    st.vault.require_unsealed()  # raises Sealed (503) / NotInitialized (501)
    return caller_for(request, st.vault, st.limiter)


async def session(request: Request) -> LocalSession:
    """The vault as the request's caller (unsealed vault + valid token, as `authorized`)."""
    st = await state(request)
    st.vault.require_unsealed()
    return st.vault.session(caller_for(request, st.vault, st.limiter))


async def self_session(request: Request) -> LocalSession:
    """Like `session`, but a use-limited token is not spent by looking at or renewing itself (as in Vault)."""
    st = await state(request)
    st.vault.require_unsealed()
    return st.vault.session(caller_for(request, st.vault, st.limiter, consume=False))


St = Annotated[ApiState, Depends(state)]
Who = Annotated[Caller, Depends(authorized)]
Session = Annotated[LocalSession, Depends(session)]
SelfSession = Annotated[LocalSession, Depends(self_session)]
