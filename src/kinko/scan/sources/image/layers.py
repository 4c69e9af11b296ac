"""Streams one image layer (uncompressed, gzip or zstd) through the tar reader and scans every file, within limits.

Runs in worker processes: it gets a (file, offset, size) reference, opens the archive itself, seeks to the blob
and decompresses on the fly. Nothing is written to disk and no layer is held in memory: one file's content is
read whole only up to `Limits.max_file_in_memory`, bigger files go through in overlapping chunks.
"""

from __future__ import annotations

import io
import posixpath
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import IO

import zstandard

from kinko.scan.findings import matches_to_findings as to_findings
from kinko.scan.findings import new_in_part
from kinko.scan.interface import Detector, FileStatus, Finding, Location, Match
from kinko.scan.sources.gitwhere import CROSS_LAYER_BYTES, GitFiles, resolve_hits
from kinko.scan.sources.image.archive import BlobRef, clean_member_name, printable_name
from kinko.scan.sources.image.embedded import is_yaml, k8s_secret_values
from kinko.scan.sources.image.limits import GZIP_MAGIC, Inflate, compression_of, is_run
from kinko.scan.sources.image.limits import LimitExceeded as LimitExceeded  # re-exported: callers import them from here
from kinko.scan.sources.image.limits import Limits as Limits
from kinko.scan.sources.image.tarstream import Member, TarFormatError, TarStream
from kinko.scan.sources.inner import inner_parts, is_tar, wide_text

_READ = 1 << 20
Reader = Callable[[int], bytes]


@dataclass(frozen=True)
class LayerJob:
    artifact: str
    index: int
    blob: BlobRef
    diff_id: str | None
    created_by: str | None
    limits: Limits


@dataclass
class LayerScan:
    index: int
    hits: list[tuple[str, Finding]] = field(default_factory=list)  # (file path in layer, finding)
    entries: list[str] = field(default_factory=list)  # non-directory paths this layer adds or replaces
    whiteouts: list[str] = field(default_factory=list)  # paths a `.wh.<name>` deletes from lower layers
    opaque_dirs: list[str] = field(default_factory=list)  # dirs a `.wh..wh..opq` empties
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # parts of the layer not scanned (the scan is incomplete)
    bytes_scanned: int = 0
    git: GitFiles = field(default_factory=GitFiles, repr=False)  # for the cross-layer pass (source.py)


class _Window(io.RawIOBase):
    """Seekable read-only view of file[offset : offset+size]: skips are seeks, reads land in the caller's buffer."""

    def __init__(self, fh: IO[bytes], offset: int, size: int) -> None:
        self.fh = fh
        self.base = offset
        self.size = size
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, origin + pos)
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        left = self.size - self.pos
        n = left if n is None or n < 0 else min(n, left)
        if n <= 0:
            return b""
        self.fh.seek(self.base + self.pos)
        data = self.fh.read(n)
        self.pos += len(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self.size - self.pos)
        if n <= 0:
            return 0
        self.fh.seek(self.base + self.pos)
        got = self.fh.readinto(memoryview(b)[:n]) or 0  # type: ignore[attr-defined]
        self.pos += got
        return int(got)


def _open_layer(fh: IO[bytes], blob: BlobRef, limits: Limits) -> TarStream:
    """Uncompressed layers are read through a seekable window (skips are seeks); compressed ones stream."""
    fh.seek(blob.offset)
    kind = compression_of(fh.read(4))
    raw: io.RawIOBase = _Window(fh, blob.offset, blob.size)
    if kind is not None:
        raw = Inflate.for_layer(raw, kind, limits)
    return TarStream(io.BufferedReader(raw, _READ))


def _stream_layer(raw: io.RawIOBase, limits: Limits) -> TarStream:
    """A layer read forward-only (from a compressed outer archive): peek at its magic, never seek."""
    buffered = io.BufferedReader(raw, _READ)
    kind = compression_of(buffered.peek(4)[:4])
    if kind is None:
        return TarStream(buffered)
    return TarStream(io.BufferedReader(Inflate.for_layer(buffered, kind, limits), _READ))


@contextmanager
def _guarded(job: LayerJob, out: LayerScan) -> Iterator[None]:
    """A broken layer is recorded as skipped (the rest of it was not scanned); the findings made before are kept."""
    try:
        yield
    except LimitExceeded as exc:
        out.skipped.append(f"layer {job.index}: {exc}; scan of this layer stopped, the rest was not scanned")
    except (TarFormatError, OSError, zlib.error, zstandard.ZstdError) as exc:
        out.skipped.append(
            f"layer {job.index}: truncated or corrupt ({exc}); findings so far are kept, the rest was not scanned"
        )


