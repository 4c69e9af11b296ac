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
#: Set by interfaces (the HTTP server) per request; the sink uses it for request_id and client.
_REQUEST: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar("kinko_audit_request",
                                                                                          default=None)


@contextlib.contextmanager
def request_context(request_id: str, client: str | None = None) -> Iterator[None]:
    """Tag every audit record written inside the block with this request id and client address."""
    reset = _REQUEST.set((request_id, client))
    try:
        yield
    finally:
        _REQUEST.reset(reset)


def hmac_value(salt: bytes, value: bytes | bytearray | str) -> str:
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return HMAC_PREFIX + hmac.new(salt, raw, hashlib.sha256).hexdigest()


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
    return hmac.new(key, prev.encode("ascii", "replace") + body, hashlib.sha256).hexdigest()


def _serialise(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def _finish(record: dict[str, Any], key: bytes) -> tuple[bytes, str]:
    """The v2 record's line (no newline) with its keyed hash added, and that hash."""
    body = {**record, "v": VERSION}
    digest = _keyed_hash(key, str(body["prev"]), _serialise(body))
    return _serialise({**body, "hash": digest}), digest


def _link_of(line: bytes) -> str:
    """What the next record's `prev` must be: a v2 record's own `hash`, a v1 line's SHA-256."""
    record = _record(line)
    if record is not None and record.get("v") == VERSION and isinstance(record.get("hash"), str):
        return str(record["hash"])
    return _line_hash(line)


class AuditLog:
    """An AuditSink for the Vault: `(caller, operation, path, outcome, data=None)`; raises AuditFailed."""

    def __init__(self, path: str | Path, salt: Callable[[], bytes], *, stdout: bool = False) -> None:
        self.path = Path(path)
        self._salt = salt
        self._stdout = stdout
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._last: tuple[int, str] | None = None  # (file size after our last write, that line's hash)
        self._key: tuple[bytes, bytes] | None = None  # (salt, chain key derived from it)
        with self._lock:
            self._open()

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
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
            self.close_fd()

    def _previous(self, size: int) -> str:
        """Hash of the last line in the file (read under the lock; cached when we wrote it ourselves)."""
        if size == 0:
            return GENESIS
        if self._last is not None and self._last[0] == size:
            return self._last[1]
        return _link_of(_last_line(self.path, size))

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
            "request_id": request[0] if request else str(uuid.uuid4()),
            "accessor": caller.accessor, "subject": caller.subject, "operation": operation, "path": path,
            "outcome": outcome, "client": caller.remote_addr or (request[1] if request else None),
        }
        if data:
            record["data"] = redact(self._salt(), data)  # Sealed propagates: no salt, no request
        key = self._chain_key()
        try:
            line = self._append(record, key)
        except OSError as exc:
            raise AuditFailed(f"audit record not written to {str(self.path)!r}: {exc.strerror}") from None
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
                fcntl.flock(fd, fcntl.LOCK_UN)  # rotated away by someone else: follow the path
                self.close_fd()
            else:
                raise AuditFailed(f"audit log {str(self.path)!r} keeps being replaced")
            try:
                size = os.fstat(fd).st_size
                line, digest = _finish({**record, "prev": self._previous(size)}, key)
                _write_all(fd, line + b"\n", size)
                self._last = (size + len(line) + 1, digest)
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
            return line


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


def _last_line(path: Path, size: int) -> bytes:
    """The last line of a file that ends in a newline, without that newline (reads backwards in chunks)."""
    with open(path, "rb") as handle:
        pos, buf = size - 1, b""
        while pos > 0:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            handle.seek(pos)
            buf = handle.read(step) + buf
            cut = buf.rfind(b"\n")
            if cut >= 0:
                return buf[cut + 1:]
        return buf


# -- verification --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainReport:
    """What `check_chain` found. `keyed`: v2 records whose HMAC was checked; `unkeyed`: records only
    structure-checked (v1 records, or every record when no key was given)."""

    first_bad_line: int | None
    reason: str | None
    keyed: int
    unkeyed: int

    @property
    def ok(self) -> bool:
        return self.first_bad_line is None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "first_bad_line": self.first_bad_line, "reason": self.reason,
                "keyed_records": self.keyed, "unkeyed_records": self.unkeyed}


def check_chain(path: str | Path, key: bytes | None = None) -> ChainReport:
    """Walk the file once. With `key` (chain_key of the vault's audit salt) every v2 record's HMAC is checked;
    without it only the links (`prev`) are, which catches naive edits but not a rewritten chain.

    A deleted record is reported at the line where it is missing (the next record's `prev` no longer
    matches); an edited record at its own line (its `hash` no longer matches).
    """
    previous, keyed, unkeyed, seen_v2 = GENESIS, 0, 0, False
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\n")
            record = _record(line)
            problem: str | None
            if not raw.endswith(b"\n"):  # only the last line can lack one: a write cut off mid-record
                problem = "not a complete audit record (cut short?)"
            elif record is None:
                problem = "not an audit record"
            elif record.get("v", 1) == VERSION:
                seen_v2 = True
                problem = _check_v2(record, previous, key)
                if problem == EDITED and keyed == 0:  # not one record verified yet: most likely the wrong key
                    problem = "does not verify with this vault's audit key (written by another vault, or edited)"
                keyed, unkeyed = (keyed + 1, unkeyed) if key is not None else (keyed, unkeyed + 1)
            elif "v" in record:
                problem = "unknown audit record version"
            elif seen_v2:  # a downgrade: unkeyed records never follow keyed ones
                problem = "unkeyed (v1) record after keyed records"
            else:
                problem = None if _chained_v1(record, previous) else "record deleted, reordered or edited here"
                unkeyed += 1
            if problem is not None:
                return ChainReport(number, problem, keyed, unkeyed)
            previous = _link_of(line)
    return ChainReport(None, None, keyed, unkeyed)


EDITED = "record edited here (its keyed hash does not match)"


def _check_v2(record: dict[str, Any], previous: str, key: bytes | None) -> str | None:
    claimed = record.pop("hash", None)
    if record.get("prev") != previous or not isinstance(claimed, str):
        return "record deleted or reordered before this line"
    if key is not None and not hmac.compare_digest(claimed, _keyed_hash(key, previous, _serialise(record))):
        return EDITED
    return None


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "prev" in record and "hash" in record else None


def _chained_v1(record: dict[str, Any], previous: str) -> bool:
    if record.get("prev") != previous:
        return False
    claimed = record.pop("hash", None)
    return isinstance(claimed, str) and hmac.compare_digest(claimed, _line_hash(_serialise(record)))
