"""One route per method for handlers that serve several (so every OpenAPI operation has its own id)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter

#: Methods OpenAPI cannot describe (Vault's LIST) or that mirror another (HEAD): served, not documented.
UNDOCUMENTED = frozenset({"LIST", "HEAD"})


def add_routes(router: APIRouter, path: str, endpoint: Callable[..., Any], methods: Iterable[str],
               **options: Any) -> None:
    for method in methods:
        router.add_api_route(path, endpoint, methods=[method], name=f"{endpoint.__name__}_{method.lower()}",
                             include_in_schema=method not in UNDOCUMENTED, **options)


def routes(router: APIRouter, path: str, methods: Iterable[str], **options: Any) -> Callable[[Any], Any]:
    """Decorator form of `add_routes`."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        add_routes(router, path, endpoint, methods, **options)
        return endpoint

    return register
