"""The audit log: HMAC-chained JSON lines, sensitive strings HMAC'd with the vault's salt, fail-closed writes.

Record (one JSON object per line, keys sorted): v (2), time (RFC 3339, UTC), request_id, accessor (never the
token), subject, operation, path, outcome ("allowed" / "denied" / an error code, optionally ":reason"), client
(address or null), data (sensitive values only, each replaced by "hmac-sha256:<hex>"), prev (the previous
record's `hash`; GENESIS for the first line) and hash = HMAC-SHA256(chain key, prev || the record serialised
without `hash`). The chain key is derived from the vault's sealed audit salt, so only someone holding the
unsealed vault can write or check a chain: deleting or editing a record and recomputing the rest needs it.
Truncating the end of the file is not detectable from the file alone (keep the last `hash` elsewhere for that).

v1 records (no `v`, written before the chain was keyed) used plain SHA-256 of the previous line; they are still
read and structure-checked, but say nothing against someone who rewrites them.

Several threads and processes may append to one file: each write takes a thread lock and an exclusive flock,
reads the previous line's hash under the lock, then appends with O_APPEND. Any failure raises AuditFailed, and
the Vault raises it before the operation takes effect, so nothing happens unaudited.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import hashlib
import hmac
import json
import os
import stat
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kinko.core.model import Caller
from kinko.errors import AuditFailed

GENESIS = "0" * 64
VERSION = 2
_CHAIN_LABEL = b"kinko audit chain"
HMAC_PREFIX = "hmac-sha256:"
_TAIL_CHUNK = 8192

@dataclass
class RequestScope:
    """One API request as the audit sees it: its id and client, whether a record was written for it, and what
    the interface learned on the way (the authenticated caller, the error answered) for a record written last."""

    request_id: str
    client: str | None = None
    recorded: bool = False
    caller: Caller | None = None
    outcome: str | None = None


#: Set by interfaces (the HTTP server) per request; the sink uses it for request_id and client.
_REQUEST: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar("kinko_audit_request", default=None)


@contextlib.contextmanager
def request_context(request_id: str, client: str | None = None) -> Iterator[RequestScope]:
    """Tag every audit record written inside the block with this request id and client address."""
    scope = RequestScope(request_id, client)
    reset = _REQUEST.set(scope)
    try:
        yield scope
    finally:
        _REQUEST.reset(reset)


def current_request() -> RequestScope | None:
    """The request being served in this context (None outside the HTTP server)."""
    return _REQUEST.get()


def hmac_value(salt: bytes, value: bytes | bytearray | str) -> str:
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return HMAC_PREFIX + hmac.digest(salt, raw, "sha256").hex()  # the one-shot C call: no HMAC object per leaf


def redact(salt: bytes, data: Any) -> Any:
    """Replace every string/bytes leaf with its HMAC; mapping keys and numbers/booleans stay as they are."""
    if isinstance(data, str | bytes | bytearray):
        return hmac_value(salt, data)
    if isinstance(data, Mapping):
        return {str(k): redact(salt, v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact(salt, v) for v in data]
    return data


def chain_key(salt: bytes) -> bytes:
    """The key that chains records: HMAC(salt, label), so the salt itself never keys two different things."""
    return hmac.new(salt, _CHAIN_LABEL, hashlib.sha256).digest()


def _line_hash(line: bytes) -> str:
    """v1 link: plain SHA-256 of a line (anyone can recompute it)."""
    return hashlib.sha256(line).hexdigest()


def _keyed_hash(key: bytes, prev: str, body: bytes) -> str:
    return hmac.digest(key, prev.encode("ascii", "replace") + body, "sha256").hex()


def _serialise(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def _finish(record: dict[str, Any], key: bytes) -> tuple[bytes, str]:
    """The v2 record's line (no newline) with its keyed hash added, and that hash."""
    body = _serialise({**record, "v": VERSION})
    digest = _keyed_hash(key, str(record["prev"]), body)
    # The hash goes last rather than in sorted place: verifiers parse the line, drop `hash` and re-serialise,
    # so the order is free, and the body is serialised once instead of twice.
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}', digest


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "prev" in record and "hash" in record else None


def _link_of(line: bytes) -> str:
    """What the next record's `prev` must be: a v2 record's own `hash`, a v1 line's SHA-256."""
    record = _record(line)
    if record is not None and record.get("v") == VERSION and isinstance(record.get("hash"), str):
        return str(record["hash"])
    return _line_hash(line)


