"""Which commit and path a git blob found inside an image layer belongs to, from the same `.git` directory's files.

A layer that holds a `.git` directory (`COPY . .`) holds its refs, commits and trees too. `GitFiles` keeps the small
part of it that says where a blob sits (HEAD, refs, packed-refs, loose commits/trees/tags, packfiles) while the
layer streams by; `resolve_hits` then turns `<dir>/.git/objects/ab/cd...!blob` and `<dir>/.git/objects/pack/
pack-x.pack!<blob id>` locations into `<dir>/.git!<commit>:<path>` and says whether HEAD's tree still holds the
blob (`present in HEAD`) or only history does (`history only`), as `kinko scan git` does. Objects are parsed by
dulwich. The walk is bounded; when refs or commits are missing, or a bound is hit, the object-id location stays.
In an image the walk runs after every layer was scanned, on all its layers' files at once (`merged`): a `.git`
copied in one layer and moved on by `git pull` or `git commit` in a later one is walked as the final image holds it.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from kinko.scan.interface import Finding

MAX_GIT_BYTES = 256 << 20  # `.git` bytes one layer keeps for the walk; past it, blobs keep their object-id location
#: a layer's `.git` files up to this size go back with its scan for the walk over all layers (larger: walked alone)
CROSS_LAYER_BYTES = 16 << 20
MAX_COMMITS = 5_000
MAX_TREES = 50_000
_DIR = re.compile(r"^((?:.*/)?\.git)/(.+)$")
_LOOSE_HIT = re.compile(r"^((?:.*/)?\.git)/objects/([0-9a-f]{2})/([0-9a-f]{38})!blob$")
_PACK_HIT = re.compile(r"^((?:.*/)?\.git)/objects/pack/[^/!]+\.pack!([0-9a-f]{40})$")
_LOOSE_NAME = re.compile(r"^objects/[0-9a-f]{2}/[0-9a-f]{38}$")
_KEPT_KINDS = (b"commit", b"tree", b"tag")


class _Bound(Exception):
    """The walk went past MAX_COMMITS or MAX_TREES."""


@dataclass
class _Dir:
    files: dict[str, bytes] = field(default_factory=dict)  # name inside .git -> bytes
    over: bool = False  # past MAX_GIT_BYTES: its blobs keep their object-id location


@dataclass
class GitFiles:
    """The files of every `.git` directory of one layer that locating a blob needs, within MAX_GIT_BYTES in all."""

    dirs: dict[str, _Dir] = field(default_factory=dict)
    size: int = 0  # kept bytes over all of them: MAX_GIT_BYTES bounds the layer too

    def offer(self, path: str, data: bytes) -> None:
        """Keep `data` if `path` is a ref, a pack or a loose commit/tree/tag of some `.git` directory."""
        found = _DIR.match(path)
        if found is None:
            return
        root, name = found.groups()
        if not _wanted(name, data):
            return
        entry = self.dirs.setdefault(root, _Dir())
        if entry.over:
            return
        if self.size + len(data) > MAX_GIT_BYTES:
            self.size -= sum(map(len, entry.files.values()))
            entry.over, entry.files = True, {}
            return
        self.size += len(data)
        entry.files[name] = data


def _wanted(name: str, data: bytes) -> bool:
    if name in ("HEAD", "packed-refs") or name.startswith("refs/"):
        return len(data) < 1 << 20
    if name.startswith("objects/pack/") and name.endswith(".pack"):
        return data[:4] == b"PACK"
    if _LOOSE_NAME.match(name) and data[:1] == b"x":
        try:
            head = zlib.decompressobj().decompress(data, 16)
        except zlib.error:
            return False
        return head.split(b" ", 1)[0] in _KEPT_KINDS
    return False


def resolve_hits(hits: list[tuple[str, Finding]], git: GitFiles) -> list[tuple[str, Finding]]:
    """`hits` with each git-blob finding moved to its commit and path, where the layer's `.git` files tell them."""
    wanted: dict[str, set[bytes]] = {}
    for _, finding in hits:
        blob = _blob_of(finding.location.path)
        if blob is not None and blob[0] in git.dirs and not git.dirs[blob[0]].over:
            wanted.setdefault(blob[0], set()).add(blob[1])
    places: dict[tuple[str, bytes], tuple[str, str, bool]] = {}
    for root, blobs in wanted.items():
        found = _locate_or_nothing(git.dirs[root].files, blobs)
        places.update({(root, blob): where for blob, where in found.items()})
    out: list[tuple[str, Finding]] = []
    for path, finding in hits:
        blob = _blob_of(finding.location.path)
        where = places.get(blob) if blob is not None else None
        if blob is None or where is None:
            out.append((path, finding))
            continue
        commit, file_path, in_head = where
        status = "present in HEAD" if in_head else "history only"
        location = replace(
            finding.location,
            path=f"{blob[0]}!{commit[:12]}:{file_path}",
            object_ref=f"git blob {blob[1].decode()} in commit {commit[:12]}, {status}",
        )
        out.append((path, replace(finding, location=location)))
    return out


