"""Secret path rules: hierarchical names like `team/app/db-url`, each segment `[A-Za-z0-9._-]+`."""

from __future__ import annotations

import re

from kinko.errors import InvalidPath

MAX_PATH_LENGTH = 512
MAX_SEGMENTS = 32
#: Policies and audit use `sys/...` for the vault's own operations and `transit/...` for named keys (Vault's
#: transit paths), so secrets may not live there.
RESERVED_ROOT = "sys"
RESERVED_ROOTS = (RESERVED_ROOT, "transit")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_FAST_PATH = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")


def _check_segments(path: str, what: str) -> None:
    segments = path.split("/")
    if len(segments) > MAX_SEGMENTS:
        raise InvalidPath(f"{what} has more than {MAX_SEGMENTS} segments")
    for index, segment in enumerate(segments):
        if segment == "":
            raise InvalidPath(f"{what} {path!r} has an empty segment (leading, trailing or double '/')")
        if segment in (".", ".."):
            raise InvalidPath(f"{what} {path!r}: segment {index + 1} may not be '.' or '..'")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidPath(
                f"{what} {path!r}: segment {index + 1} may only contain letters, digits, '.', '_' and '-'"
            )


def validate_path(path: str) -> str:
    """Return `path` if it is a valid secret path, else raise InvalidPath saying which rule it breaks."""
    if not isinstance(path, str) or path == "":
        raise InvalidPath("secret path is empty")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPath(f"secret path is longer than {MAX_PATH_LENGTH} characters")
    root = path.partition("/")[0]
    if root in RESERVED_ROOTS:
        raise InvalidPath(f"secret paths may not start with {root!r}/ (reserved for the vault itself)")
    if _FAST_PATH.fullmatch(path) and "." not in path and path.count("/") < MAX_SEGMENTS:
        return path  # the common case; the slow check below explains what is wrong otherwise
    _check_segments(path, "secret path")
    return path


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty (everything) or a path, optionally ending in '/'. Returns it without the '/'."""
    trimmed = prefix[:-1] if prefix.endswith("/") else prefix
    if trimmed == "":
        return ""
    if len(trimmed) > MAX_PATH_LENGTH:
        raise InvalidPath(f"prefix is longer than {MAX_PATH_LENGTH} characters")
    _check_segments(trimmed, "prefix")
    return trimmed
