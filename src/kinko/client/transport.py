"""How the client reaches a server: the TLS context from a CA file, and naming why a server was unreachable."""

from __future__ import annotations

import ssl

import httpx

from kinko.errors import InvalidInput, ServerUnreachable, TLSFailure


def tls_context(ca_file: str | None) -> ssl.SSLContext | bool:
    """Verify against `ca_file` when given (checked now, so a bad path is named), else the default CAs."""
    if not ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; missing file, not PEM, unreadable
        reason = exc.strerror or getattr(exc, "reason", None) or type(exc).__name__
        raise InvalidInput(f"cannot use CA file {ca_file!r} (--ca-file / KINKO_CACERT): {reason}") from None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from (httpx wraps httpcore wraps ssl/socket errors)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def unreachable(addr: str, exc: httpx.HTTPError) -> ServerUnreachable:
    """Name why `addr` could not be talked to: bad scheme, TLS verification, refused, timeout, ..."""
    where = f"cannot reach {addr}"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ServerUnreachable(f"cannot reach {addr!r}: the address must start with http:// or https:// "
                                 "(KINKO_ADDR)")
    if isinstance(exc, httpx.TimeoutException):
        return ServerUnreachable(f"{where}: no answer in time ({type(exc).__name__})")
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "certificate not trusted"
            return TLSFailure(f"{where}: certificate verify failed: {reason}; set KINKO_CACERT (or --ca-file) "
                              "to the CA that signed the server's certificate")
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            return TLSFailure(f"{where}: TLS handshake failed ({cause.reason or 'ssl error'}); "
                              "is the server speaking plain http://?")
        if isinstance(cause, ConnectionRefusedError):
            return ServerUnreachable(f"{where}: connection refused (is the server running on that port?)")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ServerUnreachable(f"{where}: the server closed the connection without an answer "
                                 "(does it expect https://?)")
    return ServerUnreachable(f"{where}: {str(exc) or type(exc).__name__}")
