"""A minimal, fast, forward-only tar reader for layer streams (ustar, GNU long names, PAX, base-256 sizes).

`tarfile` builds a TarInfo and a file object per member; on layers with tens of thousands of small files that
is most of the cost of a scan. This reader parses each 512-byte header with slicing, hands back the member's
data on request, and never seeks backwards, so it works on decompressing streams. Sparse members are read
as their stored bytes (the holes are zeros by definition), so a "1 TiB" sparse file costs what it stores.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK = 512
_REGULAR = {b"0", b"\0", b"7"}
_SKIP_CHUNK = 1 << 20


class TarFormatError(Exception):
    """Corrupt or truncated tar data; the message names what was wrong, never content."""


@dataclass
class Member:
    name: str  # raw name; non-UTF-8 bytes kept as surrogate escapes
    type: bytes
    size: int  # stored bytes that follow the header
    linkname: str = ""
    sparse: bool = False
    realsize: int = 0

    def isreg(self) -> bool:
        return self.type in _REGULAR or self.type == b"S"

    def isdir(self) -> bool:
        return self.type == b"5"

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for values that do not fit in octal
        value = int.from_bytes(field[1:], "big")
        return -value if field[0] == 0xFF else value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarFormatError("bad number in tar header") from None


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156])
    unsigned = sum(block) - sum(block[148:156]) + 8 * 32
    return stored == unsigned


def _pax_records(data: bytes) -> dict[str, str]:
    """`<len> <key>=<value>\\n` records. Values are UTF-8 (or raw bytes with hdrcharset=BINARY)."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarFormatError("bad PAX record length") from None
        if length <= 0 or pos + length > len(data):
            raise TarFormatError("bad PAX record length")
        record = data[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _pax_size(value: str) -> int:
    """A PAX size is plain decimal digits; int() alone would take "-1" (read-to-end), " 12" or "1_0"."""
    if not (value.isascii() and value.isdigit()):
        raise TarFormatError("bad PAX size (not a non-negative decimal number)")
    return int(value)


class TarStream:
    """Iterate `members()`; after each one, call `read(n)` for its data (any unread rest is skipped)."""

    def __init__(self, stream: io.BufferedIOBase, *, max_meta: int = 1 << 20) -> None:
        self.stream = stream
        self.max_meta = max_meta  # cap on PAX / long-name payloads (a hostile one could be gigabytes)
        self.left = 0  # unread data bytes of the current member
        self.pad = 0
        self.seekable = stream.seekable()

    def _read_exact(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) < n:
            raise TarFormatError("unexpected end of tar data (truncated)")
        return data

    def read(self, n: int) -> bytes:
        """Up to n bytes of the current member's data; raises TarFormatError if the stream ends early.

        n <= 0 reads nothing: a negative n must never become a file object's "read to the end".
        """
        n = min(n, self.left)
        if n <= 0:
            return b""
        data = self._read_exact(n)
        self.left -= len(data)
        return data

    def _skip(self, n: int) -> None:
        if n <= 0:
            return
        if self.seekable:
            self.stream.seek(n, io.SEEK_CUR)
            return
        while n > 0:
            got = len(self.stream.read(min(n, _SKIP_CHUNK)))
            if not got:
                raise TarFormatError("unexpected end of tar data (truncated)")
            n -= got

    def _finish_member(self) -> None:
        self._skip(self.left + self.pad)
        self.left = self.pad = 0

    def members(self) -> Iterator[Member]:
        pax: dict[str, str] = {}
        longname = longlink = None
        while True:
            self._finish_member()
            block = self.stream.read(BLOCK)
            if len(block) < BLOCK:
                if block:
                    raise TarFormatError("unexpected end of tar data (truncated header)")
                return  # no end-of-archive blocks: tolerated, like GNU tar
            if block.count(0) == BLOCK:
                return  # end-of-archive marker
            if not _checksum_ok(block):
                raise TarFormatError("bad tar header checksum (corrupt)")
            member = self._header(block)
            self.left = member.size
            self.pad = -member.size % BLOCK
            kind = member.type
            if kind in (b"x", b"g", b"L", b"K"):
                if member.size > self.max_meta:
                    raise TarFormatError(f"tar metadata entry over {self.max_meta} bytes")
                payload = self.read(member.size)
                if kind == b"x":
                    pax = _pax_records(payload)
                elif kind == b"L":
                    longname = _text(payload)
                elif kind == b"K":
                    longlink = _text(payload)
                continue  # global headers ('g') only carry defaults we do not need
            if longname is not None:
                member.name = longname
            if longlink is not None:
                member.linkname = longlink
            if pax:
                self._apply_pax(member, pax)
            pax, longname, longlink = {}, None, None
            yield member

    def _header(self, block: bytes) -> Member:
        name = block[0:100]
        if block[257:263] == b"ustar\x00" and block[345] != 0:  # POSIX prefix field
            name = block[345:500].split(b"\0", 1)[0] + b"/" + name
        kind = block[156:157]
        member = Member(_text(name), kind, _number(block[124:136]), _text(block[157:257]))
        if kind == b"S":  # old GNU sparse: stored data is the segments; real size at 483
            member.sparse = True
            member.realsize = _number(block[483:495])
        if member.size < 0:
            raise TarFormatError("negative size in tar header")
        return member

    def _apply_pax(self, member: Member, pax: dict[str, str]) -> None:
        if "path" in pax:
            member.name = pax["path"]
        if "linkpath" in pax:
            member.linkname = pax["linkpath"]
        if "size" in pax:
            member.size = _pax_size(pax["size"])
            self.left, self.pad = member.size, -member.size % BLOCK
        if any(k.startswith("GNU.sparse.") for k in pax):
            member.sparse = True
            member.name = pax.get("GNU.sparse.name", member.name)
            real = pax.get("GNU.sparse.realsize") or pax.get("GNU.sparse.size") or "0"
            # isdigit() alone is true for "²" and "½", which int() refuses; the size is only shown in a warning
            member.realsize = int(real) if real.isascii() and real.isdigit() else 0
