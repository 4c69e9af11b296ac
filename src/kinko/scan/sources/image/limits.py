"""Bomb limits for image archives and the bounded gzip/zstd decompressor every archive reader streams through."""

from __future__ import annotations

import functools
import io
import tarfile
import zlib
from dataclasses import dataclass
from typing import IO, cast

import zstandard

_READ = 1 << 20
_STEP = 1 << 20  # decompressed bytes per step: the most one compressed chunk can put in memory
#: PAX / GNU long-name payloads are read whole by any tar reader; real ones are a few hundred bytes
MAX_TAR_META = 1 << 20
_TAR_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                   tarfile.GNUTYPE_LONGLINK)  # fmt: skip
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Limits:
    """Caps that keep hostile archives bounded in time and memory."""

    max_entries_per_layer: int = 2_000_000
    max_layer_bytes: int = 32 << 30  # uncompressed tar stream of one layer
    max_total_bytes: int = 128 << 30  # all layers together (and a compressed outer archive, decompressed)
    max_layer_ratio: float = 500.0  # decompressed/compressed, checked once past ratio_floor
    ratio_floor: int = 256 << 20
    #: Runs of one byte (zero-filled files, padding) are not judged by the ratio until a stream has produced
    #: `run_factor * ratio_floor` bytes of them (4 GiB by default): they cost their decompression alone (the
    #: detector skips them), so a 700 MiB zero-filled file streams through and what follows it is scanned.
    run_factor: int = 16
    max_file_in_memory: int = 64 << 20
    chunk_size: int = 8 << 20
    chunk_overlap: int = 4 << 10
    max_file_bytes: int = 8 << 30
    max_sparse_bytes: int = 64 << 20  # a sparse member's logical size can be huge; scan this much
    max_inner_gzip_bytes: int = 64 << 20
    max_inner_gzip_ratio: float = 200.0


@functools.lru_cache(maxsize=4)
def _run_block(byte: int) -> bytes:
    return bytes((byte,)) * _STEP


def is_run(data: bytes) -> bool:
    """True when `data` is one byte value repeated: nothing in it to find, and nothing to scan.

    Compared in place against a cached block of that byte (no allocation per call: this runs on every step).
    """
    size = len(data)
    if not size or data[0] != data[-1] or data[size >> 1] != data[0]:
        return False  # most data fails here, at the cost of three indexings
    block = _run_block(data[0])
    if size <= _STEP:
        return block.startswith(data)
    return all(data.startswith(block, at) for at in range(0, size - _STEP, _STEP)) and data.endswith(block)


class LimitExceeded(Exception):
    """A bomb limit was hit; the message names the limit (never content)."""


class CappedTarInfo(tarfile.TarInfo):
    """For `tarfile.open(tarinfo=...)`: refuses a metadata entry over MAX_TAR_META before tarfile reads it whole."""

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _TAR_META_TYPES and self.size > MAX_TAR_META:
            raise LimitExceeded(f"tar metadata entry over {MAX_TAR_META} bytes")
        return super()._proc_member(archive)  # type: ignore[misc,no-any-return]


def compression_of(magic: bytes) -> str | None:
    """"gzip" or "zstd" from a stream's first 4 bytes; None for anything else (plain tar included)."""
    if magic[:2] == GZIP_MAGIC:
        return "gzip"
    if magic[:4] == ZSTD_MAGIC:
        return "zstd"
    return None


class _Counted:
    """A raw stream's `read`, counting the compressed bytes consumed (for the ratio cap)."""

    def __init__(self, raw: io.RawIOBase | io.BufferedIOBase) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n) or b""
        self.count += len(data)
        return data


