"""The on-disk cache of compiled hyperscan rules: hits, rejects (corrupt, foreign, too open), and pickling."""

from __future__ import annotations

import os
import pickle
import secrets
import stat
import string
from pathlib import Path

import pytest

from kinko.scan.detect import HyperscanDetector, Rule, hscache, load_rules

pytest.importorskip("hyperscan")

#: A few rules keep each compile in milliseconds; the github-pat rule is the one the checks use.
RULES = [r for r in load_rules() if r.family == "vcs"]


def _token() -> bytes:
    alphabet = string.ascii_letters + string.digits
    return ("ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))).encode()


@pytest.fixture
def cache_home(tmp_path: Path) -> Path:
    """The cache dir handed to the detectors (not created yet: the first store makes it)."""
    return tmp_path / "xdg" / "kinko"


def _build(cache_home: Path | None, rules: list[Rule] = RULES) -> HyperscanDetector:
    return HyperscanDetector(rules, cache_dir=cache_home)


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.hsdb")) if folder.is_dir() else []


def _finds_token(detector: HyperscanDetector) -> bool:
    token = _token()
    return [m.secret for m in detector.scan(b"x = 1\nGITHUB=" + token + b"\n")] == [token]


def test_first_build_writes_a_private_entry_and_the_second_reads_it(cache_home: Path) -> None:
    assert _finds_token(_build(cache_home))
    [entry] = _entries(cache_home)
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert not [p for p in cache_home.iterdir() if p.name.startswith(".tmp-")]  # atomic: no temp file left
    before = entry.stat()
    assert _finds_token(_build(cache_home))
    after = entry.stat()
    # A hit never rewrites the entry (a miss replaces it through a new temp file, i.e. a new inode).
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_entry_holds_compiled_rules_only(cache_home: Path) -> None:
    _build(cache_home)
    [entry] = _entries(cache_home)
    token = _token()
    _build(cache_home).scan(b"token=" + token)
    assert token not in entry.read_bytes()
    assert entry.read_bytes().startswith(b"kinko-hsdb-1\n")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_entry_is_ignored_and_rebuilt(cache_home: Path, damage: str) -> None:
    _build(cache_home)
    [entry] = _entries(cache_home)
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-100] ^= 0xFF  # inside the serialized database: the checksum catches it
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    else:
        data = bytearray()
    entry.write_bytes(bytes(data))
    inode = entry.stat().st_ino
    assert _finds_token(_build(cache_home))
    assert entry.stat().st_ino != inode  # rewritten
    assert hscache._unwrap(entry.read_bytes(), entry.name.removesuffix(".hsdb")) is not None


def test_entry_of_another_rule_set_under_this_name_is_ignored(cache_home: Path) -> None:
    _build(cache_home, RULES[:3])  # a different, valid database
    [other] = _entries(cache_home)
    _build(cache_home)
    mine = next(p for p in _entries(cache_home) if p != other)
    mine.write_bytes(other.read_bytes())  # valid checksum, wrong key in the header
    assert _finds_token(_build(cache_home))
    assert hscache._unwrap(mine.read_bytes(), mine.name.removesuffix(".hsdb")) is not None


def test_entry_readable_by_others_is_not_trusted(cache_home: Path) -> None:
    _build(cache_home)
    [entry] = _entries(cache_home)
    entry.chmod(0o644)
    key = entry.name.removesuffix(".hsdb")
    assert hscache.load(key, cache_home) is None
    _build(cache_home)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600  # replaced by a fresh private entry


def test_open_cache_dir_is_tightened(cache_home: Path) -> None:
    cache_home.mkdir(parents=True, mode=0o755)
    cache_home.chmod(0o755)
    _build(cache_home)
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
    assert len(_entries(cache_home)) == 1


def test_symlinked_cache_dir_is_never_used(cache_home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    cache_home.parent.mkdir(parents=True)
    cache_home.symlink_to(elsewhere)
    assert _finds_token(_build(cache_home))
    assert list(elsewhere.iterdir()) == []


def test_no_cache_dir_means_no_cache(cache_home: Path, tmp_path: Path) -> None:
    assert _finds_token(_build(None))
    assert hscache.load("0" * 64, None) is None and not hscache.store("0" * 64, b"db", None)
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere near


def test_unwritable_cache_still_scans(cache_home: Path) -> None:
    cache_home.parent.mkdir(parents=True)
    cache_home.write_bytes(b"a file where the directory should be")
    assert _finds_token(_build(cache_home))


def test_key_depends_on_patterns_flags_and_version() -> None:
    base = hscache.database_key("0.9.1", 1, [(b"abc", 0), (b"def", 1)])
    assert base == hscache.database_key("0.9.1", 1, [(b"abc", 0), (b"def", 1)])
    assert base != hscache.database_key("0.9.2", 1, [(b"abc", 0), (b"def", 1)])
    assert base != hscache.database_key("0.9.1", 1, [(b"abc", 0), (b"def", 0)])
    assert base != hscache.database_key("0.9.1", 1, [(b"def", 1), (b"abc", 0)])
    assert base != hscache.database_key("0.9.1", 1, [(b"ab", 0), (b"cdef", 1)])  # lengths are framed
    assert base != hscache.database_key("0.9.1", 2, [(b"abc", 0), (b"def", 1)])


def test_pickled_detector_carries_its_compiled_database(
    cache_home: Path,
) -> None:
    blob = pickle.dumps(_build(cache_home))
    # Unpickle against an emptied cache (its dir travels along): a recompile would write an entry; loading the
    # shipped db does not.
    for entry in _entries(cache_home):
        entry.unlink()
    restored = pickle.loads(blob)
    assert _finds_token(restored)
    assert _entries(cache_home) == []


def test_unpickling_a_database_that_does_not_load_falls_back(cache_home: Path) -> None:
    restored = HyperscanDetector(RULES, serialized=b"not a hyperscan database", cache_dir=cache_home)
    assert _finds_token(restored)
