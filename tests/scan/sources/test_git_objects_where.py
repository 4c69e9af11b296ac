"""A `.git` directory inside an image layer: a finding in a git object is reported at the commit and path that hold
the blob (`<dir>/.git!<commit>:<path>`), with whether HEAD's tree still holds it, for loose objects and packs.
Repositories are made with the git CLI; commit dates are set so "newest" is well defined."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kinko.scan.detect import default_detector
from kinko.scan.interface import Finding, ScanResult
from kinko.scan.sources.image import ImageSource
from tests.scan.imagebuild import build_docker_archive
from tests.scan.tokens import github_token


def _git(repo: Path, *args: str, when: int = 1_700_000_000) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(repo),
           "GIT_AUTHOR_DATE": f"{when} +0000", "GIT_COMMITTER_DATE": f"{when} +0000"}  # fmt: skip
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env)
    return done.stdout.strip()


def _repo(root: Path, token: str, *, remove: bool, later: int = 100) -> tuple[Path, str]:
    """config/deploy.env holds the token from the first commit; the second commit `git rm`s it (`remove`) or only
    touches README. Returns the repository and the id of the newest commit whose tree holds the token's blob."""
    repo = root / "src"
    (repo / "config").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    filler = "".join(f"OPTION_{i} = {i * 7}\n" for i in range(200))  # big enough for git to store deltas
    (repo / "config" / "deploy.env").write_text(f"{filler}TOKEN={token}\n")
    (repo / "README").write_text(filler)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first", when=1_700_000_000)
    first = _git(repo, "rev-parse", "HEAD")
    if remove:
        _git(repo, "rm", "-q", "config/deploy.env")
    (repo / "README").write_text(filler + "more\n")
    _git(repo, "commit", "-qam", "second", when=1_700_000_000 + later)
    return repo, first if remove else _git(repo, "rev-parse", "HEAD")


def _scan(repo: Path, out: Path, *, drop: tuple[str, ...] = ()) -> list[Finding]:
    files = {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}
    layer = {f"srv/app/{name}": data for name, data in files.items() if not name.startswith(drop)}
    archive = build_docker_archive(out, [layer], ["COPY . /srv/app"])
    found = ImageSource(archive, workers=1).scan(default_detector(), ScanResult())
    return [f for f in found if f.rule_id == "github-pat" and ".git" in f.location.path]


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
@pytest.mark.parametrize("remove", [True, False], ids=["history-only", "in-head"])
def test_git_blob_at_commit_and_path(tmp_path: Path, packed: bool, remove: bool) -> None:
    repo, commit = _repo(tmp_path, github_token(), remove=remove)
    if packed:
        _git(repo, "gc", "-q", "--aggressive", "--prune=now")
        assert not list((repo / ".git" / "objects").glob("[0-9a-f][0-9a-f]/*")), "gc packs every object"
    blob = _git(repo, "rev-parse", f"{commit}:config/deploy.env")
    found = _scan(repo, tmp_path / "img.tar")
    assert [f.location.path for f in found] == [f"srv/app/.git!{commit[:12]}:config/deploy.env"]
    status = "history only" if remove else "present in HEAD"
    assert found[0].location.object_ref == f"git blob {blob} in commit {commit[:12]}, {status}"


def test_same_second_commits_child_is_newer(tmp_path: Path) -> None:
    """Two commits within one second: the child (HEAD) is the newest commit holding the blob, not its parent."""
    repo, head = _repo(tmp_path, github_token(), remove=False, later=0)
    found = _scan(repo, tmp_path / "img.tar")
    assert [f.location.path for f in found] == [f"srv/app/.git!{head[:12]}:config/deploy.env"]


def test_packed_refs_only(tmp_path: Path) -> None:
    """`git gc` moves the branch into packed-refs: the walk starts from there as well."""
    repo, commit = _repo(tmp_path, github_token(), remove=True)
    _git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    found = _scan(repo, tmp_path / "img.tar")
    assert [f.location.path for f in found] == [f"srv/app/.git!{commit[:12]}:config/deploy.env"]


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_without_refs_the_object_id_stays(tmp_path: Path, packed: bool) -> None:
    """No HEAD and no refs in the layer: nothing says which commit is current, so the object-id location stays."""
    repo, _ = _repo(tmp_path, github_token(), remove=True)
    if packed:
        _git(repo, "gc", "-q", "--prune=now")
    found = _scan(repo, tmp_path / "img.tar", drop=(".git/HEAD", ".git/refs", ".git/packed-refs"))
    assert len(found) == 1 and found[0].location.object_ref is None
    assert found[0].location.path.startswith("srv/app/.git/objects/")


def test_walk_bound_keeps_the_object_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kinko.scan.sources import gitwhere

    monkeypatch.setattr(gitwhere, "MAX_COMMITS", 1)
    repo, _ = _repo(tmp_path, github_token(), remove=True)
    found = _scan(repo, tmp_path / "img.tar")
    assert len(found) == 1 and found[0].location.path.endswith("!blob")


def test_byte_bound_keeps_the_object_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kinko.scan.sources import gitwhere

    monkeypatch.setattr(gitwhere, "MAX_GIT_BYTES", 64)
    repo, _ = _repo(tmp_path, github_token(), remove=True)
    found = _scan(repo, tmp_path / "img.tar")
    assert len(found) == 1 and found[0].location.path.endswith("!blob") and found[0].location.object_ref is None


def _snapshot(repo: Path) -> dict[str, bytes]:
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}


def test_a_git_moved_on_in_a_later_layer_is_walked_as_the_image_ends(tmp_path: Path) -> None:
    """`COPY . /srv/app` with the token committed, then `RUN git rm … && git commit` in a later layer: the blob sits in
    the first layer, the commit that dropped it in the second. Placed on the final `.git`, the blob is history only
    (layer by layer, the first layer's own refs would have said present in HEAD)."""
    token = github_token()
    repo = tmp_path / "src"
    (repo / "config").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "config" / "deploy.env").write_text(f"TOKEN={token}\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first", when=1_700_000_000)
    first = _git(repo, "rev-parse", "HEAD")
    before = _snapshot(repo)
    _git(repo, "rm", "-q", "config/deploy.env")
    _git(repo, "commit", "-qm", "drop the key", when=1_700_000_100)
    after = _snapshot(repo)
    changed = {f"srv/app/{n}": d for n, d in after.items() if before.get(n) != d}
    removed = {f"srv/app/{n}": None for n in before if n not in after}
    archive = build_docker_archive(tmp_path / "img.tar", [{f"srv/app/{n}": d for n, d in before.items()},
                                                          {**changed, **removed}],
                                   ["COPY . /srv/app", "RUN git rm config/deploy.env && git commit"])  # fmt: skip
    found = [f for f in ImageSource(archive, workers=1).scan(default_detector(), ScanResult())
             if f.rule_id == "github-pat" and ".git" in f.location.path]  # fmt: skip
    blob = _git(repo, "rev-parse", f"{first}:config/deploy.env")
    assert [f.location.path for f in found] == [f"srv/app/.git!{first[:12]}:config/deploy.env"]
    assert found[0].location.object_ref == f"git blob {blob} in commit {first[:12]}, history only"
