"""`Client`: a thin JSON client for kinko's /v1 API; server errors come back as the same kinko.errors types."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from kinko.client.transport import tls_context, unreachable
from kinko.config import server_addresses
from kinko.errors import KinkoError, Sealed, ServerUnreachable, UsageError


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


#: Failures after which the request certainly did not reach the server, so trying the next one cannot run it twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


class Client:
    """One method per request, kinko errors raised for non-2xx answers. Takes its settings as parameters (the
    CLI reads KINKO_ADDR / KINKO_TOKEN / KINKO_CACERT and the token file; see kinko.config).

    `addr` names one server or several, comma-separated (`https://a:8200,https://b:8200`): a request goes to the
    server that last answered, and moves to the next only when the connection to it could not be made (refused,
    unresolvable, connect timeout, TLS handshake) or when that server answers 503 `sealed` (it did nothing).
    Any other answer, a 4xx included, is the answer; a failure after the request was sent (a read timeout, a
    dropped connection) is not repeated elsewhere, since the server may have acted on it.

    `connect`: where to get a connection pool for an address instead of making one (the CSI provider shares
    one per server between mounts, each with its own token); the borrower never closes those.
    """

    def __init__(self, addr: str | None, token: str | None = None, *, ca_file: str | None = None,
                 timeout: float = 30.0, connect: Callable[[str], httpx.Client] | None = None) -> None:
        self.addresses = server_addresses(addr or "")
        if not self.addresses:
            raise UsageError("no server address: set KINKO_ADDR or pass the address")
        #: The setting as given (a login stores its token for exactly these servers).
        self.addr = ",".join(self.addresses)
        self._token = token or None
        self._current = 0
        self._connect = connect
        self._timeout = timeout
        self._verify = tls_context(ca_file) if connect is None else True
        self._own: dict[str, httpx.Client] = {}

    def __repr__(self) -> str:
        return f"Client({self.addr!r})"  # never the token

    @property
    def current(self) -> str:
        """The server requests go to first: the one that answered last."""
        return self.addresses[self._current]

    def close(self) -> None:
        for http in self._own.values():
            http.close()
        self._own.clear()

    def _http(self, address: str) -> httpx.Client:
        if self._connect is not None:
            return self._connect(address)
        http = self._own.get(address)
        if http is None:
            http = self._own[address] = httpx.Client(base_url=address, timeout=self._timeout, verify=self._verify)
        return http

    def use_token(self, token: str | None) -> None:
        """Send `token` from now on (a login's answer, or a token re-read from a file)."""
        self._token = token or None

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                auth: bool = True) -> Any:
        headers = {"X-Kinko-Token": self._token} if auth and self._token else {}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response, failures = None, []
        count = len(self.addresses)
        for step in range(count):
            index = (self._current + step) % count
            address = self.addresses[index]
            try:
                response = self._http(address).request(method, "/v1/" + path.lstrip("/"), json=json,
                                                       headers=headers, params=query)
            except _NOT_SENT as exc:
                failures.append(unreachable(address, exc))
                continue
            except httpx.HTTPError as exc:
                raise unreachable(address, exc) from None
            if response.status_code == 503 and step + 1 < count and _code(response) == Sealed.code:
                continue  # a sealed server serves nothing: the next one may be unsealed
            self._current = index
            break
        if response is None:
            raise _none_reached(failures)
        if response.status_code >= 400:
            raise error_from(response.status_code, _json(response))
        return response.json() if response.content else None

    def health(self) -> int:
        """Status code of /v1/sys/health from the current server; raises httpx errors as they are (callers poll
        with it)."""
        return self._http(self.current).get("/v1/sys/health").status_code


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _code(response: httpx.Response) -> str | None:
    doc = _json(response)
    detail = doc.get("error") if isinstance(doc, dict) else None
    return str(detail.get("code")) if isinstance(detail, dict) else None


def _none_reached(failures: list[ServerUnreachable]) -> ServerUnreachable:
    """One server: its reason as it is. Several: every server's reason, in the order they were tried."""
    if len(failures) == 1:
        return failures[0]
    exc = type(failures[0]) if all(type(f) is type(failures[0]) for f in failures) else ServerUnreachable
    return exc(f"none of the {len(failures)} servers could be reached: " + "; ".join(map(str, failures)))
