"""The vault file is 0600 and never reached through a symlink: new, dangling-link and existing-file cases."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kinko.errors import InvalidInput, NotFound
from kinko.storage.sqlite import SqliteStore


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_new_vault_file_is_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        SqliteStore(tmp_path / "v.db").close()
    finally:
        os.umask(old)
    assert mode(tmp_path / "v.db") == 0o600


def test_a_dangling_symlink_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    (tmp_path / "v.db").symlink_to(target)
    with pytest.raises(InvalidInput, match="symbolic link"):
        SqliteStore(tmp_path / "v.db")
    assert not target.exists()


def test_a_symlink_to_an_existing_vault_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "real.db").close()
    (tmp_path / "v.db").symlink_to(tmp_path / "real.db")
    with pytest.raises(InvalidInput, match="symbolic link"):
        SqliteStore(tmp_path / "v.db", create=False)


def test_an_existing_open_vault_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    SqliteStore(path).close()
    os.chmod(path, 0o644)
    wal = tmp_path / "v.db-wal"
    wal.write_bytes(b"")
    os.chmod(wal, 0o664)
    SqliteStore(path, create=False).close()
    assert mode(path) == 0o600
    if wal.exists():
        assert mode(wal) == 0o600


def test_a_missing_vault_without_create_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        SqliteStore(tmp_path / "v.db", create=False)
    assert not (tmp_path / "v.db").exists()
