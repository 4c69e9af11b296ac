"""Bomb limits for image archives and the bounded gzip/zstd decompressor every archive reader streams through."""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

import zstandard

_READ = 1 << 20
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
    max_file_in_memory: int = 64 << 20
    chunk_size: int = 8 << 20
    chunk_overlap: int = 4 << 10
    max_file_bytes: int = 8 << 30
    max_sparse_bytes: int = 64 << 20  # a sparse member's logical size can be huge; scan this much
    max_inner_gzip_bytes: int = 64 << 20
    max_inner_gzip_ratio: float = 200.0


class LimitExceeded(Exception):
    """A bomb limit was hit; the message names the limit (never content)."""


def compression_of(magic: bytes) -> str | None:
    """"gzip" or "zstd" from a stream's first 4 bytes; None for anything else (plain tar included)."""
    if magic[:2] == GZIP_MAGIC:
        return "gzip"
    if magic[:4] == ZSTD_MAGIC:
        return "zstd"
    return None


class Inflate(io.RawIOBase):
    """Decompresses gzip (multi-member) or zstd from a raw stream, counting output against a size and ratio cap.

    `what` names the stream in limit messages ("layer", "outer archive").
    """

    def __init__(self, raw: io.RawIOBase | io.BufferedIOBase, kind: str, *, max_bytes: int, max_ratio: float,
                 ratio_floor: int, what: str = "layer") -> None:  # fmt: skip
        self.raw = raw
        self.kind = kind
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self.ratio_floor = ratio_floor
        self.what = what
        self.consumed = 0
        self.produced = 0
        self.pending = b""
        self.gz = zlib.decompressobj(31) if kind == "gzip" else None
        self.zs = zstandard.ZstdDecompressor().decompressobj() if kind == "zstd" else None
        self.eof = False

    @classmethod
    def for_layer(cls, raw: io.RawIOBase | io.BufferedIOBase, kind: str, limits: Limits) -> Inflate:
        return cls(raw, kind, max_bytes=limits.max_layer_bytes, max_ratio=limits.max_layer_ratio,
                   ratio_floor=limits.ratio_floor)  # fmt: skip

    @classmethod
    def for_outer(cls, raw: io.RawIOBase | io.BufferedIOBase, kind: str, limits: Limits) -> Inflate:
        # The outer archive holds every layer (often already compressed): the total cap bounds it.
        return cls(raw, kind, max_bytes=limits.max_total_bytes, max_ratio=limits.max_layer_ratio,
                   ratio_floor=limits.ratio_floor, what="outer archive")  # fmt: skip

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self.pending and not self.eof:
            chunk = self.raw.read(_READ)
            if not chunk:
                self.eof = True
                return
            self.consumed += len(chunk)
            self.pending = self._decompress(chunk)

    def _decompress(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            if self.gz is not None:
                out.append(self.gz.decompress(chunk))
                chunk = self.gz.unused_data if self.gz.eof else b""
                if chunk:  # concatenated gzip members
                    self.gz = zlib.decompressobj(31)
            else:
                assert self.zs is not None
                out.append(self.zs.decompress(chunk))
                chunk = self.zs.unused_data if self.zs.eof else b""
                if chunk:
                    self.zs = zstandard.ZstdDecompressor().decompressobj()
        return b"".join(out)

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        self._fill()
        n = min(len(b), len(self.pending))
        b[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        self.produced += n
        if self.produced > self.max_bytes:
            raise LimitExceeded(f"{self.what} decompresses past {self.max_bytes} bytes")
        if self.produced > self.ratio_floor and self.produced > self.max_ratio * max(self.consumed, 1):
            raise LimitExceeded(f"{self.what} decompression ratio over {self.max_ratio:g}:1 (gzip/zstd bomb)")
        return n
