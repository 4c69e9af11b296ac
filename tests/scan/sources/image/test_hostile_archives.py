"""Hostile image archives: every case ends in a clear error or warnings plus findings so far, writing nothing."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from kinko.errors import ScanError
from kinko.scan.interface import FileStatus, Finding, ScanResult
from kinko.scan.sources.image import ImageSource
from kinko.scan.sources.image.layers import Limits
from tests.scan.imagebuild import (
    Hardlink,
    Symlink,
    assemble_docker_archive,
    build_docker_archive,
    build_oci_layout,
    compress,
    layer_tar,
    make_config,
    raw_tar,
    sha256,
)
from tests.scan.sources.image.test_formats_and_whiteouts import CANARY, CANARY2, CanaryDetector


def scan(path: Path, limits: Limits | None = None, workers: int = 1) -> tuple[list[Finding], ScanResult]:
    result = ScanResult()
    findings = list(ImageSource(path, workers=workers, limits=limits).scan(CanaryDetector(), result))
    return findings, result


def warnings_text(result: ScanResult) -> str:
    return "\n".join(w.message for w in result.warnings)


def skipped_text(result: ScanResult) -> str:
    """The parts the scan reports as not scanned (each also a warning); they make `kinko scan` exit 3."""
    return "\n".join(w.message for w in result.incomplete)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def info(name: str, size: int = 0, type_: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.type = type_
    ti.linkname = linkname
    return ti


def test_dotdot_and_absolute_names_in_outer_tar_and_layers(tmp_path: Path) -> None:
    layer = raw_tar(
        [
            (info("../../etc/evil-secret", len(CANARY)), CANARY),
            (info("/abs/secret", len(CANARY2)), CANARY2),
        ]
    )
    config = make_config([sha256(layer)], ["COPY evil /"])
    # Two levels deep in this test's own directory: `../../` from the archive still lands inside tmp_path,
    # which no other test (or xdist worker) writes to, so the before/after snapshot sees only this scan.
    archive = tmp_path / "a" / "b" / "evil.tar"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w") as tar:
        for name, data in [
            ("/abs-config.json", config),
            ("../../escape/layer.tar", layer),
            (
                "manifest.json",
                json.dumps([{"Config": "/abs-config.json", "Layers": ["../../escape/layer.tar"]}]).encode(),
            ),
        ]:
            tar.addfile(info(name, len(data)), io.BytesIO(data))
    before = tree(tmp_path)
    findings, result = scan(archive)
    assert sorted(f.location.path for f in findings) == ["abs/secret", "etc/evil-secret"]
    assert all(f.location.status is FileStatus.PRESENT for f in findings)
    text = warnings_text(result)
    assert "absolute or `..` member names" in text  # outer tar
    assert "2 absolute or `..` entry names" in text  # inside the layer
    assert tree(tmp_path) == before  # nothing written anywhere
    assert result.incomplete == []  # normalized names are scanned: a warning, not a skip


def test_links_pointing_outside_are_never_followed(tmp_path: Path) -> None:
    layers = [
        {
            "app/real.txt": CANARY,
            "app/shadow": Symlink("../../../../etc/shadow"),
            "app/hard": Hardlink("../../outside/file"),
            "app/alias": Symlink("real.txt"),
        }
    ]
    findings, result = scan(build_docker_archive(tmp_path / "l.tar", layers, ["ADD /"]))
    assert [f.location.path for f in findings] == ["app/real.txt"]  # links are not scanned twice
    text = warnings_text(result)
    assert "app/shadow points outside" in text
    assert "app/hard points outside" in text
    assert "app/alias" not in text
    assert result.incomplete == []


def test_tar_bomb_entry_cap_keeps_findings_so_far(tmp_path: Path) -> None:
    many: dict[str, bytes | None] = {"first.txt": CANARY}
    many.update({f"f/{i}": b"" for i in range(3000)})
    archive = build_docker_archive(tmp_path / "bomb.tar", [{"base.txt": CANARY2}, many], ["ADD /", "RUN spam"])
    findings, result = scan(archive, Limits(max_entries_per_layer=1000))
    assert sorted(f.location.path for f in findings) == ["base.txt", "first.txt"]
    assert "over 1000 entries (tar bomb)" in warnings_text(result)
    assert "layer 1: over 1000 entries (tar bomb); scan of this layer stopped" in skipped_text(result)


def test_huge_declared_size_is_truncated_layer_warning(tmp_path: Path) -> None:
    # A header claims 10 GiB but the layer ends right after: read fails cleanly, findings before it stay.
    ok = info("ok.txt", len(CANARY)).tobuf(tarfile.GNU_FORMAT) + CANARY.ljust(512, b"\0")
    bomb_layer = ok + info("huge.bin", 10 << 30).tobuf(tarfile.GNU_FORMAT) + b"A" * 4096
    config = make_config([sha256(bomb_layer)], ["ADD bomb /"])
    archive = assemble_docker_archive(tmp_path / "declared.tar", [bomb_layer], config)
    findings, result = scan(archive)
    assert [f.location.path for f in findings] == ["ok.txt"]
    assert "truncated or corrupt" in warnings_text(result)
    assert "layer 0: truncated or corrupt" in skipped_text(result)


def test_total_bytes_cap_stops_later_layers(tmp_path: Path) -> None:
    layers = [{"a": b"x" * 5000 + CANARY}, {"b": b"y" * 5000 + CANARY}, {"c": CANARY}]
    archive = build_docker_archive(tmp_path / "t.tar", layers, ["a", "b", "c"])
    findings, result = scan(archive, Limits(max_total_bytes=4000))
    assert [f.location.layer_index for f in findings] == [0]
    assert "layers not scanned: 1, 2" in warnings_text(result)
    assert "(bomb limit, Limits.max_total_bytes); layers not scanned: 1, 2" in skipped_text(result)


def test_gzip_bomb_layer_and_inner_gzip_bomb(tmp_path: Path) -> None:
    zeros = b"\0" * (24 << 20)
    bomb = layer_tar({"secret.txt": CANARY, "zeros.bin": zeros})
    inner = gzip.compress(CANARY + zeros, compresslevel=1)  # ~1000:1
    layers = [{"x": b"1"}, {"var/log/huge.log.gz": inner}]
    tars = [bomb, layer_tar(layers[1])]
    config = make_config([sha256(t) for t in tars], ["ADD bomb", "COPY log"])
    oci = tmp_path / "bomb-oci"
    # Reuse the OCI writer for the second layer; put the bomb blob in by hand as gzip.
    build_oci_layout(oci, [{"x": b"1"}, layers[1]], ["ADD bomb", "COPY log"], as_tar=False)
    index = json.loads((oci / "index.json").read_bytes())
    mdigest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((oci / "blobs/sha256" / mdigest).read_bytes())
    blob = compress(bomb, "gzip")
    (oci / "blobs/sha256" / sha256(blob).split(":")[1]).write_bytes(blob)
    manifest["layers"][0]["digest"] = sha256(blob)
    (oci / "blobs/sha256" / sha256(config).split(":")[1]).write_bytes(config)
    manifest["config"]["digest"] = sha256(config)
    (oci / "blobs/sha256" / mdigest).write_bytes(json.dumps(manifest).encode())
    limits = Limits(ratio_floor=1 << 20, max_layer_ratio=100.0, max_inner_gzip_ratio=50.0)
    findings, result = scan(oci, limits)
    text = warnings_text(result)
    assert "layer 0: layer decompression ratio over 100:1" in text
    assert "huge.log.gz inflates past" in text
    skipped = skipped_text(result)
    assert "layer 0: layer decompression ratio over 100:1" in skipped and "huge.log.gz inflates past" in skipped
    assert ("var/log/huge.log.gz!huge.log", 1) in [(f.location.path, f.location.line) for f in findings]
    assert ("secret.txt", 0) in [(f.location.path, f.location.layer_index) for f in findings]


def test_truncated_archive_gives_warning_and_findings_so_far(tmp_path: Path) -> None:
    layers = [{"base.txt": CANARY}, {"big.bin": os.urandom(200_000) + CANARY2}]
    archive = build_docker_archive(tmp_path / "t.tar", layers, ["ADD /", "COPY big"])
    data = archive.read_bytes()
    cut = data.index(b"KINKO_CANARY_ZZZZ") - 50_000  # inside the second layer's file
    archive.write_bytes(data[:cut])
    with pytest.raises(ScanError):  # manifest.json comes last in docker save, so it is gone
        scan(archive)
    # Same cut, but with the metadata first (as podman writes): layer 1 is truncated, layer 0 is fine.
    tars = [layer_tar(layer) for layer in layers]
    config = make_config([sha256(t) for t in tars], ["ADD /", "COPY big"])
    ordered = tmp_path / "ordered.tar"
    with tarfile.open(ordered, "w") as tar:
        man = json.dumps([{"Config": "c.json", "Layers": ["0/layer.tar", "1/layer.tar"]}]).encode()
        for name, blob in [
            ("manifest.json", man),
            ("c.json", config),
            ("0/layer.tar", tars[0]),
            ("1/layer.tar", tars[1]),
        ]:
            tar.addfile(info(name, len(blob)), io.BytesIO(blob))
    data = ordered.read_bytes()
    ordered.write_bytes(data[: data.index(b"KINKO_CANARY_ZZZZ") - 50_000])
    findings, result = scan(ordered)
    assert [f.location.path for f in findings] == ["base.txt"]
    assert "truncated" in warnings_text(result)
    assert "archive is truncated or corrupt after 4 entries" in skipped_text(result)
    assert "layer 1: truncated or corrupt" in skipped_text(result)


def test_tiny_or_garbage_file_is_a_scan_error(tmp_path: Path) -> None:
    archive = build_docker_archive(tmp_path / "a.tar", [{"a": CANARY}], ["a"])
    archive.write_bytes(archive.read_bytes()[:100])
    with pytest.raises(ScanError, match="not a docker-archive or OCI image"):
        scan(archive)


def test_corrupt_compressed_layer_other_layers_still_scanned(tmp_path: Path) -> None:
    oci = build_oci_layout(
        tmp_path / "c", [{"a.txt": CANARY}, {"b.txt": CANARY2 + os.urandom(5000)}], ["a", "b"], as_tar=False
    )
    manifest_digest = json.loads((oci / "index.json").read_bytes())["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((oci / "blobs/sha256" / manifest_digest).read_bytes())
    second = oci / "blobs/sha256" / manifest["layers"][1]["digest"].split(":")[1]
    blob = bytearray(second.read_bytes())
    blob[20:60] = b"\xff" * 40  # garbage inside the deflate stream
    second.write_bytes(bytes(blob))
    findings, result = scan(oci)
    assert "a.txt" in [f.location.path for f in findings]
    assert "layer 1: truncated or corrupt" in warnings_text(result)
    assert "layer 1: truncated or corrupt" in skipped_text(result)


def test_missing_blob_warns_and_scans_other_layers(tmp_path: Path) -> None:
    layers = [{"a.txt": CANARY}, {"b.txt": b"nothing"}, {"c.txt": CANARY2}]
    oci = build_oci_layout(tmp_path / "m", layers, ["a", "b", "c"], as_tar=False)
    manifest_digest = json.loads((oci / "index.json").read_bytes())["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((oci / "blobs/sha256" / manifest_digest).read_bytes())
    (oci / "blobs/sha256" / manifest["layers"][1]["digest"].split(":")[1]).unlink()
    findings, result = scan(oci, workers=2)
    assert [f.location.path for f in findings] == ["a.txt", "c.txt"]
    assert "layer 1 blob" in warnings_text(result)
    assert "is missing from the archive" in warnings_text(result)
    assert "is missing from the archive; not scanned" in skipped_text(result)


def test_non_utf8_names_are_reported_printably(tmp_path: Path) -> None:
    name = b"opt/caf\xe9/secret".decode("utf-8", "surrogateescape")
    layer = raw_tar([(info(name, len(CANARY)), CANARY)])
    config = make_config([sha256(layer)], ["COPY x"])
    archive = assemble_docker_archive(tmp_path / "u.tar", [layer], config)
    findings, _ = scan(archive)
    assert [f.location.path for f in findings] == ["opt/caf\\xe9/secret"]
    json.dumps(findings[0].location.path)  # reports can serialize it


def test_huge_sparse_member_is_bounded(tmp_path: Path) -> None:
    payload = (CANARY + b"\n").ljust(512, b"\0")
    sparse_map = b"1\n0\n512\n".ljust(512, b"\0")
    sparse = info("GNUSparseFile.0/disk.img", len(sparse_map) + len(payload))
    sparse.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "disk.img",
        "GNU.sparse.realsize": str(1 << 40),  # 1 TiB of holes
    }
    layer = raw_tar([(sparse, sparse_map + payload), (info("after.txt", len(CANARY2)), CANARY2)])
    config = make_config([sha256(layer)], ["COPY disk"])
    archive = assemble_docker_archive(tmp_path / "s.tar", [layer], config)
    findings, result = scan(archive, Limits(max_sparse_bytes=1 << 20))
    assert sorted(f.location.path for f in findings) == ["after.txt", "disk.img"]
    assert f"sparse file disk.img (declares {1 << 40} bytes): scanned its stored data only" in warnings_text(result)
    assert result.bytes_scanned < 2 << 20
    assert result.incomplete == []  # the holes are zeros: all there is was scanned


def test_total_bytes_cap_with_parallel_workers(tmp_path: Path) -> None:
    layers = [{"a": b"x" * 15000 + CANARY}, {"b": b"y" * 25000 + CANARY}, {"c": b"z" * 100 + CANARY}]
    archive = build_docker_archive(tmp_path / "tp.tar", layers, ["a", "b", "c"])
    findings, result = scan(archive, Limits(max_total_bytes=4000), workers=2)
    # The two biggest layers are in flight before any byte count is known; the smallest one is left out.
    assert sorted(f.location.layer_index for f in findings) == [0, 1]
    assert "layers not scanned: 2" in warnings_text(result)
    assert "layers not scanned: 2" in skipped_text(result)


def test_oci_dir_blob_symlinked_outside_the_layout_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.tar"
    outside.write_bytes(layer_tar({"stolen.txt": CANARY}))
    oci = build_oci_layout(tmp_path / "o", [{"a.txt": CANARY2}, {"b.txt": b"1"}], ["a", "b"], as_tar=False)
    manifest_digest = json.loads((oci / "index.json").read_bytes())["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((oci / "blobs/sha256" / manifest_digest).read_bytes())
    blob = oci / "blobs/sha256" / manifest["layers"][1]["digest"].split(":")[1]
    blob.unlink()
    blob.symlink_to(outside)  # a layout that points a blob at a file outside itself
    findings, result = scan(oci)
    assert [f.location.path for f in findings] == ["a.txt"]
    assert "layer 1 blob" in warnings_text(result)
    assert "layer 1 blob" in skipped_text(result)


def test_file_over_the_size_cap_is_scanned_partly_and_reported(tmp_path: Path) -> None:
    big = CANARY + b"\n" + b"x" * 8192 + CANARY2
    archive = build_docker_archive(tmp_path / "f.tar", [{"data/big.bin": big, "after.txt": CANARY2}], ["COPY /"])
    findings, result = scan(archive, Limits(max_file_bytes=4096))
    assert sorted(f.location.path for f in findings) == ["after.txt", "data/big.bin"]  # the head, and what follows
    assert skipped_text(result) == (
        f"layer 0: data/big.bin ({len(big)} bytes) scanned up to 4096 bytes only (Limits.max_file_bytes)"
    )


def test_second_image_of_an_archive_is_reported_as_not_scanned(tmp_path: Path) -> None:
    archive = build_docker_archive(tmp_path / "two.tar", [{"a.txt": CANARY}], ["COPY a"])
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(members["manifest.json"])
    members["manifest.json"] = json.dumps(manifest * 2).encode()
    rebuilt = tmp_path / "rebuilt.tar"
    with tarfile.open(rebuilt, "w") as tar:
        for name, data in members.items():
            tar.addfile(info(name, len(data)), io.BytesIO(data))
    findings, result = scan(rebuilt)
    assert [f.location.path for f in findings] == ["a.txt"]
    assert skipped_text(result) == "archive holds 2 images; scanned the first only"


def _without_config(tmp_path: Path) -> Path:
    archive = build_docker_archive(tmp_path / "c.tar", [{"a.txt": CANARY}], ["COPY a"])
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    config = json.loads(members["manifest.json"])[0]["Config"]
    members[config] = b"{not json"
    broken = tmp_path / "broken.tar"
    with tarfile.open(broken, "w") as tar:
        for name, data in members.items():
            tar.addfile(info(name, len(data)), io.BytesIO(data))
    return broken


def test_unreadable_config_is_skipped_content_unless_config_is_off(tmp_path: Path) -> None:
    broken = _without_config(tmp_path)
    findings, result = scan(broken)
    assert [f.location.path for f in findings] == ["a.txt"]
    assert "is not valid JSON); layers scanned without history; its Env, Labels and Cmd were not scanned" in (
        skipped_text(result)
    )
    result = ScanResult()
    list(ImageSource(broken, workers=1, scan_config=False).scan(CanaryDetector(), result))
    assert result.incomplete == [] and "image config unreadable" in warnings_text(result)


def test_outer_entry_cap_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kinko.scan.sources.image import members as members_module

    monkeypatch.setattr(members_module, "_MAX_OUTER_ENTRIES", 3)
    path = build_docker_archive(tmp_path / "o.tar", [{"a.txt": CANARY}], ["COPY a"])
    with pytest.raises(ScanError):  # manifest.json comes after the cap: nothing can be scanned
        scan(path)
    tars = [layer_tar({"a.txt": CANARY})]
    config = make_config([sha256(t) for t in tars], ["COPY a"])
    ordered = tmp_path / "ordered.tar"
    with tarfile.open(ordered, "w") as tar:
        man = json.dumps([{"Config": "c.json", "Layers": ["0/layer.tar"]}]).encode()
        for name, blob in [("manifest.json", man), ("c.json", config), ("0/layer.tar", tars[0]), ("x", b"1"),
                           ("y", b"2")]:  # fmt: skip
            tar.addfile(info(name, len(blob)), io.BytesIO(blob))
    findings, result = scan(ordered)
    assert [f.location.path for f in findings] == ["a.txt"]
    assert skipped_text(result) == "outer archive has over 3 entries (a tar bomb?); rest ignored"
