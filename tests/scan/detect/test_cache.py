"""The on-disk cache of compiled hyperscan rules: hits, rejects (corrupt, foreign, too open), and pickling."""

from __future__ import annotations

import os
import pickle
import secrets
import stat
import string
from pathlib import Path

import pytest

from kinko.scan.detect import HyperscanDetector, hscache, load_rules

pytest.importorskip("hyperscan")

#: A few rules keep each compile in milliseconds; the github-pat rule is the one the checks use.
RULES = [r for r in load_rules() if r.family == "vcs"]


def _token() -> bytes:
    alphabet = string.ascii_letters + string.digits
    return ("ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))).encode()


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv("KINKO_SCAN_CACHE", raising=False)
    return home / "kinko"


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.hsdb")) if folder.is_dir() else []


def _finds_token(detector: HyperscanDetector) -> bool:
    token = _token()
    return [m.secret for m in detector.scan(b"x = 1\nGITHUB=" + token + b"\n")] == [token]


def test_first_build_writes_a_private_entry_and_the_second_reads_it(cache_home: Path) -> None:
    assert _finds_token(HyperscanDetector(RULES))
    [entry] = _entries(cache_home)
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert not [p for p in cache_home.iterdir() if p.name.startswith(".tmp-")]  # atomic: no temp file left
    before = entry.stat()
    assert _finds_token(HyperscanDetector(RULES))
    after = entry.stat()
    # A hit never rewrites the entry (a miss replaces it through a new temp file, i.e. a new inode).
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_entry_holds_compiled_rules_only(cache_home: Path) -> None:
    HyperscanDetector(RULES)
    [entry] = _entries(cache_home)
    token = _token()
    HyperscanDetector(RULES).scan(b"token=" + token)
    assert token not in entry.read_bytes()
    assert entry.read_bytes().startswith(b"kinko-hsdb-1\n")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_entry_is_ignored_and_rebuilt(cache_home: Path, damage: str) -> None:
    HyperscanDetector(RULES)
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
    assert _finds_token(HyperscanDetector(RULES))
    assert entry.stat().st_ino != inode  # rewritten
    assert hscache._unwrap(entry.read_bytes(), entry.name.removesuffix(".hsdb")) is not None


def test_entry_of_another_rule_set_under_this_name_is_ignored(cache_home: Path) -> None:
    HyperscanDetector(RULES[:3])  # a different, valid database
    [other] = _entries(cache_home)
    HyperscanDetector(RULES)
    mine = next(p for p in _entries(cache_home) if p != other)
    mine.write_bytes(other.read_bytes())  # valid checksum, wrong key in the header
    assert _finds_token(HyperscanDetector(RULES))
    assert hscache._unwrap(mine.read_bytes(), mine.name.removesuffix(".hsdb")) is not None


def test_entry_readable_by_others_is_not_trusted(cache_home: Path) -> None:
    HyperscanDetector(RULES)
    [entry] = _entries(cache_home)
    entry.chmod(0o644)
    key = entry.name.removesuffix(".hsdb")
    assert hscache.load(key) is None
    HyperscanDetector(RULES)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600  # replaced by a fresh private entry


def test_open_cache_dir_is_tightened(cache_home: Path) -> None:
    cache_home.mkdir(parents=True, mode=0o755)
    cache_home.chmod(0o755)
    HyperscanDetector(RULES)
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
    assert len(_entries(cache_home)) == 1


def test_symlinked_cache_dir_is_never_used(cache_home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    cache_home.parent.mkdir(parents=True)
    cache_home.symlink_to(elsewhere)
    assert _finds_token(HyperscanDetector(RULES))
    assert list(elsewhere.iterdir()) == []


def test_cache_can_be_turned_off(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINKO_SCAN_CACHE", "0")
    assert _finds_token(HyperscanDetector(RULES))
    assert not cache_home.exists()


def test_unwritable_cache_still_scans(cache_home: Path) -> None:
    cache_home.parent.mkdir(parents=True)
    cache_home.write_bytes(b"a file where the directory should be")
    assert _finds_token(HyperscanDetector(RULES))


def test_key_depends_on_patterns_flags_and_version() -> None:
    base = hscache.database_key("0.9.1", 1, [(b"abc", 0), (b"def", 1)])
    assert base == hscache.database_key("0.9.1", 1, [(b"abc", 0), (b"def", 1)])
    assert base != hscache.database_key("0.9.2", 1, [(b"abc", 0), (b"def", 1)])
    assert base != hscache.database_key("0.9.1", 1, [(b"abc", 0), (b"def", 0)])
    assert base != hscache.database_key("0.9.1", 1, [(b"def", 1), (b"abc", 0)])
    assert base != hscache.database_key("0.9.1", 1, [(b"ab", 0), (b"cdef", 1)])  # lengths are framed
    assert base != hscache.database_key("0.9.1", 2, [(b"abc", 0), (b"def", 1)])


def test_pickled_detector_carries_its_compiled_database(
    cache_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = pickle.dumps(HyperscanDetector(RULES))
    # Unpickle against an empty cache: a recompile would write an entry there; loading the shipped db does not.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    restored = pickle.loads(blob)
    assert _finds_token(restored)
    assert not (tmp_path / "empty").exists()


def test_unpickling_a_database_that_does_not_load_falls_back(cache_home: Path) -> None:
    restored = HyperscanDetector(RULES, serialized=b"not a hyperscan database")
    assert _finds_token(restored)