def scan_layer(job: LayerJob, detector: Detector) -> LayerScan:
    """Scan every file of one layer; a broken layer yields a warning plus whatever was found before it broke."""
    out = LayerScan(job.index)
    with _guarded(job, out), open(job.blob.file, "rb", buffering=0) as fh:  # the BufferedReader buffers
        _walk(job, detector, _open_layer(fh, job.blob, job.limits), out)
    return _git_places(out)


def scan_layer_stream(job: LayerJob, detector: Detector, raw: io.RawIOBase) -> LayerScan:
    """Scan one layer whose blob bytes come from a forward-only stream (`raw` ends where the blob ends)."""
    out = LayerScan(job.index)
    with _guarded(job, out):
        _walk(job, detector, _stream_layer(raw, job.limits), out)
    return _git_places(out)


def _git_places(out: LayerScan) -> LayerScan:
    """A layer's `.git` files go back with its scan when they are small: the findings in its git objects are placed
    after every layer was scanned, on the image's final `.git` (source.py), since a later layer may have moved its
    refs or added the commits. Larger ones are used here, on this layer's files alone, and dropped."""
    if out.git.dirs and out.git.size > CROSS_LAYER_BYTES:
        out.hits = resolve_hits(out.hits, out.git)
        out.git = GitFiles()
    return out


def _walk(job: LayerJob, detector: Detector, tar: TarStream, out: LayerScan) -> None:
    hostile = 0
    for count, member in enumerate(tar.members(), start=1):
        if count > job.limits.max_entries_per_layer:
            raise LimitExceeded(f"over {job.limits.max_entries_per_layer} entries (tar bomb)")
        path, bad = clean_member_name(printable_name(member.name))
        hostile += bad
        _entry(job, detector, tar, member, path, out)
    if hostile:
        out.warnings.append(
            f"layer {job.index}: {hostile} absolute or `..` entry names (normalized; nothing is written to disk)"
        )


def _entry(job: LayerJob, detector: Detector, tar: TarStream, member: Member, path: str, out: LayerScan) -> None:
    parent, base = posixpath.split(path)
    if base == ".wh..wh..opq":
        out.opaque_dirs.append(parent)
        return
    if base.startswith(".wh."):
        out.whiteouts.append(posixpath.join(parent, base[4:]))
        return
    if member.isdir():
        return
    out.entries.append(path)
    if member.issym() or member.islnk():
        target = posixpath.normpath(posixpath.join(parent, member.linkname))
        if target.startswith("../") or (member.islnk() and member.linkname.startswith("/")):
            out.warnings.append(f"layer {job.index}: link {path} points outside the image root (not followed)")
        if member.islnk():  # hard links name their target from the archive root
            _link_hits(path, clean_member_name(printable_name(member.linkname))[0], out)
        return
    if not member.isreg():
        return
    limit = job.limits.max_file_bytes
    if member.sparse:
        # Holes are zeros: the stored segments are all the content there is, whatever size is declared.
        limit = job.limits.max_sparse_bytes
        out.warnings.append(
            f"layer {job.index}: sparse file {path} (declares {member.realsize} bytes): scanned its stored data only"
        )
    _scan_file(job, detector, tar.read, min(member.size, limit), path, out)
    if member.size > limit:
        what = "max_sparse_bytes" if member.sparse else "max_file_bytes"
        out.skipped.append(f"layer {job.index}: {path} ({member.size} bytes) scanned up to {limit} bytes only "
                           f"(Limits.{what})")  # fmt: skip


def _location(job: LayerJob, path: str) -> Callable[[int], Location]:
    def at(line: int) -> Location:
        return Location(
            artifact=job.artifact,
            path=path,
            line=line,
            layer_index=job.index,
            layer_diff_id=job.diff_id,
            created_by=job.created_by,
            status=FileStatus.PRESENT,  # resolved against later layers' whiteouts once all are known
        )

    return at


def _scan_file(job: LayerJob, detector: Detector, read: Reader, size: int, path: str, out: LayerScan) -> None:
    lim = job.limits
    if size <= lim.max_file_in_memory:
        data = read(size)
        out.git.offer(path, data)
        _scan_buffer(job, detector, data, path, 1, out)
        _scan_inside(job, detector, data, path, out)
        if data[:2] == GZIP_MAGIC and not is_tar(path, data):
            _scan_inner_gzip(job, detector, data, path, out)
        elif is_yaml(path):
            for key, line, value in k8s_secret_values(data):
                _scan_buffer(job, detector, value, f"{path}!data.{key}", line, out)
        return
    _scan_chunks(job, detector, read, size, path, out)


