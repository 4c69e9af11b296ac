"""`GitSource`: every blob a repository's history added (loose objects and packs, read with dulwich), or what is staged.

Each blob is scanned once, at the first (newest) commit that walks past it; the finding names the commit, its
author date and the path, and says whether the blob is still reachable from HEAD (`present`) or only in history
(`deleted`: removed since, yet anyone with a clone can read it).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kinko.errors import ScanError
from kinko.scan.findings import matches_to_findings
from kinko.scan.interface import Detector, FileStatus, Finding, Location, ScanResult, Source

MAX_BLOB_BYTES = 32 << 20


class GitSource(Source):
    def __init__(
        self, path: str | Path = ".", *, branch: str | None = None, since: datetime.datetime | None = None,
        staged: bool = False,
    ) -> None:  # fmt: skip
        self.path = str(path)
        self.branch = branch
        self.since = since
        self.staged = staged

    def scan(self, detector: Detector, result: ScanResult) -> Iterator[Finding]:
        from dulwich.errors import NotGitRepository
        from dulwich.repo import Repo

        try:
            repo = Repo.discover(self.path)
        except NotGitRepository:
            raise ScanError(f"not a git repository: {self.path}") from None
        result.artifacts.append(self.path)
        with repo:
            head = _head_blobs(repo)
            blobs = self._staged(repo, head) if self.staged else self._history(repo)
            for sha, path, where in blobs:
                data = repo[sha].as_raw_string()
                if len(data) > MAX_BLOB_BYTES:
                    result.skip(self.path, f"{path} ({where}): {len(data)} bytes; scanned the first {MAX_BLOB_BYTES}")
                    data = data[:MAX_BLOB_BYTES]
                result.bytes_scanned += len(data)
                status = FileStatus.PRESENT if sha in head else FileStatus.DELETED
                yield from matches_to_findings(
                    detector, detector.scan(data, path=path), _location(self.path, path, where, status)
                )

    def _history(self, repo: object) -> Iterator[tuple[bytes, str, str]]:
        """(blob sha, path, "commit <sha> <author date>") for every blob added, newest commit first, once each."""
        from dulwich.repo import Repo

        assert isinstance(repo, Repo)
        try:
            tip = repo.refs[b"refs/heads/" + self.branch.encode()] if self.branch else repo.head()  # type: ignore[index]
        except KeyError:
            raise ScanError(f"no such branch or no commits: {self.branch or 'HEAD'}") from None
        since = int(self.since.timestamp()) if self.since else None
        seen: set[bytes] = set()
        for entry in repo.get_walker(include=[tip], since=since):
            commit = entry.commit
            date = datetime.datetime.fromtimestamp(commit.author_time, datetime.UTC).strftime("%Y-%m-%d")
            where = f"commit {commit.id.decode()[:12]} {date}"
            for change in _flatten(entry.changes()):
                new = change.new
                if new is None or new.sha is None or new.sha in seen or new.path is None:
                    continue
                if new.mode is not None and (new.mode & 0o170000) != 0o100000:
                    continue  # submodules and symlinks hold no content of their own
                seen.add(new.sha)
                yield new.sha, new.path.decode("utf-8", "replace"), where

    def _staged(self, repo: object, head: set[bytes]) -> Iterator[tuple[bytes, str, str]]:
        """Index entries whose blob differs from HEAD's: what the next commit would add."""
        from dulwich.repo import Repo

        assert isinstance(repo, Repo)
        for path, entry in repo.open_index().items():
            sha = getattr(entry, "sha", None)
            if isinstance(sha, bytes) and sha not in head:
                yield sha, path.decode("utf-8", "replace"), "staged"


def _flatten(changes: Sequence[Any]) -> Iterator[Any]:
    """Tree changes of a commit; a merge has one list of changes per parent."""
    for change in changes:
        if isinstance(change, list):
            yield from (c for c in change if c is not None)
        else:
            yield change


def _head_blobs(repo: object) -> set[bytes]:
    """Every blob sha in HEAD's tree (empty for a repository with no commit yet)."""
    from dulwich.objects import Tree
    from dulwich.repo import Repo

    assert isinstance(repo, Repo)
    try:
        tree_id = repo[repo.head()].tree  # type: ignore[attr-defined]
    except KeyError:
        return set()
    blobs: set[bytes] = set()
    stack = [tree_id]
    while stack:
        tree = repo[stack.pop()]
        assert isinstance(tree, Tree)
        for item in tree.iteritems():
            if item.mode is not None and (item.mode & 0o170000) == 0o040000:
                stack.append(item.sha)
            elif item.sha is not None:
                blobs.add(item.sha)
    return blobs


def _location(artifact: str, path: str, where: str, status: FileStatus) -> Callable[[int], Location]:
    return lambda line: Location(artifact=artifact, path=path, line=line, object_ref=where, status=status)