class AuditLog:
    """An AuditSink for the Vault: `(caller, operation, path, outcome, data=None)`; raises AuditFailed.

    The chain never silently restarts: when the file is rotated or removed, the first record of the new file
    chains to the last link of the old one and says `rotated_from`, so a removed file shows as a gap. `head` is
    the last link known from before this process (kept by the vault), used when the file is new at start;
    `on_head` is told the current last link at start, on rotation and at close, to keep it.
    """

    def __init__(self, path: str | Path, salt: Callable[[], bytes], *, stdout: bool = False,
                 head: str | None = None, on_head: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self._salt = salt
        self._stdout = stdout
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._last: tuple[int, str] | None = None  # (file size after our last write, that line's hash)
        self._key: tuple[bytes, bytes] | None = None  # (salt, chain key derived from it)
        self._head = head  # the last link of the chain so far, where a new file must continue from
        self._on_head = on_head
        with self._lock:
            fd = self._open()
            size = os.fstat(fd).st_size
            if size:
                self._head = _link_of(_tail(fd, size))
            self._keep_head()

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        try:
            # Read too: the chain's last link is read through this descriptor, so it is this file's even when
            # the path is renamed or removed meanwhile.
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            raise AuditFailed(f"cannot open audit log {str(self.path)!r}: {exc.strerror}") from None
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o600)  # an existing file others could read: tighten it (never a device)
        self._fd, self._inode, self._last = fd, (st.st_dev, st.st_ino), None
        return fd

    def _is_current(self) -> bool:
        """False when the file at our path is no longer the one we hold open (rotated or removed)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._inode

    def close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._inode, self._last = None, None, None

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                size = os.fstat(self._fd).st_size
                if size:
                    self._head = _link_of(_tail(self._fd, size))
            self._keep_head()
            self.close_fd()

    def _keep_head(self) -> None:
        if self._on_head is not None and self._head is not None:
            with contextlib.suppress(Exception):  # best effort: the file itself is the record
                self._on_head(self._head)

    def _previous(self, fd: int, size: int) -> str:
        """Hash of the last line in the file (read under the lock; cached when we wrote it ourselves); in a new
        file, the chain's last link so far (GENESIS only for the very first record)."""
        if size == 0:
            return self._head or GENESIS
        if self._last is not None and self._last[0] == size:
            return self._last[1]
        return _link_of(_tail(fd, size))

    def forget_key(self) -> None:
        """Drop the chain key derived from the audit salt (the vault sealed): the next record derives it again."""
        self._key = None

    def _chain_key(self) -> bytes:
        salt = self._salt()  # Sealed propagates: no key, no record, no request
        if self._key is None or self._key[0] != salt:
            self._key = (salt, chain_key(salt))
        return self._key[1]

    def __call__(self, caller: Caller, operation: str, path: str, outcome: str,
                 data: Mapping[str, Any] | None = None) -> None:
        request = _REQUEST.get()
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "request_id": request.request_id if request else str(uuid.uuid4()),
            "accessor": caller.accessor, "subject": caller.subject, "operation": operation, "path": path,
            "outcome": outcome, "client": caller.remote_addr or (request.client if request else None),
        }
        if data:
            record["data"] = redact(self._salt(), data)  # Sealed propagates: no salt, no request
        key = self._chain_key()
        try:
            line = self._append(record, key)
        except OSError as exc:
            raise AuditFailed(f"audit record not written to {str(self.path)!r}: {exc.strerror}") from None
        if request is not None:
            request.recorded = True
        if self._stdout:
            sys.stdout.write(line.decode() + "\n")
            sys.stdout.flush()

    def _append(self, record: dict[str, Any], key: bytes) -> bytes:
        with self._lock:
            for _ in range(5):
                fd = self._open()
                fcntl.flock(fd, fcntl.LOCK_EX)
                if self._is_current():
                    break
                self._leave(fd)  # rotated or removed by someone else: remember where it ended, follow the path
            else:
                raise AuditFailed(f"audit log {str(self.path)!r} keeps being replaced")
            try:
                size = os.fstat(fd).st_size
                prev = self._previous(fd, size)
                if size == 0 and prev != GENESIS:
                    record = {**record, "rotated_from": prev}  # a new file continues the chain, and says so
                line, digest = _finish({**record, "prev": prev}, key)
                _write_all(fd, line + b"\n", size)
                self._last, self._head = (size + len(line) + 1, digest), digest
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
            return line


    def _leave(self, fd: int) -> None:
        """Stop writing to a file that is no longer at our path, keeping the last link it holds (all workers
        append to the same inode, so its tail is the chain's true end)."""
        size = os.fstat(fd).st_size
        if size:
            self._head = _link_of(_tail(fd, size))
        fcntl.flock(fd, fcntl.LOCK_UN)
        self.close_fd()
        self._keep_head()


def _write_all(fd: int, data: bytes, size_before: int) -> None:
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError:
        # A torn line would break the chain for every later record: cut it off again (best effort).
        if written:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size_before)
        raise


def _tail(fd: int, size: int) -> bytes:
    """The last line of an open file that ends in a newline, without that newline (read backwards in chunks; the
    file is read through its own descriptor, so a file renamed or removed meanwhile is still the one read)."""
    pos, buf = size - 1, b""
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        cut = buf.rfind(b"\n")
        if cut >= 0:
            return buf[cut + 1:]
    return buf
