"""Git objects found as files (a `.git` directory copied into an image by `COPY . .`): loose objects (zlib) and
packfiles (deltas resolved by dulwich), so a file committed and then `git rm`'d is still seen.

Only blobs are returned, as `objects/ab/cdef...!blob` or `pack-....pack!<blob id>`. Which commit and path a blob
belongs to needs the rest of the `.git` directory: for image layers `gitwhere.py` moves the findings there.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable, Iterator

_LOOSE = re.compile(r"(?:^|/)objects/[0-9a-f]{2}/[0-9a-f]{38}$")
_HEADER_MAX = 32


def is_loose_object(name: str, data: bytes) -> bool:
    """A loose object: its place under objects/ and a zlib stream header (0x78)."""
    return data[:1] == b"x" and _LOOSE.search(name) is not None


def is_pack(name: str, data: bytes) -> bool:
    return name.endswith(".pack") and data[:4] == b"PACK"


def loose_blob(data: bytes, cap: int) -> tuple[bytes | None, str | None]:
    """(content, None) of a loose blob of at most `cap` bytes; (None, problem) when it cannot or may not be read;
    (None, None) for commits, trees and tags."""
    inflater = zlib.decompressobj()
    try:
        head = inflater.decompress(data, _HEADER_MAX)
        kind, _, rest = head.partition(b" ")
        size_text, nul, _ = rest.partition(b"\0")
        if kind != b"blob":
            return None, None
        if not nul or not size_text.isdigit():
            return None, "not a git object (bad header)"
        if int(size_text) > cap:
            return None, f"git blob of {int(size_text)} bytes is over {cap}; not scanned"
        body = head[head.index(b"\0") + 1 :] + inflater.decompress(inflater.unconsumed_tail, cap + 1)
    except zlib.error as exc:
        return None, f"corrupt git object ({exc})"
    return body[:cap], None


def pack_blobs(
    name: str, data: bytes, take: Callable[[str, int], bool], problems: list[str]
) -> Iterator[tuple[str, bytes]]:
    """Every blob of the packfile `data`, deltas resolved, as (`name!<id>`, content); `take(member, size)` is the
    caller's budget (a refusal skips that blob). A pack that cannot be read is a problem, not an error."""
    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import PackData, PackInflater

    try:
        pack = PackData(name, object_format=DEFAULT_OBJECT_FORMAT, file=io.BytesIO(data), size=len(data))
        for obj in PackInflater.for_pack_data(pack):
            if obj.type_name != b"blob":
                continue
            member = f"{name}!{obj.id.decode()}"
            content = obj.as_raw_string()
            if take(member, len(content)):
                yield member, content
    except Exception as exc:  # dulwich raises many kinds on a corrupt or truncated pack
        problems.append(f"{name}: git pack not fully read ({type(exc).__name__}); the rest was not scanned")
