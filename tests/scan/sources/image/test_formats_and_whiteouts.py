"""ImageSource on real archives built in code: formats, whiteouts, history mapping, config scan."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from kinko.errors import ScanError
from kinko.scan.interface import Detector, FileStatus, Finding, Match, ScanResult, Severity
from kinko.scan.report.common import status_text
from kinko.scan.sources.image import ImageSource
from tests.scan.imagebuild import OPAQUE, H, build_docker_archive, build_oci_layout

CANARY = b"KINKO_CANARY_ABCDEFGH12345678"
CANARY2 = b"KINKO_CANARY_ZZZZ999900001111"


class CanaryDetector(Detector):
    """A trivial detector (module level so it pickles into worker processes)."""

    pattern = re.compile(rb"KINKO_CANARY_[A-Z0-9]{16}")

    def scan(self, data: bytes, *, path: str = "") -> list[Match]:
        out = []
        for m in self.pattern.finditer(data):
            line = data.count(b"\n", 0, m.start()) + 1
            out.append(Match("canary", m.start(), m.end(), m.group(0), line))
        return out

    def rule_info(self, rule_id: str) -> tuple[str, Severity]:
        return ("Test canary", Severity.HIGH)


def scan(path: Path, workers: int = 1, **kw: object) -> tuple[list[Finding], ScanResult]:
    result = ScanResult()
    findings = list(ImageSource(path, workers=workers, **kw).scan(CanaryDetector(), result))  # type: ignore[arg-type]
    return findings, result


BASE = {"etc/os-release": b"NAME=test\n", "bin/sh": b"\x7fELF fake"}
SEED_LAYERS = [BASE, {"root/bad-secret": b"password file\n" + CANARY + b"\n"}, {"root/bad-secret": None}]
SEED_HISTORY = [
    "/bin/sh -c #(nop) ADD file:abc in / ",
    'CMD ["/bin/sh"]',
    "COPY secret /root/bad-secret # buildkit",
    "ENV APP=1",
    "RUN /bin/sh -c rm -f /root/bad-secret # buildkit",
]


def _build(kind: str, tmp_path: Path, layers: list, history: list, **kw: object) -> Path:  # type: ignore[type-arg]
    if kind in ("legacy", "oci25"):
        return build_docker_archive(tmp_path / f"{kind}.tar", layers, history, form=kind, **kw)  # type: ignore[arg-type]
    comp, _, container = kind.partition("-")
    return build_oci_layout(
        tmp_path / f"{kind}{'' if container == 'dir' else '.tar'}",
        layers,
        history,
        compression=comp,  # type: ignore[arg-type]
        as_tar=container != "dir",
        **kw,  # type: ignore[arg-type]
    )


ALL_FORMS = ["legacy", "oci25", "gzip-tar", "zstd-tar", "none-dir", "gzip-dir"]


@pytest.mark.parametrize("kind", ALL_FORMS)
def test_seed_copy_then_rm_is_deleted_but_recoverable(kind: str, tmp_path: Path) -> None:
    archive = _build(kind, tmp_path, SEED_LAYERS, SEED_HISTORY)
    findings, result = scan(archive)
    layer_hits = [f for f in findings if not f.location.path.startswith("config:")]
    assert len(layer_hits) == 1
    loc = layer_hits[0].location
    assert loc.path == "root/bad-secret"
    assert loc.line == 2
    assert loc.status is FileStatus.DELETED
    assert loc.layer_index == 1
    assert loc.deleted_in_layer == 2
    assert loc.created_by is not None and "COPY secret /root/bad-secret" in loc.created_by
    assert loc.layer_diff_id is not None and loc.layer_diff_id.startswith("sha256:")
    assert "recoverable" in status_text(loc)  # said once, by the location (not repeated in the message)
    assert layer_hits[0].secret == CANARY.decode()
    assert "CANARY" not in repr(layer_hits[0])
    assert result.artifacts == [str(archive)]
    assert result.bytes_scanned > 0


def test_parallel_workers_give_same_results_as_serial(tmp_path: Path) -> None:
    layers = [
        {"a.txt": CANARY},
        {"b.txt": CANARY2, "a.txt": None},
        {"c/d.txt": b"x\n" * 5 + CANARY},
        {"e.txt": CANARY},
    ]
    archive = build_docker_archive(tmp_path / "p.tar", layers, ["ADD a", "COPY b", "COPY c", "COPY e"])
    serial, _ = scan(archive, workers=1)
    parallel, _ = scan(archive, workers=2)
    assert [(f.location, f.secret) for f in serial] == [(f.location, f.secret) for f in parallel]
    assert [f.location.layer_index for f in parallel] == [0, 1, 2, 3]
    assert parallel[0].location.status is FileStatus.DELETED
    assert parallel[2].location.line == 6


def test_secret_in_base_layer_is_found_and_present(tmp_path: Path) -> None:
    layers = [{"etc/app/creds": CANARY}, {"app/main.py": b"print(1)\n"}]
    archive = build_docker_archive(tmp_path / "b.tar", layers, ["ADD rootfs /", "CMD sh", "COPY . /app"])
    findings, _ = scan(archive)
    assert [(f.location.layer_index, f.location.status) for f in findings] == [(0, FileStatus.PRESENT)]
    assert findings[0].location.created_by == "ADD rootfs /"


def test_opaque_dir_deletes_lower_contents_but_not_same_layer(tmp_path: Path) -> None:
    layers = [
        {"srv/conf/old.env": CANARY, "srv/other/keep.env": CANARY2},
        {"srv/conf/": OPAQUE, "srv/conf/new.env": CANARY2},
    ]
    archive = build_docker_archive(tmp_path / "o.tar", layers, ["ADD x", "RUN rm -rf /srv/conf && mk"])
    findings, _ = scan(archive)
    by_path = {f.location.path: f.location for f in findings}
    assert by_path["srv/conf/old.env"].status is FileStatus.DELETED
    assert by_path["srv/conf/old.env"].deleted_in_layer == 1
    assert by_path["srv/other/keep.env"].status is FileStatus.PRESENT
    assert by_path["srv/conf/new.env"].status is FileStatus.PRESENT


def test_overwritten_file_and_deleted_parent_dir(tmp_path: Path) -> None:
    layers = [
        {"app/config.ini": CANARY, "opt/tool/key": CANARY},
        {"app/config.ini": b"clean now\n"},
        {"opt/tool": None},
    ]
    archive = build_oci_layout(tmp_path / "w.tar", layers, ["ADD x", "COPY config", "RUN rm -rf /opt/tool"])
    findings, _ = scan(archive)
    by_path = {f.location.path: f.location for f in findings}
    assert by_path["app/config.ini"].status is FileStatus.DELETED
    assert by_path["app/config.ini"].deleted_in_layer == 1
    assert by_path["opt/tool/key"].deleted_in_layer == 2


def test_history_mapping_skips_empty_layers(tmp_path: Path) -> None:
    layers = [{"a": b"x"}, {"b": b"y"}, {"c": CANARY}]
    history = [H("ADD base", False), H("ENV A=1", True), H("RUN make", False), H("LABEL x=y", True), "COPY c /c"]
    findings, _ = scan(build_docker_archive(tmp_path / "h.tar", layers, history))
    layer_hits = [f for f in findings if not f.location.path.startswith("config:")]
    assert layer_hits[0].location.created_by == "COPY c /c"
    assert layer_hits[0].location.layer_index == 2


def test_config_env_labels_cmd_and_history_are_scanned(tmp_path: Path) -> None:
    canary = CANARY.decode()
    archive = build_docker_archive(
        tmp_path / "c.tar",
        [{"a": b"x"}, {"b": b"y"}],
        ["ADD a", f"ENV TOKEN={canary}", f"RUN curl -H {canary} x"],
        config_env=["PATH=/bin", f"TOKEN={canary}"],
        labels={"secret": canary},
        cmd=["run", canary],
        entrypoint=["/entry", canary],
    )
    findings, _ = scan(archive)
    paths = {f.location.path: f.location for f in findings}
    assert set(paths) == {
        "config:Env[1]",
        "config:Labels[secret]",
        "config:Cmd",
        "config:Entrypoint",
        "config:history[1].created_by",
        "config:history[2].created_by",
    }
    assert paths["config:history[2].created_by"].layer_index == 1
    assert paths["config:Env[1]"].status is FileStatus.NOT_APPLICABLE
    no_config, _ = scan(archive, scan_config=False)
    assert no_config == []


def test_gzipped_file_inside_layer_is_scanned_with_inner_path(tmp_path: Path) -> None:
    log = gzip.compress(b"line\n" * 10 + b"auth " + CANARY + b"\n")
    archive = build_docker_archive(
        tmp_path / "g.tar", [{"var/log/app.log.gz": log}, {"var/log/app.log.gz": None}], ["a", "b"]
    )
    findings, _ = scan(archive)
    assert [(f.location.path, f.location.line, f.location.status) for f in findings] == [
        ("var/log/app.log.gz!app.log", 11, FileStatus.DELETED)
    ]


def test_binary_file_and_big_file_chunks_keep_line_numbers(tmp_path: Path) -> None:
    from kinko.scan.sources.image.layers import Limits

    binary = bytes(range(256)) * 40 + CANARY + b"\x00\xff" * 100
    # Big file: scanned in 64 KiB chunks with 1 KiB overlap; one canary straddles a chunk boundary.
    lines = [b"filler line %06d" % i for i in range(20000)]
    lines[100] = CANARY
    big = b"\n".join(lines)
    boundary = 65536 - 10
    big = big[:boundary] + CANARY2 + big[boundary + len(CANARY2) :]
    expected_line = big.count(b"\n", 0, boundary) + 1
    limits = Limits(max_file_in_memory=32 << 10, chunk_size=64 << 10, chunk_overlap=1 << 10)
    archive = build_docker_archive(tmp_path / "bin.tar", [{"usr/bin/tool": binary, "data/big.txt": big}], ["a"])
    findings, _ = scan(archive, limits=limits)
    got = sorted((f.location.path, f.location.line, f.secret) for f in findings)
    assert got == sorted(
        [
            ("usr/bin/tool", binary.count(b"\n", 0, binary.index(CANARY)) + 1, CANARY.decode()),
            ("data/big.txt", 101, CANARY.decode()),
            ("data/big.txt", expected_line, CANARY2.decode()),
        ]
    )


def test_not_an_image(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"hello, not a tar at all\n" * 100)
    with pytest.raises(ScanError, match="not a docker-archive or OCI image"):
        list(ImageSource(plain).scan(CanaryDetector(), ScanResult()))
    import tarfile

    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as tar:
        tar.add(plain, arcname="readme.txt")
    with pytest.raises(ScanError, match="not a docker-archive or OCI image"):
        list(ImageSource(other).scan(CanaryDetector(), ScanResult()))
    with pytest.raises(ScanError):
        list(ImageSource(tmp_path / "missing.tar").scan(CanaryDetector(), ScanResult()))


def test_nested_index_and_podman_style_dir(tmp_path: Path) -> None:
    archive = build_oci_layout(tmp_path / "n", SEED_LAYERS, SEED_HISTORY, as_tar=False, nested_index=True)
    findings, _ = scan(archive)
    layer_hits = [f for f in findings if not f.location.path.startswith("config:")]
    assert layer_hits[0].location.deleted_in_layer == 2


def test_k8s_secret_base64_data_in_layer_yaml_is_decoded(tmp_path: Path) -> None:
    import base64

    encoded = base64.b64encode(b"token=" + CANARY).decode()
    other = base64.b64encode(b"not secret at all").decode()
    yaml_text = (
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n---\n"
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  user: {other}\n  password: {encoded}\n"
        "type: Opaque\n"
    )
    archive = build_docker_archive(tmp_path / "k.tar", [{"deploy/secret.yaml": yaml_text.encode()}], ["COPY deploy"])
    findings, _ = scan(archive)
    assert [(f.location.path, f.location.line, f.secret) for f in findings] == [
        ("deploy/secret.yaml!data.password", 12, CANARY.decode())
    ]


class DyingDetector(CanaryDetector):
    """Kills its worker process on one file, like an OOM kill would."""

    def scan(self, data: bytes, *, path: str = "") -> list[Match]:
        if path == "die.txt":
            import os

            os._exit(3)
        return super().scan(data, path=path)


def test_a_dying_worker_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    layers = [{"a.txt": CANARY}, {"die.txt": b"x" * 20000}, {"c.txt": CANARY2}]
    archive = build_docker_archive(tmp_path / "d.tar", layers, ["a", "b", "c"])
    result = ScanResult()
    findings = list(ImageSource(archive, workers=2, scan_config=False).scan(DyingDetector(), result))
    text = " ".join(w.message for w in result.warnings)
    assert "layer 1: not scanned, worker failed" in text
    assert all(f.location.layer_index != 1 for f in findings)


def test_docker_save_symlinked_duplicate_layer_is_followed_inside_the_archive(tmp_path: Path) -> None:
    from tests.scan.imagebuild import assemble_docker_archive, layer_tar, make_config, sha256

    same = layer_tar({"etc/token": CANARY})
    config = make_config([sha256(same), sha256(same)], ["ADD a /", "ADD a / # again"])
    archive = assemble_docker_archive(tmp_path / "dup.tar", [same, same], config, dedupe_symlink=True)
    findings, result = scan(archive)
    got = [(f.location.layer_index, f.location.status, f.location.deleted_in_layer) for f in findings]
    # Layer 1 re-adds the same path, so layer 0's copy is replaced; both are reported.
    assert got == [(0, FileStatus.DELETED, 1), (1, FileStatus.PRESENT, None)]
    assert not result.warnings
