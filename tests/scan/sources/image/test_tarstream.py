"""The fast layer tar reader against tars written by the stdlib in every header format."""

from __future__ import annotations

import io
import tarfile

import pytest

from kinko.scan.sources.image.tarstream import TarFormatError, TarStream

LONG = "usr/lib/python3.11/site-packages/" + "very_long_package_name/" * 6 + "module.py"


def make(fmt: int, entries: list[tuple[str, bytes | None, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/" + LONG if fmt != tarfile.USTAR_FORMAT else "target"
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def read_all(raw: bytes, *, seekable: bool = True) -> list[tuple[str, bytes, str, bytes]]:
    stream = io.BufferedReader(io.BytesIO(raw)) if seekable else _Unseekable(raw)
    tar = TarStream(stream)  # type: ignore[arg-type]
    out = []
    for m in tar.members():
        data = tar.read(m.size) if m.isreg() else b""
        out.append((m.name, m.type, m.linkname, data))
    return [(n, d, lk, t) for n, t, lk, d in out]


class _Unseekable(io.BufferedReader):
    def __init__(self, raw: bytes) -> None:
        super().__init__(io.BytesIO(raw))  # type: ignore[arg-type]

    def seekable(self) -> bool:
        return False


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("seekable", [True, False])
def test_formats_long_names_links_and_data(fmt: int, seekable: bool) -> None:
    entries = [
        ("etc/", None, tarfile.DIRTYPE),
        (LONG, b"x = 1\n" * 300, tarfile.REGTYPE),
        ("etc/empty", b"", tarfile.REGTYPE),
        ("etc/link", None, tarfile.SYMTYPE),
        ("etc/after", b"tail", tarfile.REGTYPE),
    ]
    got = read_all(make(fmt, entries), seekable=seekable)
    assert [g[0] for g in got] == ["etc/", LONG, "etc/empty", "etc/link", "etc/after"]
    assert got[1][1] == b"x = 1\n" * 300
    assert got[4][1] == b"tail"
    assert got[3][2] in ("/" + LONG, "target")


def test_unread_data_is_skipped_and_partial_reads_work() -> None:
    raw = make(tarfile.PAX_FORMAT, [("a", b"A" * 5000, tarfile.REGTYPE), ("b", b"B" * 10, tarfile.REGTYPE)])
    tar = TarStream(io.BufferedReader(io.BytesIO(raw)))
    names = []
    for m in tar.members():
        names.append(m.name)
        if m.name == "a":
            assert tar.read(100) == b"A" * 100  # the other 4900 bytes are skipped by the reader
        else:
            assert tar.read(100) == b"B" * 10
    assert names == ["a", "b"]


def test_corrupt_header_and_truncation_raise_format_error() -> None:
    raw = bytearray(make(tarfile.GNU_FORMAT, [("a", b"hello", tarfile.REGTYPE)]))
    raw[10] ^= 0xFF  # inside the name: checksum no longer matches
    with pytest.raises(TarFormatError, match="checksum"):
        read_all(bytes(raw))
    good = make(tarfile.GNU_FORMAT, [("a", b"hello" * 1000, tarfile.REGTYPE)])
    with pytest.raises(TarFormatError, match="truncated"):
        read_all(good[:2000], seekable=False)


def test_non_utf8_names_survive_as_surrogate_escapes() -> None:
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        got = read_all(make(fmt, [(name, b"1", tarfile.REGTYPE)]))
        assert got[0][0].encode("utf-8", "surrogateescape") == b"caf\xe9.txt"


def _pax_size_tar(size: str) -> bytes:
    """A PAX member whose extended header claims `size`, then a normal file and a whiteout after it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/liar")
        info.size = 4
        info.pax_headers = {"size": size}
        tar.addfile(info, io.BytesIO(b"data"))
        for name in ("etc/after", "etc/.wh.gone"):
            tail = tarfile.TarInfo(name)
            tail.size = 5
            tar.addfile(tail, io.BytesIO(b"tail\n"))
    return buf.getvalue()


@pytest.mark.parametrize("size", ["-1", "-5", "0x10", " 12", "1e3"])
@pytest.mark.parametrize("seekable", [True, False])
def test_negative_or_non_numeric_pax_size_is_a_format_error(size: str, seekable: bool) -> None:
    """size=-1 used to read the rest of the layer as one file (hiding later whiteouts); -5 was a ValueError."""
    with pytest.raises(TarFormatError, match="PAX size"):
        read_all(_pax_size_tar(size), seekable=seekable)


def test_read_of_zero_or_negative_length_is_a_no_op() -> None:
    raw = make(tarfile.PAX_FORMAT, [("a", b"A" * 700, tarfile.REGTYPE), ("b", b"B" * 10, tarfile.REGTYPE)])
    tar = TarStream(io.BufferedReader(io.BytesIO(raw)))
    got = []
    for m in tar.members():
        assert tar.read(-1) == b"" and tar.read(0) == b""
        got.append((m.name, tar.read(m.size)))
    assert got == [("a", b"A" * 700), ("b", b"B" * 10)]


@pytest.mark.parametrize("realsize", ["²", "½", "٣", "-1", "x"])
def test_odd_sparse_realsize_is_ignored_not_a_crash(realsize: str) -> None:
    """Found by tests/fuzz/test_scan_tarstream.py: str.isdigit() accepts "²", which int() refuses (ValueError)."""
    info = tarfile.TarInfo("disk.img")
    info.size = 3
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.realsize": realsize}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"abc"))
    [member] = TarStream(io.BufferedReader(io.BytesIO(buf.getvalue()))).members()
    assert member.sparse and member.realsize == 0 and member.size == 3
