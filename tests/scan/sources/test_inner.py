"""Inside files: zip-family and tar archives (nested, bomb-bounded), UTF-16/32 text, hard links in layers."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from kinko.scan.detect import default_detector
from kinko.scan.interface import FileStatus, ScanResult
from kinko.scan.sources.directory import DirectorySource
from kinko.scan.sources.image import ImageSource
from kinko.scan.sources.inner import InnerLimits, inner_parts, wide_text
from tests.scan.imagebuild import Hardlink, build_docker_archive
from tests.scan.tokens import github_token


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _dir_findings(root: Path) -> tuple[list[tuple[str, str]], ScanResult]:
    result = ScanResult()
    found = list(DirectorySource(root).scan(default_detector(), result))
    return sorted((f.rule_id, f.location.path) for f in found), result


def test_a_jar_inside_a_war_a_wheel_and_a_tgz_are_opened_with_inner_names(tmp_path: Path) -> None:
    token = github_token()
    config = f"github.token={token}\n".encode()
    (tmp_path / "app.war").write_bytes(_zip({"WEB-INF/lib/core.jar": _zip({"app.properties": config})}))
    (tmp_path / "pkg-1.0-py3-none-any.whl").write_bytes(_zip({"pkg/settings.py": f'TOKEN = "{token}"\n'.encode()}))
    (tmp_path / "backup.tar.gz").write_bytes(_targz({"etc/app/.env": config}))
    found, result = _dir_findings(tmp_path)
    assert found == [
        ("github-pat", "app.war!WEB-INF/lib/core.jar!app.properties"),
        ("github-pat", "backup.tar.gz!etc/app/.env"),
        ("github-pat", "pkg-1.0-py3-none-any.whl!pkg/settings.py"),
    ]
    assert not result.incomplete


def test_utf16_and_utf32_text_is_decoded(tmp_path: Path) -> None:
    token = github_token()
    (tmp_path / "app.config").write_bytes(f"token={token}\r\n".encode("utf-16-le"))  # no BOM: detected
    (tmp_path / "bom.ini").write_bytes(f"token={token}\n".encode("utf-32"))  # with BOM
    found, _ = _dir_findings(tmp_path)
    assert found == [("github-pat", "app.config"), ("github-pat", "bom.ini")]
    assert wide_text(b"plain ascii text, nothing wide about it") is None


def test_a_zip_bomb_and_deep_nesting_are_bounded_and_reported(tmp_path: Path) -> None:
    bomb = _zip({"zeros.bin": bytes(64 << 20)})  # ~1000:1
    problems: list[str] = []
    assert list(inner_parts("bomb.zip", bomb, problems)) == []
    assert problems and "zip bomb" in problems[0]
    nested = b"key=value\n"
    for depth in range(5):
        nested = _zip({f"level{depth}.zip": nested})
    problems = []
    names = [name for name, _ in inner_parts("deep.zip", nested, problems, InnerLimits(max_depth=3))]
    assert len(names) == 3 and any("nested deeper" in p for p in problems)
    (tmp_path / "bomb.jar").write_bytes(bomb)
    _, result = _dir_findings(tmp_path)
    assert result.incomplete  # a bounded part is a skipped part: the scan says so


def test_a_hard_link_is_reported_at_its_own_path_with_its_own_status(tmp_path: Path) -> None:
    token = github_token().encode()
    archive = build_docker_archive(
        tmp_path / "img.tar",
        [{"srv/secret.env": b"GITHUB_TOKEN=" + token + b"\n", "srv/kept.env": Hardlink("srv/secret.env")},
         {"srv/secret.env": None}],
        ["COPY . /srv", "RUN rm /srv/secret.env"],
    )  # fmt: skip
    found = list(ImageSource(str(archive), workers=1, scan_config=False).scan(default_detector(), ScanResult()))
    statuses = sorted((f.location.path, f.location.status) for f in found)
    assert statuses == [("srv/kept.env", FileStatus.PRESENT), ("srv/secret.env", FileStatus.DELETED)]


def test_a_tar_gz_in_a_layer_names_its_inner_file(tmp_path: Path) -> None:
    token = github_token().encode()
    archive = build_docker_archive(
        tmp_path / "img.tar",
        [{"opt/backup.tar.gz": _targz({"home/app/.npmrc": b"token=" + token + b"\n"})}],
        ["COPY backup.tar.gz /opt/"],
    )
    found = list(ImageSource(str(archive), workers=1, scan_config=False).scan(default_detector(), ScanResult()))
    assert [f.location.path for f in found] == ["opt/backup.tar.gz!home/app/.npmrc"]
