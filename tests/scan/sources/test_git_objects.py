"""A `.git` directory inside an image layer (`COPY . .`): a key committed then `git rm`'d is found in the loose
objects and, after `git gc`, in the packfile, deltas included, and reported at its commit and path
(test_git_objects_where.py has the details). Repositories are made with the git CLI."""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path

import pytest

from kinko.scan.detect import default_detector
from kinko.scan.interface import Finding, ScanResult
from kinko.scan.sources.gitobjects import loose_blob
from kinko.scan.sources.image import ImageSource
from tests.scan.imagebuild import build_docker_archive
from tests.scan.tokens import github_token


def _git(repo: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(repo)}  # fmt: skip
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


def _leaky_repo(root: Path, token: str) -> Path:
    """settings.py had the token in its first version; the second version removed it; deploy.env was git rm'd."""
    repo = root / "src"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    filler = "".join(f"OPTION_{i} = {i * 7}\n" for i in range(200))  # big enough for git to store a delta
    (repo / "settings.py").write_text(f'{filler}GITHUB_TOKEN = "{token}"\n')
    (repo / "deploy.env").write_text(f"TOKEN={token}\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    (repo / "settings.py").write_text(f'{filler}GITHUB_TOKEN = os.environ["GITHUB_TOKEN"]\n')
    _git(repo, "rm", "-q", "deploy.env")
    _git(repo, "commit", "-qam", "remove the token")
    return repo


def _image_of(repo: Path, out: Path) -> list[Finding]:
    files = {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}
    layer = {f"app/{name}": data for name, data in files.items()}
    archive = build_docker_archive(out, [layer], ["COPY . /app"])
    found = ImageSource(archive, workers=1).scan(default_detector(), ScanResult())
    return [f for f in found if f.rule_id == "github-pat"]


def test_loose_objects(tmp_path: Path) -> None:
    token = github_token()
    found = _image_of(_leaky_repo(tmp_path, token), tmp_path / "img.tar")
    paths = sorted(f.location.path.split(":", 1)[1] for f in found)
    assert paths == ["deploy.env", "settings.py"]  # the first settings.py and deploy.env (the same token, two blobs)
    assert all(f.location.path.startswith("app/.git!") for f in found)
    assert all(str(f.location.object_ref).endswith(", history only") for f in found)


def test_packfile_with_deltas(tmp_path: Path) -> None:
    token = github_token()
    repo = _leaky_repo(tmp_path, token)
    _git(repo, "gc", "-q", "--aggressive", "--prune=now")
    assert not list((repo / ".git" / "objects").glob("[0-9a-f][0-9a-f]/*")), "gc packs every object"
    verify = subprocess.run(["git", "verify-pack", "-v", *map(str, (repo / ".git/objects/pack").glob("*.idx"))],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert any(len(line.split()) >= 7 for line in verify.splitlines()), "at least one object stored as a delta"
    found = _image_of(repo, tmp_path / "img.tar")
    paths = sorted(f.location.path.split(":", 1)[1] for f in found)
    assert paths == ["deploy.env", "settings.py"] and all(f.location.path.startswith("app/.git!") for f in found)
    assert all(str(f.location.object_ref).endswith(", history only") for f in found)


@pytest.mark.parametrize("header", [b"blob 5\0hello", b"tree 3\0abc", b"blob 99999999999\0x"])
def test_loose_object_headers(header: bytes) -> None:
    content, problem = loose_blob(zlib.compress(header), cap=1 << 20)
    if header.startswith(b"tree"):
        assert (content, problem) == (None, None)
    elif b"99999" in header:
        assert content is None and problem is not None and "over" in problem
    else:
        assert (content, problem) == (b"hello", None)
    assert loose_blob(b"x\x9cgarbage", cap=10)[1] is not None
