"""Fuzz the forward-only tar reader (kinko.scan.sources.image.tarstream) with arbitrary bytes and mutated real tars.

Properties: TarFormatError is the only error; reading stays bounded (data is read in small pieces, skips never
allocate a declared size); a real tar written by `tarfile` reads back as `tarfile` reads it, seekable or not.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass

from hypothesis import assume, given
from hypothesis import strategies as st

from kinko.scan.sources.image.tarstream import Member, TarFormatError, TarStream
from tests.fuzz.budget import fuzz

_PIECE = 4096  # the most one read asks for: a hostile declared size never becomes an allocation


class _Forward(io.BufferedReader):
    """A stream that cannot seek (a decompressing layer): TarStream must skip by reading."""

    def seekable(self) -> bool:
        return False


def _stream(data: bytes, seekable: bool) -> io.BufferedIOBase:
    return (io.BufferedReader if seekable else _Forward)(io.BytesIO(data), 1 << 12)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Read:
    name: str
    type: bytes
    linkname: str
    data: bytes | None  # None: the member's data was not read (skipped)


def read_all(data: bytes, *, seekable: bool, read_data: bool = True) -> list[Read]:
    """Every member, its data read in pieces of at most _PIECE bytes (or left for the reader to skip)."""
    tar = TarStream(_stream(data, seekable))
    out: list[Read] = []
    for member in tar.members():
        assert member.size >= 0
        out.append(Read(member.name, member.type, member.linkname, _data(tar, member) if read_data else None))
    return out


def _data(tar: TarStream, member: Member) -> bytes:
    pieces: list[bytes] = []
    left = member.size
    while left > 0:
        piece = tar.read(min(_PIECE, left))
        assert 0 < len(piece) <= min(_PIECE, left)
        pieces.append(piece)
        left -= len(piece)
    assert tar.read(_PIECE) == b"" and tar.read(-1) == b""  # the member's end, and never "read to the end"
    return b"".join(pieces)


def _expect_only_format_errors(data: bytes, seekable: bool, read_data: bool) -> None:
    try:
        read_all(data, seekable=seekable, read_data=read_data)
    except TarFormatError as exc:
        assert str(exc)  # every refusal says what was wrong


@fuzz
@given(st.binary(max_size=4096), st.booleans(), st.booleans())
def test_arbitrary_bytes(data: bytes, seekable: bool, read_data: bool) -> None:
    _expect_only_format_errors(data, seekable, read_data)


@fuzz
@given(st.lists(st.binary(min_size=512, max_size=512), min_size=1, max_size=4), st.booleans())
def test_arbitrary_header_blocks_with_valid_checksums(blocks: list[bytes], seekable: bool) -> None:
    """Random headers that pass the checksum, so the fields themselves (sizes, PAX, types) get parsed."""
    fixed = []
    for block in blocks:
        head = block[:148] + b" " * 8 + block[156:]
        fixed.append(head[:148] + b"%06o\0 " % (sum(head) & 0o777777) + head[156:])
    _expect_only_format_errors(b"".join(fixed), seekable, True)


_NAMES = st.text(st.sampled_from("ab/._-é漢 \t"), min_size=1, max_size=160).filter(
    lambda n: n.strip("/") and not n.startswith("/") and "//" not in n
)
_FORMATS = st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
_ENTRY = st.tuples(_NAMES, st.one_of(st.binary(max_size=600), _NAMES))  # bytes: a file; str: a symlink target


def build_tar(entries: list[tuple[str, bytes | str]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, value in entries:
            info = tarfile.TarInfo(name)
            if isinstance(value, bytes):
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
    return buf.getvalue()


def _tarfile_view(data: bytes) -> list[Read]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        out = []
        for info in tar.getmembers():
            handle = tar.extractfile(info) if info.isreg() else None
            out.append(Read(info.name, info.type, info.linkname, handle.read() if handle else b""))
        return out


@fuzz
@given(st.lists(_ENTRY, min_size=1, max_size=4), _FORMATS, st.booleans())
def test_real_tars_read_back_as_tarfile_reads_them(entries: list[tuple[str, bytes | str]], fmt: int,
                                                   seekable: bool) -> None:  # fmt: skip
    try:
        data = build_tar(entries, fmt)
    except ValueError:  # a name or link that this format cannot hold (ustar: over 100/155 characters)
        assume(False)
        return
    assert [_comparable(r) for r in read_all(data, seekable=seekable)] == [_comparable(r) for r in _tarfile_view(data)]


def _comparable(read: Read) -> Read:
    """tarfile drops a PAX path's trailing slash and spells a regular file "0" or NUL; the scanner normalizes
    names itself (`clean_member_name`), so those differences are not the reader's to settle."""
    return Read(read.name.rstrip("/"), read.type.replace(b"\0", b"0"), read.linkname, read.data)


_MUTATION = st.tuples(st.sampled_from(["flip", "cut", "insert", "splice"]), st.integers(0, 1 << 16),
                      st.binary(min_size=1, max_size=16))  # fmt: skip


def mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    for kind, at, payload in mutations:
        at %= max(len(data), 1)
        if kind == "flip":
            data = data[:at] + payload + data[at + len(payload) :]
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + payload + data[at:]
        else:  # repeat a block-aligned slice: headers and data from elsewhere in the archive
            start = at - at % 512
            data = data[:start] + data[start : start + 512 * (1 + len(payload) % 3)] + data[start:]
    return data


@fuzz
@given(st.lists(_ENTRY, min_size=1, max_size=4), _FORMATS, st.lists(_MUTATION, min_size=1, max_size=4),
       st.booleans(), st.booleans())  # fmt: skip
def test_mutated_real_tars(entries: list[tuple[str, bytes | str]], fmt: int, mutations: list[tuple[str, int, bytes]],
                           seekable: bool, read_data: bool) -> None:  # fmt: skip
    try:
        data = build_tar(entries, fmt)
    except ValueError:
        assume(False)
        return
    _expect_only_format_errors(mutate(data, mutations), seekable, read_data)


_PAX_KEYS = st.sampled_from(["path", "linkpath", "size", "GNU.sparse.name", "GNU.sparse.realsize", "GNU.sparse.size",
                             "GNU.sparse.major", "hdrcharset", "comment"])  # fmt: skip
_PAX_VALUES = st.one_of(st.text(max_size=12), st.integers(-5, 1 << 70).map(str),
                        st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=4))  # fmt: skip


@fuzz
@given(st.dictionaries(_PAX_KEYS, _PAX_VALUES, min_size=1, max_size=4), st.binary(max_size=64), st.booleans())
def test_pax_records(records: dict[str, str], content: bytes, seekable: bool) -> None:
    """Extended headers with odd values: sizes that are not numbers, digits that are not ASCII, paths of nothing."""
    info = tarfile.TarInfo("file")
    info.size = len(content)
    info.pax_headers = records
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(content))
    _expect_only_format_errors(buf.getvalue(), seekable, True)
