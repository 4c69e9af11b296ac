"""`kinko scan git`: history built with the real git CLI (loose objects and packs), staged changes, files, stdin."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinko.cli.scan import cli
from kinko.scan.detect import default_detector
from kinko.scan.interface import FileStatus, ScanResult
from kinko.scan.sources.git import GitSource
from tests.scan.tokens import github_token

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": os.devnull}  # fmt: skip


def git(repo: Path, *args: str, date: str = "2024-03-01T10:00:00") -> None:
    env = {**ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A secret committed then `git rm`'d (history only), and one still in HEAD; packed, then one loose commit."""
    old, kept = github_token(), github_token()
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "deploy.env").write_text(f"GITHUB_TOKEN={old}\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "deploy config", date="2024-01-05T10:00:00")
    git(root, "rm", "-q", "deploy.env")
    git(root, "commit", "-qm", "remove secret", date="2024-01-06T10:00:00")
    git(root, "gc", "-q", "--aggressive")  # history now in a packfile (with deltas where git finds them)
    (root / "app.py").write_text(f'TOKEN = "{kept}"\n')
    git(root, "add", ".")
    git(root, "commit", "-qm", "app", date="2024-03-01T10:00:00")  # a loose object
    return root, old, kept


def test_history_reports_commit_date_path_and_whether_head_still_has_it(repo: tuple[Path, str, str]) -> None:
    root, old, kept = repo
    found = list(GitSource(root).scan(default_detector(), ScanResult()))
    got = {f.secret: (f.location.path, f.location.status, f.location.object_ref) for f in found}
    assert got[old][:2] == ("deploy.env", FileStatus.DELETED) and "2024-01-05" in str(got[old][2])
    assert got[kept][:2] == ("app.py", FileStatus.PRESENT) and "2024-03-01" in str(got[kept][2])


def test_since_limits_the_walk(repo: tuple[Path, str, str]) -> None:
    root, _, kept = repo
    result = CliRunner().invoke(cli, ["git", str(root), "--since", "2024-02-01", "-o", "json", "--show-secrets"])
    assert result.exit_code == 1 and kept in result.stdout and "deploy.env" not in result.stdout


def test_staged_scans_what_the_next_commit_adds(repo: tuple[Path, str, str]) -> None:
    root, _, _ = repo
    new = github_token()
    (root / "new.cfg").write_text(f"token={new}\n")
    git(root, "add", "new.cfg")
    found = list(GitSource(root, staged=True).scan(default_detector(), ScanResult()))
    assert [(f.location.path, f.secret) for f in found] == [("new.cfg", new)]


def test_scan_dir_takes_files_and_stdin_and_exit_code(tmp_path: Path) -> None:
    token = github_token()
    (tmp_path / "a.py").write_text(f'T = "{token}"\n')
    (tmp_path / "b.txt").write_text("nothing\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["dir", str(tmp_path / "a.py"), str(tmp_path / "b.txt")])
    assert result.exit_code == 1 and "a.py" in result.stdout
    assert runner.invoke(cli, ["dir", "-"], input=f"key={token}\n").exit_code == 1
    assert runner.invoke(cli, ["dir", str(tmp_path / "a.py"), "--exit-code", "7"]).exit_code == 7
    assert runner.invoke(cli, ["dir", str(tmp_path / "b.txt"), "--exit-code", "7"]).exit_code == 0
