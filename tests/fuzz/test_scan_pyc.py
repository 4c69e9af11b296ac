"""Fuzz the `.pyc` readers (kinko.scan.sources.pyc, pyc_code) with arbitrary bytes and mutated real `.pyc` files.

Properties: no exception of any kind and no unbounded work on hostile bytes (a damaged `.pyc` gives fewer pairs,
never an error); every pair read from a mutated file is a (name, value) of text; an unmutated file gives exactly
the assignments its source makes.
"""

from __future__ import annotations

import functools
import py_compile
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from kinko.scan.sources.pyc import pyc_strings
from kinko.scan.sources.pyc_code import pyc_assignments
from tests.fuzz.budget import fuzz

SOURCE = (
    'TOKEN = "Xk9mQ2vL7pR4wZ8q"\nclass C:\n    key = "Bv7nM1qW8eR5tY3u"\n    def f(self):\n        self.pw = "x9"\n'
)


@functools.cache
def _real_pyc() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "m.py", Path(tmp) / "m.pyc"
        src.write_text(SOURCE)
        py_compile.compile(str(src), cfile=str(out), doraise=True)
        return out.read_bytes()


def _check(data: bytes) -> None:
    for name, value in pyc_assignments(data):
        assert isinstance(name, str) and isinstance(value, str)
    assert isinstance(pyc_strings(data), bytes)


def test_the_real_file_gives_its_assignments() -> None:
    assert set(pyc_assignments(_real_pyc())) == {
        ("TOKEN", "Xk9mQ2vL7pR4wZ8q"), ("key", "Bv7nM1qW8eR5tY3u"), ("pw", "x9")}  # fmt: skip


@fuzz
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_behind_a_real_header(tail: bytes) -> None:
    _check(_real_pyc()[:16] + tail)


@fuzz
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=12),
       st.integers(min_value=0))
def test_mutated_real_pyc(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_real_pyc())
    for where, value in flips:
        data[where % len(data)] = value
    _check(bytes(data[: len(data) - cut % len(data)]))