def _scan_inside(job: LayerJob, detector: Detector, data: bytes, path: str, out: LayerScan) -> None:
    """UTF-16/32 text decoded, and the members of zip-family and tar archives (nested), each at `path!member`."""
    wide = wide_text(data)
    if wide is not None:
        _scan_buffer(job, detector, wide, path, 1, out)
    problems: list[str] = []
    for name, content in inner_parts(path, data, problems):
        before = len(out.hits)
        _scan_buffer(job, detector, content, name, 1, out)
        if name.endswith("!constants"):  # .pyc strings: only what the raw bytes did not show already
            whole = name.removesuffix("!constants")
            new = new_in_part([f for _, f in out.hits[before:]], (f for _, f in out.hits[:before]), whole)
            out.hits[before:] = [(path, f) for f in new]
        wide = wide_text(content)
        if wide is not None:
            _scan_buffer(job, detector, wide, name, 1, out)
    out.skipped.extend(f"layer {job.index}: {problem}" for problem in problems)


def _link_hits(path: str, target: str, out: LayerScan) -> None:
    """A hard link in the same layer holds its target's content: its findings again, at the link's own path."""
    for hit_path, finding in list(out.hits):
        if hit_path == target:
            moved = replace(finding.location, path=path + finding.location.path[len(target) :])
            out.hits.append((path, replace(finding, location=moved)))


def _scan_buffer(job: LayerJob, detector: Detector, data: bytes, path: str, first_line: int, out: LayerScan) -> None:
    out.bytes_scanned += len(data)
    matches = detector.scan(data, path=path)
    if not matches:
        return
    if first_line != 1:
        matches = [replace(m, line=m.line + first_line - 1) for m in matches]
    out.hits.extend((path.split("!", 1)[0], f) for f in to_findings(detector, matches, _location(job, path)))


def _scan_chunks(job: LayerJob, detector: Detector, read: Reader, size: int, path: str, out: LayerScan) -> None:
    """Big files: fixed-size chunks that overlap, so a secret across a boundary is still whole in one chunk.

    A chunk that is a run of one byte (a zero-filled region) is scanned only as far as a secret from the
    previous chunk could reach into it: the run itself holds nothing to find, and costs no detector pass.
    """
    lim = job.limits
    overlap = b""
    line = 1  # line number at the start of `overlap + chunk`
    left = size
    seen: set[tuple[str, int]] = set()
    base = 0  # absolute offset of the start of `overlap + chunk`
    while left > 0:
        chunk = read(min(lim.chunk_size, left))
        if not chunk:
            break
        left -= len(chunk)
        out.bytes_scanned += len(chunk)
        run = len(chunk) >= lim.chunk_overlap and is_run(chunk)
        buf = overlap + (chunk[: lim.chunk_overlap] if run else chunk)
        fresh = _fresh(detector.scan(buf, path=path), seen, base, line)
        if fresh:
            out.hits.extend((path, f) for f in to_findings(detector, fresh, _location(job, path)))
        total = len(overlap) + len(chunk)
        keep = min(lim.chunk_overlap, total)
        if run:  # newlines in the first total-keep bytes of overlap + chunk, counted without building it
            line += overlap.count(b"\n") + (len(chunk) - keep if chunk[0] == 0x0A else 0)
            overlap = chunk[len(chunk) - keep :]
        else:
            line += buf.count(b"\n", 0, total - keep)
            overlap = buf[total - keep :]
        base += total - keep
        # `seen` only needs keys that can reappear in the next overlap
        seen = {k for k in seen if k[1] >= base}


def _fresh(matches: list[Match], seen: set[tuple[str, int]], base: int, line: int) -> list[Match]:
    """Matches not reported from the previous chunk's overlap, with lines made absolute (`line` starts the buffer)."""
    fresh = []
    for m in matches:
        key = (m.rule_id, base + m.start)
        if key not in seen:
            seen.add(key)
            fresh.append(replace(m, line=m.line + line - 1))
    return fresh


def _scan_inner_gzip(job: LayerJob, detector: Detector, data: bytes, path: str, out: LayerScan) -> None:
    """A gzip'd file inside a layer (app.log.gz): inflate with a size and ratio cap, scan as `path!`."""
    lim = job.limits
    cap = int(min(lim.max_inner_gzip_bytes, max(1 << 20, lim.max_inner_gzip_ratio * len(data))))
    inflater = zlib.decompressobj(31)
    try:
        inner = inflater.decompress(data, cap)
    except zlib.error:
        return  # not really gzip; the raw bytes were scanned already
    if inflater.unconsumed_tail:
        out.skipped.append(
            f"layer {job.index}: {path} inflates past {cap} bytes (gzip bomb?); scanned the first {cap} "
            "(Limits.max_inner_gzip_bytes, max_inner_gzip_ratio)"
        )
    inner_name = posixpath.basename(path).removesuffix(".gz").removesuffix(".GZ") or "-"
    _scan_buffer(job, detector, inner, f"{path}!{inner_name}", 1, out)
