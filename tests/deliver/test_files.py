"""AtomicWriter: the kubelet layout, modes, no-op writes, pruning, path validation, symlink safety and atomicity."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinko.deliver.files import AtomicWriter, FileProjection, validate_clean_path, validate_name, validate_path
from kinko.errors import InvalidInput, InvalidPath

TS = re.compile(r"\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+")


def fp(text: str, mode: int | None = None) -> FileProjection:
    return FileProjection(text.encode(), mode)


def ts_dirs(target: Path) -> list[str]:
    return sorted(p.name for p in target.iterdir() if TS.fullmatch(p.name))


def visible(target: Path) -> dict[str, str]:
    """What an application sees: every user-visible file (through the links) and its text."""
    out = {}
    for top, dirs, files in os.walk(target, followlinks=True):
        rel = Path(top).relative_to(target)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if not d.startswith("..")]
            files = [f for f in files if not f.startswith("..")]
        for name in files:
            out[(rel / name).as_posix()] = (Path(top) / name).read_text()
    return out


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def test_layout_matches_the_kubelet(tmp_path: Path) -> None:
    target = tmp_path / "secrets"
    assert AtomicWriter(target).write({"db-url": fp("postgres://x"), "tls/tls.crt": fp("CERT")}) is True
    data = os.readlink(target / "..data")
    assert TS.fullmatch(data) and ts_dirs(target) == [data]
    assert os.readlink(target / "db-url") == "..data/db-url"
    assert os.readlink(target / "tls") == "..data/tls"  # nested paths: only the top-level element is linked
    assert not (target / data / "tls").is_symlink() and (target / data / "tls" / "tls.crt").is_file()
    assert visible(target) == {"db-url": "postgres://x", "tls/tls.crt": "CERT"}
    assert sorted(os.listdir(target)) == sorted(["..data", data, "db-url", "tls"])


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o777])
def test_modes_are_exact_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    target = tmp_path / "t"
    with umask(mask):
        AtomicWriter(target).write({"a": fp("1"), "b": fp("2", 0o440), "d/c": fp("3", 0o644)})
    data = target / "..data"
    assert stat.S_IMODE((data / "a").stat().st_mode) == 0o400  # the default is 0400, not Kubernetes' 0644
    assert stat.S_IMODE((data / "b").stat().st_mode) == 0o440
    assert stat.S_IMODE((data / "d" / "c").stat().st_mode) == 0o644
    # group/other were granted read on some file, so the dirs let them through (r-x), and no more
    assert stat.S_IMODE(data.stat().st_mode) == 0o755
    assert stat.S_IMODE((data / "d").stat().st_mode) == 0o755


def test_private_files_get_private_dirs(tmp_path: Path) -> None:
    target = tmp_path / "t"
    with umask(0):
        AtomicWriter(target).write({"a": fp("1"), "d/b": fp("2")})
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE((target / "..data").stat().st_mode) == 0o700
    assert stat.S_IMODE((target / "..data" / "d").stat().st_mode) == 0o700
    assert stat.S_IMODE((target / "a").stat().st_mode) == 0o400


def test_unchanged_payload_writes_nothing(tmp_path: Path) -> None:
    target, writer = tmp_path / "t", AtomicWriter(tmp_path / "t")
    payload = {"a": fp("1"), "d/b": fp("2")}
    writer.write(payload)
    before = os.readlink(target / "..data")
    inode = (target / "a").stat().st_ino
    assert writer.write(dict(payload)) is False
    assert os.readlink(target / "..data") == before and (target / "a").stat().st_ino == inode


def test_a_mode_change_alone_is_a_change(tmp_path: Path) -> None:
    target, writer = tmp_path / "t", AtomicWriter(tmp_path / "t")
    writer.write({"a": fp("1")})
    before = os.readlink(target / "..data")
    assert writer.write({"a": fp("1", 0o440)}) is True
    assert os.readlink(target / "..data") != before
    assert stat.S_IMODE((target / "a").stat().st_mode) == 0o440


def test_dropping_files_is_a_change_down_to_an_empty_set(tmp_path: Path) -> None:
    target, writer = tmp_path / "t", AtomicWriter(tmp_path / "t")
    writer.write({"a": fp("1"), "d/b": fp("2")})
    assert writer.write({"a": fp("1")}) is True and visible(target) == {"a": "1"}
    assert writer.write({}) is True and visible(target) == {}
    assert writer.write({}) is False
    assert sorted(os.listdir(target)) == sorted(["..data", os.readlink(target / "..data")])


def test_no_change_write_repairs_a_missing_link(tmp_path: Path) -> None:
    target, writer = tmp_path / "t", AtomicWriter(tmp_path / "t")
    writer.write({"a": fp("1"), "b": fp("2")})
    (target / "b").unlink()
    assert writer.write({"a": fp("1"), "b": fp("2")}) is False
    assert (target / "b").read_text() == "2"


def test_stale_entries_and_old_dirs_are_pruned(tmp_path: Path) -> None:
    target, writer = tmp_path / "t", AtomicWriter(tmp_path / "t")
    writer.write({"a": fp("1"), "old/x": fp("2"), "keep": fp("3")})
    writer.write({"keep": fp("3b"), "new": fp("4")})
    assert visible(target) == {"keep": "3b", "new": "4"}
    assert not os.path.lexists(target / "a") and not os.path.lexists(target / "old")
    assert ts_dirs(target) == [os.readlink(target / "..data")]


def test_leftovers_of_a_crash_are_cleaned(tmp_path: Path) -> None:
    target, writer = tmp_path / "t", AtomicWriter(tmp_path / "t")
    writer.write({"a": fp("1")})
    # a writer that died between creating its dir and the swap, and one that died after the swap
    crashed = target / "..2020_01_01_00_00_00.42"
    crashed.mkdir()
    (crashed / "a").write_text("half")
    os.symlink(crashed.name, target / "..data_tmp")
    os.symlink("..data/gone", target / "gone")
    writer.write({"a": fp("2")})
    assert visible(target) == {"a": "2"}
    assert ts_dirs(target) == [os.readlink(target / "..data")]
    assert not os.path.lexists(target / "..data_tmp") and not os.path.lexists(target / "gone")


def test_read_returns_the_current_set(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path / "t")
    assert writer.read() == {}
    writer.write({"a": fp("1"), "d/b": fp("2", 0o440)})
    assert writer.read() == {"a": FileProjection(b"1", 0o400), "d/b": FileProjection(b"2", 0o440)}


def test_repr_hides_the_data() -> None:
    assert "hunter2" not in repr(FileProjection(b"hunter2", 0o400))


@pytest.mark.parametrize("path", ["", "/etc/passwd", "..", "../x", "a/../b", "a/..", "..data", "..data/x",
                                  "...x", "..2020_01_01_00_00_00.1", "a" * 256, "a/" + "b" * 256,
                                  "a/" * 2048 + "b", "a\0b", ".", "a\nb", "d/a\rb", "a\x1b[2J", "a\x7f",
                                  "a\x85", "\u202eexe.txt", "zero\u200bwidth", "a\u2028b", "\ud800", "é" * 2049])
def test_bad_paths_are_refused_before_anything_is_written(tmp_path: Path, path: str) -> None:
    target, writer = tmp_path / "t", AtomicWriter(tmp_path / "t")
    writer.write({"ok": fp("1")})
    before = sorted(os.listdir(target))
    with pytest.raises(InvalidPath) as info:
        writer.write({"ok": fp("2"), path: fp("x")})
    assert "file path" in info.value.message
    assert sorted(os.listdir(target)) == before and visible(target) == {"ok": "1"}


@pytest.mark.parametrize(("path", "clean"), [("./a", "a"), ("a//b", "a/b"), ("a/./b/", "a/b"), (".x", ".x"),
                                             ("a/..b", "a/..b"), ("a" * 255, "a" * 255)])
def test_good_paths_are_cleaned(path: str, clean: str) -> None:
    assert validate_path(path) == clean


@pytest.mark.parametrize("name", ["db-url", "tls.key", ".hidden", "a b", "ünïcode", "x" * 255])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name == validate_clean_path(name)


@pytest.mark.parametrize(("name", "needle"), [("a/b", "'/'"), ("a/", "'/'"), ("..", "'..'"), ("..data", "'..'"),
                                              (".", "names no file"), ("", "empty"), ("a\nb", "control"),
                                              ("x" * 256, "longer")])
def test_bad_names(name: str, needle: str) -> None:
    with pytest.raises(InvalidPath, match=re.escape(needle)):
        validate_name(name)


@pytest.mark.parametrize("path", ["a//b", "./a", "a/", "a/./b"])
def test_clean_paths_must_be_given_clean(path: str) -> None:
    assert validate_path(path) != path
    with pytest.raises(InvalidPath, match="not a clean relative path"):
        validate_clean_path(path)


def test_path_length_limits_are_in_bytes() -> None:
    validate_path("é" * 127)  # 254 bytes
    with pytest.raises(InvalidPath):
        validate_path("é" * 128)  # 256 bytes
    validate_path("/".join(["a" * 255] * 16))  # 4095 bytes
    with pytest.raises(InvalidPath):
        validate_path("/".join(["a" * 255] * 16) + "/b")


@pytest.mark.parametrize("payload", [{"a": fp("1"), "a/b": fp("2")}, {"a": fp("1"), "./a": fp("2")},
                                     {"x/a": fp("1"), "x/a/b/c": fp("2")}])
def test_conflicting_paths_are_refused(tmp_path: Path, payload: dict[str, FileProjection]) -> None:
    with pytest.raises(InvalidPath):
        AtomicWriter(tmp_path / "t").write(payload)
    assert not (tmp_path / "t" / "..data").exists()


@pytest.mark.parametrize("mode", [-1, 0o1000, 0o4755])
def test_bad_modes_are_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(InvalidInput):
        AtomicWriter(tmp_path / "t").write({"a": fp("1", mode)})
    with pytest.raises(InvalidInput):
        AtomicWriter(tmp_path / "t", default_mode=mode)


def test_target_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    with pytest.raises(InvalidInput, match="symlink"):
        AtomicWriter(tmp_path / "link").write({"a": fp("1")})
    assert os.listdir(real) == []


def test_foreign_visible_link_is_replaced_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("do not touch")
    target = tmp_path / "t"
    target.mkdir()
    os.symlink(outside, target / "a")
    AtomicWriter(target).write({"a": fp("secret")})
    assert outside.read_text() == "do not touch"
    assert os.readlink(target / "a") == "..data/a" and (target / "a").read_text() == "secret"


def test_foreign_data_link_is_neither_followed_nor_pruned(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a").write_text("theirs")
    target = tmp_path / "t"
    target.mkdir()
    os.symlink(outside, target / "..data")  # not one of ours: replaced by the swap, never read or deleted
    os.symlink(outside, target / "..2020_01_01_00_00_00.7")  # looks like a ts dir, but is a symlink
    assert AtomicWriter(target).write({"a": fp("theirs")}) is True
    assert (outside / "a").read_text() == "theirs" and os.readlink(target / "..data") != str(outside)
    assert os.path.islink(target / "..2020_01_01_00_00_00.7")


def test_occupied_names_are_refused_and_the_old_set_kept(tmp_path: Path) -> None:
    target, writer = tmp_path / "t", AtomicWriter(tmp_path / "t")
    writer.write({"a": fp("1")})
    (target / "b").write_text("a user's file")
    with pytest.raises(InvalidInput, match="not a kinko link"):
        writer.write({"a": fp("2"), "b": fp("3")})
    assert (target / "a").read_text() == "1" and (target / "b").read_text() == "a user's file"
    assert len(ts_dirs(target)) == 1


def test_data_that_is_not_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "t"
    (target / "..data").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="not a symlink"):
        AtomicWriter(target).write({"a": fp("1")})
    assert ts_dirs(target) == []


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Make any write past `limit` bytes fail with EFBIG (a real kernel failure in the middle of a write)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def test_failure_in_the_middle_leaves_the_previous_set(tmp_path: Path) -> None:
    target, writer = tmp_path / "t", AtomicWriter(tmp_path / "t")
    writer.write({"a": fp("gen1"), "b": fp("gen1")})
    before = os.readlink(target / "..data")
    with file_size_limit(1 << 16), pytest.raises(OSError):
        # "a" and "b" are written first; "c" (sorted last) is too big and fails half-way through
        writer.write({"a": fp("gen2"), "b": fp("gen2"), "c": FileProjection(b"x" * (1 << 17))})
    assert os.readlink(target / "..data") == before and ts_dirs(target) == [before]
    assert visible(target) == {"a": "gen1", "b": "gen1"}
    assert not os.path.lexists(target / "..data_tmp") and not os.path.lexists(target / "c")
    assert writer.write({"a": fp("gen3")}) is True and visible(target) == {"a": "gen3"}


def test_concurrent_reader_never_sees_a_mix_or_a_gap(tmp_path: Path) -> None:
    """A reader going through the user-visible paths, as an app does, while the writer swaps generations."""
    target = tmp_path / "t"
    writer = AtomicWriter(target, fsync=False)
    names = [f"f{i}" for i in range(4)] + ["nested/g"]

    def generation(n: int) -> dict[str, FileProjection]:
        payload = {name: FileProjection(f"{n}:{name}:".encode() + b"." * (n % 7) * 100) for name in names}
        payload[f"only-{n % 2}"] = fp(f"{n}:extra")  # names that come and go between generations
        return payload

    writer.write(generation(0))
    stop, problems, checks = threading.Event(), [], [0]

    def reader() -> None:
        try:
            read_until_stopped()
        except Exception as exc:  # e.g. `..data` missing for a moment: a gap the app would have hit
            problems.append(("reader failed", repr(exc)))

    def read_until_stopped() -> None:
        while not stop.is_set():
            start = os.readlink(target / "..data")
            seen, missing = set(), []
            for name in names:
                try:
                    seen.add((target / name).read_bytes().split(b":", 1)[0])
                except FileNotFoundError:
                    missing.append(name)
            if os.readlink(target / "..data") != start:
                continue  # a swap happened during this read; only a read inside one generation is checked
            checks[0] += 1
            if missing or len(seen) != 1:
                problems.append((start, missing, seen))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 300):
            assert writer.write(generation(n)) is True
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert checks[0] > 50  # the reader really ran alongside the writer
    assert (target / "f0").read_bytes().startswith(b"299:") and len(ts_dirs(target)) == 1
