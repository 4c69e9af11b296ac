"""Per-user on-disk cache of compiled hyperscan databases (compiled rules only, never scanned content).

Compiling the shipped rules takes ~0.4 s, longer than scanning a few hundred MiB; loading the serialized
database takes well under a millisecond. The cache lives in the directory the caller passes (the CLI's is
`config.scan_cache_dir`: `$XDG_CACHE_HOME/kinko` or `~/.cache/kinko`), made a 0700 directory owned by the user;
each entry is a 0600 file written atomically, named by the sha256 of everything that shapes the database
(patterns, flags, ids, mode, hyperscan version, CPU). A file that is not ours, has loose permissions, or fails
its checksum is ignored and rebuilt: the cache is only ever a shortcut. No directory (None) means no cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

#: Bump when the file layout changes; old entries then simply stop matching.
_MAGIC = b"kinko-hsdb-1\n"
_DIGEST = 64  # hex sha256
#: Serialized databases of any sane rule set are far smaller; a bigger file is not ours.
_MAX_ENTRY = 64 << 20
_SUFFIX = ".hsdb"


#: The checks below need POSIX owners, O_NOFOLLOW and *at() calls; elsewhere the rules are simply compiled.
_SUPPORTED = (
    hasattr(os, "geteuid")
    and hasattr(os, "O_DIRECTORY")
    and hasattr(os, "O_NOFOLLOW")
    and os.open in os.supports_dir_fd
    and os.rename in os.supports_dir_fd  # os.replace uses the same renameat() but is not listed
)


def _cpu_identity() -> bytes:
    """The CPU features a database was built for: a home dir shared across machines must not mix them."""
    flags = b""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", "rb") as fh:
        for line in fh:
            if line.startswith((b"flags", b"Features")):
                flags = line
                break
    return platform.machine().encode() + b"\0" + flags


def database_key(version: str, mode: int, patterns: Sequence[tuple[bytes, int]]) -> str:
    """sha256 (hex) over the hyperscan version, the mode, the CPU and every (expression, flags) in id order."""
    digest = hashlib.sha256(_MAGIC)
    for part in (version.encode(), str(mode).encode(), _cpu_identity()):
        digest.update(len(part).to_bytes(8, "big") + part)
    for expression, flags in patterns:
        digest.update(len(expression).to_bytes(8, "big") + expression + flags.to_bytes(8, "big", signed=True))
    return digest.hexdigest()


@contextlib.contextmanager
def _private_dir(folder: Path, create: bool) -> Iterator[int | None]:
    """An fd of `folder` when it is a real directory owned by us and closed to others (made 0700 if asked).

    Everything after the check goes through this fd (openat/renameat), so swapping the path for a symlink
    between the check and the use changes nothing.
    """
    if create:
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            yield None
            return
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # missing, not a directory, or a symlink: never read from or write into it
        yield None
        return
    try:
        info = os.fstat(dfd)
        usable = info.st_uid == os.geteuid()
        if usable and info.st_mode & 0o077:
            try:
                os.fchmod(dfd, 0o700)  # ours but too open (made by hand or an old umask): close it
            except OSError:
                usable = False
        yield dfd if usable else None
    finally:
        os.close(dfd)


def load(key: str, folder: Path | None) -> bytes | None:
    """The serialized database stored under `key` in `folder`, or None when absent or untrustworthy in any way."""
    if folder is None or not _SUPPORTED:
        return None
    with _private_dir(folder, create=False) as dfd:
        if dfd is None:
            return None
        try:
            fd = os.open(key + _SUFFIX, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except OSError:
            return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            return None
        if info.st_size > _MAX_ENTRY:
            return None
        data = fh.read()
    return _unwrap(data, key)


def _unwrap(data: bytes, key: str) -> bytes | None:
    """Header = magic, key, sha256 of the payload; anything that does not check out is a miss."""
    head = len(_MAGIC) + 2 * (_DIGEST + 1)
    if len(data) < head or not data.startswith(_MAGIC):
        return None
    stored_key = data[len(_MAGIC) : len(_MAGIC) + _DIGEST]
    stored_sum = data[len(_MAGIC) + _DIGEST + 1 : head - 1]
    payload = data[head:]
    if stored_key != key.encode() or stored_sum != hashlib.sha256(payload).hexdigest().encode():
        return None
    return payload


def store(key: str, payload: bytes, folder: Path | None) -> bool:
    """Write the entry into `folder` atomically (a new 0600 temp file renamed over the name); False when there
    is no cache or it is unusable."""
    if folder is None or not _SUPPORTED:
        return False
    body = _MAGIC + key.encode() + b"\n" + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    with _private_dir(folder, create=True) as dfd:
        if dfd is None:
            return False
        tmp = f".tmp-{secrets.token_hex(8)}{_SUFFIX}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        except OSError:
            return False
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(tmp, key + _SUFFIX, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            return False
    return True
