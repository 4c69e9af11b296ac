"""String constants of `.pyc` files, compiled by the real compiler (compileall / py_compile): in folders, image
layers and zips, for every marshal string type the compiler writes."""

from __future__ import annotations

import io
import py_compile
import subprocess
import sys
import zipfile
from pathlib import Path

from kinko.scan.detect import default_detector
from kinko.scan.interface import FileStatus, ScanResult
from kinko.scan.sources.directory import DirectorySource
from kinko.scan.sources.image import ImageSource
from kinko.scan.sources.pyc import is_pyc, pyc_strings
from tests.scan.imagebuild import build_docker_archive
from tests.scan.tokens import github_token


def _compiled(tmp_path: Path, source: str, name: str = "settings") -> bytes:
    src = tmp_path / f"{name}.py"
    src.write_text(source)
    out = tmp_path / f"{name}.pyc"
    py_compile.compile(str(src), cfile=str(out), doraise=True)
    src.unlink()
    return out.read_bytes()


def _dir_hits(root: Path) -> list[tuple[str, str]]:
    found = list(DirectorySource(root).scan(default_detector(), ScanResult()))
    return sorted((f.rule_id, f.location.path) for f in found)


def test_a_key_between_other_constants_is_found(tmp_path: Path) -> None:
    """The raw bytes glue the key to the next record's type byte (`...Dz\\x10`); the constants split it off."""
    token = github_token()
    data = _compiled(tmp_path, f'GITHUB_TOKEN = "{token}"\nOTHER = "Xk9mQ2vL7pR4wZ8"\nimport os\n')
    assert is_pyc("settings.pyc", data) and not is_pyc("settings.py", data)
    assert f'"{token}"'.encode() in pyc_strings(data).splitlines()


def test_compileall_tree_with_sources_removed(tmp_path: Path) -> None:
    token = github_token()
    pkg = tmp_path / "app" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "conf.py").write_text(f'def client():\n    return make(token="{token}", retries=3)\n')
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tmp_path / "app")], check=True)
    (pkg / "conf.py").unlink()  # what ships in many images: bytecode only
    pycs = list((pkg / "__pycache__").glob("conf.*.pyc"))
    assert len(pycs) == 1
    rel = pycs[0].relative_to(tmp_path / "app").as_posix()
    # found once: at the .pyc itself when the raw bytes show the key whole, else in its constants
    assert _dir_hits(tmp_path / "app") in ([("github-pat", rel)], [("github-pat", f"{rel}!constants")])


def test_unicode_and_long_constants(tmp_path: Path) -> None:
    token = github_token()
    doc = "x" * 300  # a four-byte length record
    data = _compiled(tmp_path, f'NOTE = "héllo wörld"\nLONG = "{doc}"\nT = "{token}"\n')
    lines = pyc_strings(data).splitlines()
    assert '"héllo wörld"'.encode() in lines and f'"{doc}"'.encode() in lines and f'"{token}"'.encode() in lines


def test_ordinary_bytecode_gives_no_findings(tmp_path: Path) -> None:
    data = _compiled(tmp_path, "import os\n\ndef f(password=None):\n    return os.environ.get('DB_PASSWORD')\n")
    (tmp_path / "m.pyc").write_bytes(data)
    assert _dir_hits(tmp_path) == []
    assert pyc_strings(b"\x00" * 100) == b"" and pyc_strings(data[:12]) == b""


def test_pyc_in_an_image_layer_and_in_a_zip(tmp_path: Path) -> None:
    token = github_token()
    data = _compiled(tmp_path, f'KEY = "{token}"\n')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("lib/secrets.pyc", data)
    layers = [{"app/settings.pyc": data}, {"app/lib.egg": buf.getvalue()}, {"app/settings.pyc": None}]
    history = ["COPY app /app", "COPY lib.egg /app/", "RUN rm /app/settings.pyc"]
    archive_path = build_docker_archive(tmp_path / "img.tar", layers, history)
    found = list(ImageSource(archive_path, workers=1).scan(default_detector(), ScanResult()))
    where = {(f.location.path, f.location.status) for f in found if f.rule_id == "github-pat"}
    assert where == {("app/settings.pyc!constants", FileStatus.DELETED),
                     ("app/lib.egg!lib/secrets.pyc!constants", FileStatus.PRESENT)}  # fmt: skip
