"""A gzip/zstd-compressed outer image archive (`docker save | gzip`), read in two passes with the bomb limits."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
import zstandard

from kinko.errors import ScanError
from kinko.scan.interface import FileStatus, ScanResult
from kinko.scan.sources.image import ImageSource
from kinko.scan.sources.image.layers import Limits
from tests.scan.imagebuild import assemble_docker_archive, build_docker_archive, layer_tar, make_config, sha256
from tests.scan.sources.image.test_formats_and_whiteouts import (
    ALL_FORMS,
    CANARY,
    CANARY2,
    SEED_HISTORY,
    SEED_LAYERS,
    CanaryDetector,
    _build,
    scan,
)


def compress_file(path: Path, kind: str) -> Path:
    data = path.read_bytes()
    out = path.with_name(path.name + (".gz" if kind == "gzip" else ".zst"))
    out.write_bytes(gzip.compress(data, 1) if kind == "gzip" else zstandard.ZstdCompressor().compress(data))
    path.unlink()  # nothing may fall back to the uncompressed file
    return out


TAR_FORMS = [f for f in ALL_FORMS if not f.endswith("-dir")]


@pytest.mark.parametrize("outer", ["gzip", "zstd"])
@pytest.mark.parametrize("kind", TAR_FORMS)
def test_compressed_outer_archive_scans_like_the_plain_one(kind: str, outer: str, tmp_path: Path) -> None:
    plain_findings, plain_result = scan(_build(kind, _prepare(tmp_path / "p"), SEED_LAYERS, SEED_HISTORY))
    archive = compress_file(_build(kind, _prepare(tmp_path / "c"), SEED_LAYERS, SEED_HISTORY), outer)
    findings, result = scan(archive)
    assert result.warnings == []
    [hit] = [f for f in findings if f.location.path == "root/bad-secret"]
    assert hit.location.status is FileStatus.DELETED and hit.location.deleted_in_layer == 2
    assert hit.location.layer_index == 1 and "COPY secret" in (hit.location.created_by or "")

    def shape(fs: list) -> list:  # type: ignore[type-arg]
        return [(f.location.path, f.location.line, f.location.layer_index, f.location.status) for f in fs]

    assert shape(findings) == shape(plain_findings)
    assert result.bytes_scanned == plain_result.bytes_scanned


def _prepare(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return tmp_path


def test_deduplicated_layer_is_reported_for_every_index(tmp_path: Path) -> None:
    """docker save links identical layers: both indexes get the finding, scanned from one read of the blob."""
    same = layer_tar({"app/key.txt": CANARY + b"\n"})
    tars = [layer_tar({"etc/os-release": b"NAME=t\n"}), same, layer_tar({"app/other": b"x\n"}), same]
    config = make_config([sha256(t) for t in tars], ["ADD / /", "COPY key /app", "COPY other /app", "COPY key /app"])
    plain = assemble_docker_archive(_prepare(tmp_path / "d") / "dedupe.tar", tars, config, dedupe_symlink=True)
    findings, result = scan(compress_file(plain, "gzip"))
    hits = sorted((f.location.layer_index, f.location.status) for f in findings if f.location.path == "app/key.txt")
    assert hits == [(1, FileStatus.DELETED), (3, FileStatus.PRESENT)]  # layer 3 replaces layer 1's file
    assert result.warnings == []


def test_outer_gzip_bomb_is_stopped_by_the_limits(tmp_path: Path) -> None:
    """A layer of zeros inside a gzipped archive: the outer ratio cap stops the index pass with a clear error."""
    layers = [{"a.txt": CANARY + b"\n"}, {"zeros.bin": bytes(8 << 20)}, {"b.txt": CANARY2 + b"\n"}]
    archive = compress_file(build_docker_archive(tmp_path / "bomb.tar", layers, ["COPY a", "COPY z", "COPY b"]),
                            "gzip")
    assert archive.stat().st_size < 200_000  # ~8 MiB of tar in a small file
    limits = Limits(ratio_floor=1 << 20, max_layer_ratio=20.0)
    with pytest.raises(ScanError, match="outer archive decompression ratio over 20:1"):
        list(ImageSource(archive, workers=1, limits=limits).scan(CanaryDetector(), ScanResult()))
    findings, _ = scan(archive)  # the default limits let this (~50:1) archive through
    assert {f.location.path for f in findings} >= {"a.txt", "b.txt"}


def test_outer_total_bytes_cap(tmp_path: Path) -> None:
    archive = compress_file(build_docker_archive(tmp_path / "big.tar", SEED_LAYERS, SEED_HISTORY), "zstd")
    with pytest.raises(ScanError, match="outer archive decompresses past 4096 bytes"):
        list(ImageSource(archive, workers=1, limits=Limits(max_total_bytes=4096)).scan(CanaryDetector(), ScanResult()))


def test_truncated_compressed_archive_is_an_error_or_a_warning(tmp_path: Path) -> None:
    archive = compress_file(build_docker_archive(tmp_path / "t.tar", SEED_LAYERS, SEED_HISTORY), "gzip")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ScanError, match="not a docker-archive or OCI image"):  # manifest.json comes last
        scan(archive)


def test_compressed_garbage_is_a_scan_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(gzip.compress(os.urandom(4096)))
    with pytest.raises(ScanError, match="not a docker-archive or OCI image"):
        scan(junk)
    not_gzip = tmp_path / "fake.tar.gz"
    not_gzip.write_bytes(b"\x1f\x8b" + os.urandom(200))
    with pytest.raises(ScanError, match="gzip-compressed"):
        scan(not_gzip)


def test_layers_cut_off_in_a_compressed_archive_are_reported(tmp_path: Path) -> None:
    """Metadata first (as podman writes), then the stream ends inside layer 1: layer 0 scanned, the rest reported."""
    import io
    import tarfile

    tars = [layer_tar({"a.txt": CANARY + b"\n"}), layer_tar({"b.bin": os.urandom(300_000) + CANARY2})]
    config = make_config([sha256(t) for t in tars], ["COPY a", "COPY b"])
    plain = tmp_path / "ordered.tar"
    with tarfile.open(plain, "w") as tar:
        man = json.dumps([{"Config": "c.json", "Layers": ["0/layer.tar", "1/layer.tar"]}]).encode()
        members = [("manifest.json", man), ("c.json", config), ("0/layer.tar", tars[0]), ("1/layer.tar", tars[1])]
        for name, blob in members:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    archive = compress_file(plain, "gzip")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) - 150_000])
    findings, result = scan(archive)
    assert [f.location.path for f in findings] == ["a.txt"]
    skipped = [w.message for w in result.incomplete]
    assert any(m.startswith("archive is truncated or corrupt after") for m in skipped)
    assert any(m.startswith("layer 1: ") and "not scanned" in m for m in skipped)