class Inflate(io.RawIOBase):
    """Decompresses gzip (multi-member) or zstd from a raw stream, counting output against a size and ratio cap.

    Each decompression step yields at most `_STEP` bytes, and the caps are checked after every step: a
    compressed chunk that expands ~32,000:1 (zstd of zeros) never lands in memory whole. The ratio judges the
    output that costs a scan: steps that are a run of one byte count only once `run_floor` bytes of them came
    out (a zero-filled file is not a bomb; an endless run still is). `what` names the stream in limit messages
    ("layer", "outer archive").
    """

    def __init__(self, raw: io.RawIOBase | io.BufferedIOBase, kind: str, *, max_bytes: int, max_ratio: float,
                 ratio_floor: int, what: str = "layer", run_floor: int = 0) -> None:  # fmt: skip
        self.src = _Counted(raw)
        self.kind = kind
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self.ratio_floor = ratio_floor
        self.run_floor = run_floor
        self.what = what
        self.produced = 0
        self.runs = 0  # bytes of `produced` that came out as single-byte-run steps
        self.pending = b""  # one step's output; `pos` bytes of it were handed out (no re-slicing per read)
        self.pos = 0
        self.gz = zlib.decompressobj(31) if kind == "gzip" else None
        self.gz_input = b""
        self.gz_full = False  # the last step filled its budget: zlib may hold more output with no input left
        # stream_reader.read(n) returns at most n bytes, and reads across concatenated frames
        self.zs = (
            zstandard.ZstdDecompressor().stream_reader(cast(IO[bytes], self.src), read_size=_READ,
                                                       read_across_frames=True, closefd=False)
            if kind == "zstd" else None
        )  # fmt: skip
        self.eof = False

    @property
    def consumed(self) -> int:
        return self.src.count

    @classmethod
    def for_layer(cls, raw: io.RawIOBase | io.BufferedIOBase, kind: str, limits: Limits) -> Inflate:
        return cls(raw, kind, max_bytes=limits.max_layer_bytes, max_ratio=limits.max_layer_ratio,
                   ratio_floor=limits.ratio_floor, run_floor=limits.run_factor * limits.ratio_floor)  # fmt: skip

    @classmethod
    def for_outer(cls, raw: io.RawIOBase | io.BufferedIOBase, kind: str, limits: Limits) -> Inflate:
        # The outer archive holds every layer (often already compressed): the total cap bounds it.
        return cls(raw, kind, max_bytes=limits.max_total_bytes, max_ratio=limits.max_layer_ratio,
                   ratio_floor=limits.ratio_floor, what="outer archive",
                   run_floor=limits.run_factor * limits.ratio_floor)  # fmt: skip

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while self.pos >= len(self.pending) and not self.eof:
            self.pending, self.pos = self._step(), 0
            if not self.pending:
                self.eof = True
                return
            self.produced += len(self.pending)
            if is_run(self.pending):
                self.runs += len(self.pending)
            self._check()

    def _check(self) -> None:
        if self.produced > self.max_bytes:
            raise LimitExceeded(f"{self.what} decompresses past {self.max_bytes} bytes")
        judged = self.produced - self.runs if self.runs <= self.run_floor else self.produced
        if judged > self.ratio_floor and judged > self.max_ratio * max(self.consumed, 1):
            raise LimitExceeded(f"{self.what} decompression ratio over {self.max_ratio:g}:1 (gzip/zstd bomb)")

    def _step(self) -> bytes:
        """At most `_STEP` decompressed bytes; b"" only at the end of the input."""
        if self.zs is not None:
            return bytes(self.zs.read(_STEP))
        assert self.gz is not None
        while True:
            if not self.gz_input and not self.gz_full:
                self.gz_input = self.src.read(_READ)
                if not self.gz_input:
                    return b""
            out = self.gz.decompress(self.gz_input, _STEP)
            self.gz_full = len(out) == _STEP
            if self.gz.eof:  # concatenated gzip members: the rest starts a new one
                self.gz_input, self.gz_full = self.gz.unused_data, False
                self.gz = zlib.decompressobj(31)
            else:
                self.gz_input = self.gz.unconsumed_tail
            if out:
                return out

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        self._fill()
        n = min(len(b), len(self.pending) - self.pos)
        b[:n] = memoryview(self.pending)[self.pos : self.pos + n]
        self.pos += n
        return n
