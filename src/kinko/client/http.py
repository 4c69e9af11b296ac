"""`Client`: a thin JSON client for kinko's /v1 API; server errors come back as the same kinko.errors types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from kinko.client.transport import tls_context, unreachable
from kinko.errors import KinkoError, UsageError


def _error_classes() -> dict[str, type[KinkoError]]:
    found: dict[str, type[KinkoError]] = {}
    pending: list[type[KinkoError]] = [KinkoError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_from(status: int, doc: Any) -> KinkoError:
    """The kinko error a response body describes (an unknown code keeps its code and status)."""
    detail = doc.get("error") if isinstance(doc, dict) else None
    code = str(detail.get("code", "error")) if isinstance(detail, dict) else "error"
    message = str(detail.get("message", "")) if isinstance(detail, dict) else f"server answered HTTP {status}"
    cls = _error_classes().get(code)
    if cls is None or cls is KinkoError:
        exc = KinkoError(message)
        exc.code, exc.http_status = code, status
        return exc
    return cls(message)


class Client:
    """One method per request, kinko errors raised for non-2xx answers. Takes its settings as parameters (the
    CLI reads KINKO_ADDR / KINKO_TOKEN / KINKO_CACERT and the token file; see kinko.config).

    `http`: an existing connection pool to borrow (the CSI provider shares one per server between mounts, each
    with its own token); the borrower never closes it.
    """

    def __init__(self, addr: str | None, token: str | None = None, *, ca_file: str | None = None,
                 timeout: float = 30.0, http: httpx.Client | None = None) -> None:
        if not addr:
            raise UsageError("no server address: set KINKO_ADDR or pass the address")
        self.addr = addr.rstrip("/")
        self._token = token or None
        self._owns_http = http is None
        self._http = http or httpx.Client(base_url=self.addr, timeout=timeout, verify=tls_context(ca_file))

    def __repr__(self) -> str:
        return f"Client({self.addr!r})"  # never the token

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def use_token(self, token: str | None) -> None:
        """Send `token` from now on (a login's answer, or a token re-read from a file)."""
        self._token = token or None

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                auth: bool = True) -> Any:
        headers = {"X-Kinko-Token": self._token} if auth and self._token else {}
        try:
            response = self._http.request(method, "/v1/" + path.lstrip("/"), json=json, headers=headers,
                                          params={k: v for k, v in (params or {}).items() if v is not None})
        except httpx.HTTPError as exc:
            raise unreachable(self.addr, exc) from None
        if response.status_code >= 400:
            try:
                doc = response.json()
            except ValueError:
                doc = None
            raise error_from(response.status_code, doc)
        return response.json() if response.content else None

    def health(self) -> int:
        """Status code of /v1/sys/health; raises httpx errors as they are (callers poll with it)."""
        return self._http.get("/v1/sys/health").status_code