def unresolved(hits: list[tuple[str, Finding]]) -> bool:
    """Some finding is still at a git object's location (its layer's `.git` files did not say where it sits)."""
    return any(_blob_of(finding.location.path) is not None for _, finding in hits)


def merged(layers: Iterable[GitFiles]) -> GitFiles:
    """The `.git` files of several layers, lowest first, as the image's final filesystem holds them: a later
    layer's file replaces an earlier one's (refs move on; objects are named by their content, so they agree)."""
    out = GitFiles()
    for git in layers:
        for root, entry in git.dirs.items():
            into = out.dirs.setdefault(root, _Dir())
            into.over = into.over or entry.over
            into.files.update(entry.files)
    return out


def _blob_of(path: str) -> tuple[str, bytes] | None:
    """(`.git` directory, blob id) of a git-object location, else None."""
    loose = _LOOSE_HIT.match(path)
    if loose is not None:
        return loose.group(1), (loose.group(2) + loose.group(3)).encode()
    packed = _PACK_HIT.match(path)
    if packed is not None:
        return packed.group(1), packed.group(2).encode()
    return None


def _locate_or_nothing(files: dict[str, bytes], blobs: set[bytes]) -> dict[bytes, tuple[str, str, bool]]:
    try:
        return _locate(files, blobs)
    except Exception:  # _Bound, or one of the many kinds dulwich raises on a corrupt object: keep the object ids
        return {}


def _locate(files: dict[str, bytes], blobs: set[bytes]) -> dict[bytes, tuple[str, str, bool]]:
    """blob id -> (commit id, path, in HEAD's tree) for the blobs some walked commit's tree holds."""
    objects = _objects(files)
    head, tips = _refs(files, objects)
    walk = _Walk(objects, blobs)
    commits = _reachable(tips, objects)
    head_tree = walk.find(objects[head].tree) if head in objects else {}
    found: dict[bytes, tuple[str, str, bool]] = {}
    # Newest first (committer time, then a child before its parent): a blob that many commits hold is reported at
    # the newest of them, the commit a reader is most likely to look at; whether HEAD's tree holds it is told apart.
    depth = _generations(commits)
    for commit in sorted(commits, key=lambda c: (c.commit_time, depth[c.id], c.id), reverse=True):
        for blob, path in walk.find(commit.tree).items():
            if blob not in found:
                found[blob] = (commit.id.decode(), path, blob in head_tree)
        if len(found) == len(blobs):
            break
    return found


