"""`--show-secrets --output-file`: the report is a new 0600 file, never an old file's mode or a symlink's target."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinko.cli.scan import cli
from tests.scan.tokens import github_token


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    token = github_token()
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app.py").write_text(f'GITHUB_TOKEN = "{token}"\n')
    return root, token


def scan(root: Path, target: Path) -> int:
    result = CliRunner().invoke(cli, ["dir", str(root), "-o", "json", "--show-secrets", "--output-file", str(target)])
    return result.exit_code


def test_an_existing_world_readable_file_becomes_0600(repo: tuple[Path, str], tmp_path: Path) -> None:
    root, token = repo
    target = tmp_path / "report.json"
    target.write_text("old report\n")
    os.chmod(target, 0o644)
    assert scan(root, target) == 1
    assert token in target.read_text() and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_symlink_at_the_target_is_replaced_not_followed(repo: tuple[Path, str], tmp_path: Path) -> None:
    root, token = repo
    elsewhere = tmp_path / "public.txt"
    elsewhere.write_text("someone else's file\n")
    os.chmod(elsewhere, 0o644)
    target = tmp_path / "report.json"
    target.symlink_to(elsewhere)
    assert scan(root, target) == 1
    assert elsewhere.read_text() == "someone else's file\n"
    assert not target.is_symlink() and token in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_no_temporary_file_is_left_behind(repo: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = repo
    out = tmp_path / "out"
    out.mkdir()
    assert scan(root, out / "report.json") == 1
    assert [p.name for p in out.iterdir()] == ["report.json"]
