"""Runs of one byte (zero-filled files) are not bombs: they stream through cheaply and what follows is scanned."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
import tracemalloc
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard
from click.testing import CliRunner

from kinko.cli.scan import cli
from kinko.scan.interface import ScanResult
from kinko.scan.sources.image import ImageSource
from kinko.scan.sources.image.layers import Limits
from kinko.scan.sources.image.limits import _STEP, Inflate, LimitExceeded, is_run
from tests.scan.imagebuild import assemble_docker_archive, make_config, sha256
from tests.scan.sources.image.test_formats_and_whiteouts import CanaryDetector

ENV = b"DATABASE_URL=postgres://app:Zq8vN2kLp4Rt7wXy@db.internal:5432/app\n"
ZEROS = 700 << 20
_CHUNK = 16 << 20


class _Zeros(io.RawIOBase):
    """`size` zero bytes, read in chunks (never all in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


class _MemberWriter(io.RawIOBase):
    """Compresses each write as its own gzip member / zstd frame (a valid stream, as `cat a.gz b.gz` makes);
    a zero chunk seen before reuses its compressed form, so hundreds of MiB of zeros cost one compression."""

    def __init__(self, out: BinaryIO, kind: str) -> None:
        self.out = out
        self.kind = kind
        self.pos = 0
        self.zero: dict[int, bytes] = {}

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def _compress(self, data: bytes) -> bytes:
        if self.kind == "gzip":
            return gzip.compress(data, 6, mtime=0)
        return zstandard.ZstdCompressor(level=3).compress(data)

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(data)
        if data == bytes(len(data)):
            packed = self.zero.get(len(data)) or self.zero.setdefault(len(data), self._compress(data))
        else:
            packed = self._compress(data)
        self.out.write(packed)
        self.pos += len(data)
        return len(data)


def zeros_then_env_layer(path: Path, kind: str, zeros: int = ZEROS) -> Path:
    """A compressed layer tar, written by tarfile: `zeros.img` (`zeros` zero bytes), then `app/.env`."""
    with path.open("wb") as out:
        writer = _MemberWriter(out, kind)
        with tarfile.TarFile(fileobj=writer, mode="w", format=tarfile.GNU_FORMAT, copybufsize=_CHUNK) as tar:
            image = tarfile.TarInfo("zeros.img")
            image.size = zeros
            tar.addfile(image, _Zeros(zeros))
            env = tarfile.TarInfo("app/.env")
            env.size = len(ENV)
            tar.addfile(env, io.BytesIO(ENV))
    return path


def zeros_then_env_image(tmp_path: Path, kind: str) -> Path:
    layer = zeros_then_env_layer(tmp_path / f"layer.tar.{kind}", kind)
    config = make_config([sha256(layer.name.encode())], ["COPY . /app"])
    return assemble_docker_archive(tmp_path / "image.tar", [layer], config)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_zeros_before_an_env_file_do_not_hide_it(kind: str, tmp_path: Path) -> None:
    """The reviewer's case: 700 MiB of zeros tripped the ratio guard and the scan passed with 0 findings."""
    image = zeros_then_env_image(tmp_path, kind)
    assert image.stat().st_size < 2 << 20  # ~1000:1 (gzip), far more (zstd): over the 500:1 ratio cap
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["image", str(image)])
    assert result.exit_code == 1, result.output
    assert "app/.env:1" in result.stdout and "postgres-connection-url" in result.stdout
    assert "0 warning(s), 700.0 MiB scanned" in result.stdout and "incomplete" not in result.output
    assert time.monotonic() - start < 15


def test_streaming_a_zero_run_keeps_memory_small(tmp_path: Path) -> None:
    image = zeros_then_env_image(tmp_path, "zstd")
    tracemalloc.start()
    try:
        result = ScanResult()
        found = list(ImageSource(image, workers=1).scan(CanaryDetector(), result))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == [] and result.incomplete == [] and result.bytes_scanned > ZEROS + len(ENV)  # + the config
    assert peak < 64 << 20, f"peak {peak >> 20} MiB"


def test_an_endless_run_is_still_a_bomb(tmp_path: Path) -> None:
    """Past `run_factor * ratio_floor` bytes of runs, the ratio judges them too: the layer is skipped, reported."""
    layer = zeros_then_env_layer(tmp_path / "bomb.tar.zst", "zstd", zeros=96 << 20)
    image = assemble_docker_archive(tmp_path / "image.tar", [layer], make_config([sha256(b"x")], ["COPY . /"]))
    result = ScanResult()
    list(ImageSource(image, workers=1, limits=Limits(ratio_floor=4 << 20)).scan(CanaryDetector(), result))
    [skipped] = result.incomplete
    assert skipped.message.startswith("layer 0: layer decompression ratio over 500:1 (gzip/zstd bomb)")


def _inflate(data: bytes, **kw: int) -> int:
    reader = Inflate(io.BytesIO(data), "gzip", max_bytes=1 << 40, max_ratio=100.0, **kw)  # type: ignore[arg-type]
    return sum(len(chunk) for chunk in iter(lambda: reader.read(_STEP), b""))


def test_inflate_judges_runs_only_past_the_run_floor() -> None:
    zeros = gzip.compress(bytes(32 << 20), 9)  # ~1000:1
    assert _inflate(zeros, ratio_floor=1 << 20, run_floor=64 << 20) == 32 << 20
    with pytest.raises(LimitExceeded, match="ratio over 100:1"):
        _inflate(zeros, ratio_floor=1 << 20, run_floor=8 << 20)
    dense = gzip.compress(b"KINKO_CANARY_ABCDEFGHIJKLMNOP\n" * (1 << 20), 9)  # repetitive text is judged at once
    with pytest.raises(LimitExceeded, match="ratio over 100:1"):
        _inflate(dense, ratio_floor=1 << 20, run_floor=1 << 40)


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", False), (b"a", True), (b"ab", False), (bytes(_STEP), True), (b"\xff" * (3 * _STEP + 7), True),
     (bytes(_STEP) + b"\1" + bytes(_STEP), False), (bytes(2 * _STEP - 1) + b"\2" + bytes(_STEP), False),
     (b"\1" + bytes(5 * _STEP) + b"\1", False), (os.urandom(4096), False)],
)  # fmt: skip
def test_is_run(data: bytes, expected: bool) -> None:
    assert is_run(data) is expected


def test_chunked_scan_through_runs_keeps_lines_and_boundary_secrets(tmp_path: Path) -> None:
    """A secret running into a run of its own characters and the line numbers after a run of newlines."""
    chunk = 1 << 20
    head = b"x\n" * ((chunk - 20) // 2)
    body = head + b"KINKO_CANARY_AAAA" + b"A" * (chunk * 2 - len(head) - 17)  # the canary crosses into a run
    body += b"\n" * (3 * chunk) + b"ok\nKINKO_CANARY_ZZZZZZZZZZZZZZZZ\n"
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        info = tarfile.TarInfo("big.txt")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    image = assemble_docker_archive(tmp_path / "image.tar", [layer], make_config([sha256(b"l")], ["COPY . /"]))
    limits = Limits(max_file_in_memory=chunk, chunk_size=chunk)
    result = ScanResult()
    found = list(ImageSource(image, workers=1, limits=limits).scan(CanaryDetector(), result))
    expected = [(body.count(b"\n", 0, body.index(s)) + 1, s.decode()) for s in
                (b"KINKO_CANARY_AAAAAAAAAAAAAAAA", b"KINKO_CANARY_ZZZZZZZZZZZZZZZZ")]  # fmt: skip
    assert [(f.location.line, f.secret) for f in found] == expected
    assert result.warnings == []
