"""Constants paired with the names they are stored to, read from `.pyc` files the real compilers wrote: this
Python, and every other CPython 3.6-3.13 installed here (pyenv), so each code-object layout and opcode table is
exercised by bytes its own compiler made."""

from __future__ import annotations

import glob
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

from kinko.scan.detect import default_detector
from kinko.scan.interface import ScanResult
from kinko.scan.sources.directory import DirectorySource
from kinko.scan.sources.pyc import pyc_strings
from kinko.scan.sources.pyc_code import pyc_assignments

SOURCE = '''\
import os
DB_PASSWORD = "Tq8#vLm2!pWz9xRk"
class Client:
    secret_key = "Zc4vB7nM1qW8eR5t"
    def __init__(self):
        self.password = "Hy6&jK9@lP2#sD4f"
def connect():
    local_pass = "Nm3$bV8*cX1!zA7q"
    return local_pass
'''
EXPECTED = {
    ("DB_PASSWORD", "Tq8#vLm2!pWz9xRk"), ("secret_key", "Zc4vB7nM1qW8eR5t"),
    ("password", "Hy6&jK9@lP2#sD4f"), ("local_pass", "Nm3$bV8*cX1!zA7q"),
}  # fmt: skip


def _interpreters() -> list[str]:
    found = {sys.executable}
    for minor in range(6, 14):
        found.update(sorted(glob.glob(f"/root/.pyenv/versions/3.{minor}.*/bin/python3.{minor}"))[-1:])
    return sorted(found)


def _compile_with(python: str, tmp_path: Path) -> bytes:
    src, out = tmp_path / "settings.py", tmp_path / "settings.pyc"
    src.write_text(SOURCE)
    if python == sys.executable:
        py_compile.compile(str(src), cfile=str(out), doraise=True)
    else:
        subprocess.run([python, "-c", f"import py_compile; py_compile.compile({str(src)!r}, cfile={str(out)!r}, "
                        "doraise=True)"], check=True, timeout=60)  # fmt: skip
    return out.read_bytes()


@pytest.mark.parametrize("python", _interpreters())
def test_each_cpython_s_bytecode_pairs_constants_with_their_names(python: str, tmp_path: Path) -> None:
    pairs = set(pyc_assignments(_compile_with(python, tmp_path)))
    assert pairs >= EXPECTED
    assert not any(name.startswith("__") for name, _ in pairs)  # `__qualname__ = "Client"` is the compiler's


def test_a_generic_password_in_a_pyc_is_found_like_in_the_source(tmp_path: Path) -> None:
    data = _compile_with(sys.executable, tmp_path)
    assert b'DB_PASSWORD = "Tq8#vLm2!pWz9xRk"' in pyc_strings(data)
    (tmp_path / "settings.py").unlink()
    rules = {f.rule_id for f in DirectorySource(tmp_path).scan(default_detector(), ScanResult())}
    assert "generic-password" in rules


@pytest.mark.parametrize("cut", [20, 100, 300, -7, -1])
def test_a_truncated_or_damaged_pyc_gives_no_pairs_and_no_error(tmp_path: Path, cut: int) -> None:
    data = _compile_with(sys.executable, tmp_path)
    assert pyc_assignments(data[:cut]) == [] or set(pyc_assignments(data[:cut])) <= EXPECTED
    damaged = bytearray(data)
    damaged[40:44] = b"\xff\xff\xff\x7f"  # a length field far past the end
    pyc_assignments(bytes(damaged))  # no exception


def test_unknown_magic_numbers_and_reference_loops_are_refused() -> None:
    assert pyc_assignments(b"\x00\x00\r\n" + bytes(12)) == []
    header = (3495).to_bytes(2, "little") + b"\r\n" + bytes(12)
    assert pyc_assignments(header + b"r\x00\x00\x00\x00") == []  # a reference to nothing yet
    assert pyc_assignments(header + b"(" + (10**6).to_bytes(4, "little") + b"N" * 10) == []  # more than there is
    assert pyc_assignments(header + b")\x01" * 200 + b"N") == []  # nested deeper than the bound


@pytest.mark.parametrize("folder", ["tests", "app"])
def test_a_pyc_is_judged_in_the_context_of_its_own_path_like_its_source(tmp_path: Path, folder: str) -> None:
    """A fixture password in a test folder is judged as the source's is (`tests/…pyc!constants` is a test path),
    and an application's is reported as in its source."""
    data = _compile_with(sys.executable, tmp_path)
    for made in ("settings.py", "settings.pyc"):
        (tmp_path / made).unlink()
    (tmp_path / folder / "__pycache__").mkdir(parents=True)
    (tmp_path / folder / "settings.py").write_text(SOURCE)

    def judged() -> list[tuple[str, str]]:
        found = DirectorySource(tmp_path).scan(default_detector(), ScanResult())
        return sorted((f.rule_id, f.confidence.name) for f in found)

    from_source = judged()
    (tmp_path / folder / "settings.py").unlink()
    (tmp_path / folder / "__pycache__" / "settings.cpython-311.pyc").write_bytes(data)
    assert judged() == from_source
    assert bool(from_source) == (folder == "app")
