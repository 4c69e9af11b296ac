"""Compression bombs and hostile tar metadata stay within a memory budget and end with a clear cap message."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import zstandard

from kinko.errors import ScanError
from kinko.scan.interface import Finding, ScanResult
from kinko.scan.sources.image import ImageSource
from kinko.scan.sources.image.layers import Limits
from kinko.scan.sources.image.limits import Inflate
from tests.scan.imagebuild import assemble_docker_archive, build_docker_archive, make_config, sha256
from tests.scan.sources.image.test_formats_and_whiteouts import CANARY, CANARY2, CanaryDetector

T = TypeVar("T")
ZERO_FRAME_BYTES = 16 << 20
#: a bomb expands to 512 MiB; bounded decompression keeps a few MiB live, so any budget far below that holds
BUDGET = 96 << 20
#: the caps trip after 16 MiB of output instead of the default 256 MiB, so each test takes well under a second
LIMITS = Limits(ratio_floor=16 << 20, max_file_in_memory=1 << 20, chunk_size=1 << 20)


def zstd_bomb(head: bytes, frames: int = 32) -> bytes:
    """`head` then frames * 16 MiB of zeros as concatenated zstd frames (~530 bytes each: ~32,000:1)."""
    zeros = zstandard.ZstdCompressor(level=1).compress(bytes(ZERO_FRAME_BYTES))
    return zstandard.ZstdCompressor(level=1).compress(head) + zeros * frames


def tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(tarfile.GNU_FORMAT)


def peak_of(fn: Callable[[], T]) -> tuple[T, int]:
    """fn's result and the peak of Python-heap memory (every bytes object included) allocated while it ran."""
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def scan(path: Path, limits: Limits = LIMITS) -> tuple[list[Finding], ScanResult]:
    result = ScanResult()
    return list(ImageSource(path, workers=1, limits=limits).scan(CanaryDetector(), result)), result


def warnings_text(result: ScanResult) -> str:
    return "\n".join(w.message for w in result.warnings)


def gzip_bomb(members: int = 32) -> bytes:
    """members * 16 MiB of zeros as concatenated gzip members (~16 KB each: ~1,000:1)."""
    return gzip.compress(bytes(ZERO_FRAME_BYTES), 9) * members


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_inflate_step_is_bounded_for_a_bomb(kind: str) -> None:
    """One 1 MiB read of compressed input holds 512 MiB of output: it must come out in bounded steps."""
    bomb = gzip_bomb() if kind == "gzip" else zstd_bomb(b"")
    assert len(bomb) < 1 << 20
    inflate = Inflate(io.BytesIO(bomb), kind, max_bytes=1 << 40, max_ratio=1e9, ratio_floor=0)
    buf = bytearray(1 << 16)

    def first_reads() -> int:
        return sum(inflate.readinto(buf) for _ in range(64))

    got, peak = peak_of(first_reads)
    assert got == 64 << 16
    assert peak < BUDGET, f"peak {peak >> 20} MiB"


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_inflate_round_trips_concatenated_members(kind: str) -> None:
    parts = [b"first member\n", bytes(3 << 20), b"third\n" * 1000]
    if kind == "gzip":
        data = b"".join(gzip.compress(p, 9) for p in parts)
    else:
        data = b"".join(zstandard.ZstdCompressor().compress(p) for p in parts)
    reader = io.BufferedReader(Inflate(io.BytesIO(data), kind, max_bytes=1 << 30, max_ratio=1e9, ratio_floor=0))
    assert reader.read() == b"".join(parts)


def test_zstd_layer_bomb_stays_under_budget_and_warns(tmp_path: Path) -> None:
    """A ~35 KB zstd layer that expands to 512 MiB of zeros: the ratio cap stops it, memory stays small."""
    layer = zstd_bomb(tar_header("secret.txt", len(CANARY)) + CANARY.ljust(512, b"\0")
                      + tar_header("zeros.bin", 1 << 30))  # fmt: skip
    config = make_config([sha256(layer)], ["ADD bomb /"])
    archive = assemble_docker_archive(tmp_path / "bomb.tar", [layer], config)
    (findings, result), peak = peak_of(lambda: scan(archive))
    assert peak < BUDGET, f"peak {peak >> 20} MiB"
    assert "layer 0: layer decompression ratio over 500:1" in warnings_text(result)
    assert [f.location.path for f in findings] == ["secret.txt"]  # found before the bomb went off
    assert [w.message.split(";")[0] for w in result.incomplete] == [
        "layer 0: layer decompression ratio over 500:1 (gzip/zstd bomb)"
    ]


def test_zstd_outer_archive_bomb_is_a_scan_error_within_budget(tmp_path: Path) -> None:
    """`docker save | zstd` where one member is a bomb: the index pass stops with the cap, memory stays small."""
    outer = zstd_bomb(tar_header("blob.bin", 1 << 30))
    path = tmp_path / "image.tar.zst"
    path.write_bytes(outer)
    def refused() -> ScanError:
        with pytest.raises(ScanError) as caught:
            scan(path)
        return caught.value

    error, peak = peak_of(refused)
    assert peak < BUDGET, f"peak {peak >> 20} MiB"
    assert "outer archive decompression ratio over 500:1" in str(error)


def _pax_giant(name: str, payload: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.pax_headers = {"comment": "x" * payload}
    return info


def test_giant_pax_header_in_outer_tar_is_capped(tmp_path: Path) -> None:
    """tarfile read PAX payloads whole: a 24 MiB one after the image is refused, what came before is scanned."""
    archive = build_docker_archive(tmp_path / "img.tar", [{"a.txt": CANARY + b"\n"}, {"b.txt": CANARY2}],
                                   ["COPY a", "COPY b"])  # fmt: skip
    with tarfile.open(archive, "a", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_pax_giant("zzz-after", 24 << 20), io.BytesIO(b""))
    (findings, result), peak = peak_of(lambda: scan(archive))
    assert "metadata entry over 1048576 bytes" in warnings_text(result)
    assert sorted(f.location.path for f in findings) == ["a.txt", "b.txt"]
    assert [w.message for w in result.incomplete] == [
        "outer archive: tar metadata entry over 1048576 bytes after 9 entries; rest ignored"
    ]
    assert peak < 16 << 20, f"peak {peak >> 20} MiB"


def test_giant_pax_header_first_in_outer_tar_is_a_scan_error(tmp_path: Path) -> None:
    path = tmp_path / "hostile.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_pax_giant("manifest.json", 4 << 20), io.BytesIO(b""))
    with pytest.raises(ScanError, match="metadata entry over 1048576 bytes"):
        scan(path)
