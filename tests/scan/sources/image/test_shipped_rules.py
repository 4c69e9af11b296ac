"""ImageSource with the shipped rules (default_detector): real secrets in an image, parallel workers."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kinko.scan.detect import default_detector, load_rules
from kinko.scan.interface import FileStatus, ScanResult
from kinko.scan.sources.image import ImageSource
from tests.scan.imagebuild import build_docker_archive, build_oci_layout

# Assembled at run time so no key-shaped literal sits in the source.
AWS_ID = "AKIA" + "Q3EGRZ7XN5WBT4YM"
PG_URL = "postgres://app:" + "S3cr3tPassw0rd9" + "@db.internal:5432/app"


def pem_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def image_layers() -> list[dict[str, bytes | None]]:
    return [
        {"etc/base.env": f"aws_access_key_id = {AWS_ID}\n".encode()},
        {"app/settings.py": b"import os\n\nDATABASE_URL = '" + PG_URL.encode() + b"'\n", "root/key.pem": pem_key()},
        {"root/key.pem": None, "var/log/app.log.gz": gzip.compress(b"boot\nconnect " + PG_URL.encode() + b"\n")},
    ]


@pytest.mark.parametrize("form", ["legacy", "oci"])
def test_default_detector_finds_real_secrets_with_layer_and_status(form: str, tmp_path: Path) -> None:
    history = ["ADD rootfs /", "CMD sh", "COPY . /app", "RUN rm -f /root/key.pem"]
    if form == "legacy":
        archive = build_docker_archive(tmp_path / "img.tar", image_layers(), history)
    else:
        archive = build_oci_layout(tmp_path / "img.tar", image_layers(), history, compression="zstd")
    result = ScanResult()
    findings = list(ImageSource(archive, workers=2).scan(default_detector(), result))
    got = {(f.rule_id, f.location.path, f.location.layer_index, f.location.status) for f in findings}
    assert ("aws-access-key-id", "etc/base.env", 0, FileStatus.PRESENT) in got
    assert ("postgres-connection-url", "app/settings.py", 1, FileStatus.PRESENT) in got
    assert ("postgres-connection-url", "var/log/app.log.gz!app.log", 2, FileStatus.PRESENT) in got
    pg = next(f for f in findings if f.location.path == "app/settings.py")
    assert pg.location.line == 3
    assert pg.location.created_by == "COPY . /app"
    assert PG_URL not in repr(pg)
    if not any("private-key" in r.id for r in load_rules()):
        pytest.skip("no private-key rule shipped yet")
    pem = [f for f in findings if f.location.path == "root/key.pem"]
    assert pem, "PEM private key not found"
    assert pem[0].location.status is FileStatus.DELETED
    assert pem[0].location.deleted_in_layer == 2