def _objects(files: dict[str, bytes]) -> dict[bytes, Any]:
    """Commits, trees and tags of the loose objects and packs, by id."""
    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.objects import ShaFile
    from dulwich.pack import PackData, PackInflater

    objects: dict[bytes, Any] = {}
    for name, data in files.items():
        if _LOOSE_NAME.match(name):
            obj = ShaFile.from_file(io.BytesIO(data))
            objects[obj.id] = obj
        elif name.endswith(".pack"):
            pack = PackData(name, object_format=DEFAULT_OBJECT_FORMAT, file=io.BytesIO(data), size=len(data))
            for packed in PackInflater.for_pack_data(pack):
                if packed.type_name in _KEPT_KINDS:
                    objects[packed.id] = packed
    return objects


def _refs(files: dict[str, bytes], objects: dict[bytes, Any]) -> tuple[bytes, list[bytes]]:
    """(HEAD's commit id or b"", the commit ids every ref and HEAD point at), tags peeled."""
    refs: dict[str, bytes] = {}
    for line in files.get("packed-refs", b"").splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith((b"#", b"^")):
            refs[parts[1].decode(errors="replace")] = parts[0]
    refs.update({name: data.strip() for name, data in files.items() if name.startswith("refs/")})
    head = files.get("HEAD", b"").strip()
    if head.startswith(b"ref: "):
        head = refs.get(head[5:].decode(errors="replace"), b"")
    return _peel(head, objects), [_peel(sha, objects) for sha in (*refs.values(), head) if sha]


def _peel(sha: bytes, objects: dict[bytes, Any]) -> bytes:
    for _ in range(10):
        obj = objects.get(sha)
        if obj is None or obj.type_name != b"tag":
            break
        sha = obj.object[1]
    return sha


def _reachable(tips: Iterable[bytes], objects: dict[bytes, Any]) -> list[Any]:
    """Every commit reachable from `tips` whose object is here (a shallow or partial history just stops)."""
    seen: set[bytes] = set()
    stack = list(tips)
    commits: list[Any] = []
    while stack:
        sha = stack.pop()
        obj = objects.get(sha)
        if sha in seen or obj is None or obj.type_name != b"commit":
            continue
        seen.add(sha)
        commits.append(obj)
        if len(commits) > MAX_COMMITS:
            raise _Bound
        stack.extend(obj.parents)
    return commits


def _generations(commits: list[Any]) -> dict[bytes, int]:
    """Commit id -> 1 + the longest chain of its parents here: orders commits made within the same second."""
    by_id = {c.id: c for c in commits}
    depth: dict[bytes, int] = {}
    for start in commits:
        stack = [start.id]
        while stack:
            sha = stack[-1]
            if sha in depth:
                stack.pop()
                continue
            todo = [p for p in by_id[sha].parents if p in by_id and p not in depth]
            if todo:
                stack.extend(todo)
            else:
                depth[sha] = 1 + max((depth[p] for p in by_id[sha].parents if p in by_id), default=0)
                stack.pop()
    return depth


class _Walk:
    """Which of `blobs` a tree holds and at which path, memoized per tree id (commits share most subtrees)."""

    def __init__(self, objects: dict[bytes, Any], blobs: set[bytes]) -> None:
        self.objects, self.blobs = objects, blobs
        self.memo: dict[bytes, dict[bytes, str]] = {}

    def find(self, tree_id: bytes) -> dict[bytes, str]:
        known = self.memo.get(tree_id)
        if known is not None:
            return known
        if len(self.memo) >= MAX_TREES:
            raise _Bound
        found: dict[bytes, str] = {}
        self.memo[tree_id] = found
        tree = self.objects.get(tree_id)
        if tree is None or tree.type_name != b"tree":
            return found
        for entry in tree.iteritems():
            name = entry.path.decode("utf-8", "replace")
            if (entry.mode & 0o170000) == 0o040000:
                for blob, path in self.find(entry.sha).items():
                    found.setdefault(blob, f"{name}/{path}")
            elif entry.sha in self.blobs:
                found.setdefault(entry.sha, name)
        return found
