"""The member index of an image archive (a tar, plain or gzip/zstd-compressed, or an OCI directory): name -> blob.

Nothing is extracted: members are located as (file, offset, size) so any process can seek to them and stream. A
gzip/zstd-compressed outer archive (`docker save | gzip`, which `docker load` accepts) cannot seek: one
decompressing pass indexes it and keeps only its small JSON members; the layers are read in a second pass (see
`outer_stream`).
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

from kinko.errors import ScanError
from kinko.scan.sources.image.limits import CappedTarInfo, Inflate, LimitExceeded, Limits, compression_of
from kinko.scan.sources.image.tarstream import Member, TarFormatError, TarStream

NOT_AN_IMAGE = "not a docker-archive or OCI image"
_MAX_JSON = 16 << 20  # manifests and configs are small; a bigger one is hostile
_MAX_OUTER_ENTRIES = 200_000
#: JSON members of a compressed outer archive kept in memory (manifests, index, configs are kilobytes)
_MAX_KEPT_TOTAL = 64 << 20


@dataclass(frozen=True)
class BlobRef:
    """Where a blob's bytes are: a byte range of a file (the outer tar, or a blob file in a directory)."""

    file: str
    offset: int
    size: int
    #: "gzip"/"zstd" when `file` is a compressed outer tar: no byte offset can be seeked to, so the blob is
    #: found again as the outer tar's `member`-th entry (1-based) in a sequential pass
    compression: str | None = None
    member: int = 0


@dataclass
class Notes:
    """What reading an archive had to say: plain warnings, and the parts it could not read (`skipped`)."""

    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _too_many_entries() -> str:
    return f"outer archive has over {_MAX_OUTER_ENTRIES} entries (a tar bomb?); rest ignored"


def clean_member_name(name: str) -> tuple[str, bool]:
    """Normalize a tar member name to a relative posix path; the flag says it was absolute or escaped with `..`."""
    hostile = name.startswith("/")
    norm = posixpath.normpath("/" + name.lstrip("/"))  # anchoring at / folds every `..` into the root
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        hostile = True
    return norm.lstrip("/"), hostile


def printable_name(name: str) -> str:
    """Names come from tarfile with surrogate escapes for non-UTF-8 bytes; show those bytes as \\xNN."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Container:
    """A tar file or a directory holding an image; members by normalized name."""

    compression: str | None = None

    def __init__(self, path: Path, notes: Notes) -> None:
        self.path = path
        self.notes = notes

    def ref(self, name: str) -> BlobRef | None:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        return self.ref(name) is not None

    def read_json(self, name: str) -> Any:
        ref = self.ref(name)
        if ref is None:
            raise ScanError(f"{self.path}: {name} is missing")
        if ref.size > _MAX_JSON:
            raise ScanError(f"{self.path}: {name} is {ref.size} bytes, over the {_MAX_JSON} byte limit")
        data = self._read(name, ref)
        if len(data) < ref.size:
            raise ScanError(f"{self.path}: {name} is truncated")
        try:
            return json.loads(data)
        except ValueError:
            raise ScanError(f"{self.path}: {name} is not valid JSON") from None

    def _read(self, name: str, ref: BlobRef) -> bytes:
        with open(ref.file, "rb") as fh:
            fh.seek(ref.offset)
            return fh.read(ref.size)


class _DirContainer(Container):
    def ref(self, name: str) -> BlobRef | None:
        clean, _ = clean_member_name(name)
        target = (self.path / clean).resolve()
        root = self.path.resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
        return BlobRef(str(target), 0, target.stat().st_size)


class _TarContainer(Container):
    """One pass over the outer tar's headers (tarfile seeks over the data), keeping name -> (offset, size)."""

    def __init__(self, path: Path, notes: Notes) -> None:
        super().__init__(path, notes)
        self.members: dict[str, BlobRef] = {}
        self.links: dict[str, str] = {}
        self._index()

    def _index(self) -> None:
        file_size = self.path.stat().st_size
        try:
            tar = tarfile.open(self.path, "r:", tarinfo=CappedTarInfo)  # noqa: SIM115 - closed by `with tar` below
        except LimitExceeded as exc:
            raise ScanError(f"{self.path}: {exc}; not scanned") from None
        except (tarfile.TarError, EOFError, OSError):
            raise ScanError(f"{self.path}: {NOT_AN_IMAGE} (not a readable tar, gzip or zstd archive)") from None
        count = 0
        hostile: list[str] = []
        with tar:
            try:
                while (info := tar.next()) is not None:
                    tar.members.clear()  # type: ignore[attr-defined]  # we keep our own compact index
                    count += 1
                    if count > _MAX_OUTER_ENTRIES:
                        self.notes.skipped.append(_too_many_entries())
                        break
                    self._add(info, file_size, hostile)
            except LimitExceeded as exc:
                self.notes.skipped.append(f"outer archive: {exc} after {count} entries; rest ignored")
            except (tarfile.TarError, EOFError, OSError) as exc:
                if not self.members:
                    raise ScanError(f"{self.path}: {NOT_AN_IMAGE} (unreadable tar: {type(exc).__name__})") from None
                self.notes.skipped.append(
                    f"archive is truncated or corrupt after {count} entries; scanned what was readable"
                )
        self._warn_hostile(hostile)

    def _warn_hostile(self, hostile: list[str]) -> None:
        if hostile:
            self.notes.warnings.append(
                f"archive has {len(hostile)} absolute or `..` member names (normalized, nothing written), "
                f"e.g. {printable_name(hostile[0])}"
            )

    def _add(self, info: tarfile.TarInfo, file_size: int, hostile: list[str]) -> None:
        name, bad = clean_member_name(info.name)
        if bad:
            hostile.append(info.name)
        if info.issym() or info.islnk():
            # docker save dedupes identical layers as symlinks (../<id>/layer.tar); hardlinks name the target.
            base = posixpath.dirname(name) if info.issym() else ""
            self.links[name] = clean_member_name(posixpath.join(base, info.linkname))[0]
        elif info.isfile() and not info.issparse():
            self.members[name] = BlobRef(str(self.path), info.offset_data, info.size)
            if info.offset_data + info.size > file_size:
                self.notes.warnings.append(f"member {printable_name(name)} is truncated")

    def ref(self, name: str) -> BlobRef | None:
        clean, _ = clean_member_name(name)
        for _ in range(8):  # bounded: a link cycle ends as "missing"
            if clean in self.members:
                return self.members[clean]
            if clean not in self.links:
                return None
            clean = self.links[clean]
        return None


class _StreamTarContainer(_TarContainer):
    """A gzip/zstd-compressed outer tar, indexed in one decompressing pass (bounded by the outer limits).

    Members are numbered in stream order; JSON members (first byte `{` or `[`, at most `_MAX_JSON` bytes) are
    kept in memory up to `_MAX_KEPT_TOTAL`, since the manifest may come after the configs and layers it names.
    """

    def __init__(self, path: Path, notes: Notes, compression: str, limits: Limits) -> None:
        self.compression = compression
        self.limits = limits
        self.contents: dict[int, bytes] = {}
        self._kept = 0
        super().__init__(path, notes)

    def _index(self) -> None:
        count = 0
        hostile: list[str] = []
        with open(self.path, "rb") as fh:
            tar = open_outer_stream(fh, self.compression or "", self.limits)
            try:
                for count, member in enumerate(tar.members(), start=1):
                    if count > _MAX_OUTER_ENTRIES:
                        self.notes.skipped.append(_too_many_entries())
                        break
                    self._add_member(tar, member, count, hostile)
            except LimitExceeded as exc:  # a bomb: nothing after this point could be read either
                raise ScanError(f"{self.path}: {exc}; not scanned") from None
            except (TarFormatError, OSError, zlib.error, zstandard.ZstdError) as exc:
                if not self.members:
                    what = f"unreadable {self.compression}-compressed tar: {type(exc).__name__}"
                    raise ScanError(f"{self.path}: {NOT_AN_IMAGE} ({what})") from None
                self.notes.skipped.append(f"archive is truncated or corrupt after {count} entries ({exc}); "
                                          "rest ignored")  # fmt: skip
        self._warn_hostile(hostile)

    def _add_member(self, tar: TarStream, member: Member, number: int, hostile: list[str]) -> None:
        name, bad = clean_member_name(member.name)
        if bad:
            hostile.append(member.name)
        if member.issym() or member.islnk():
            base = posixpath.dirname(name) if member.issym() else ""
            self.links[name] = clean_member_name(posixpath.join(base, member.linkname))[0]
            return
        if not member.isreg() or member.sparse:
            return
        self.members[name] = BlobRef(str(self.path), 0, member.size, self.compression, number)
        if member.size > _MAX_JSON:
            return
        head = tar.read(min(member.size, 64))
        if head.lstrip()[:1] not in (b"{", b"["):
            return  # a layer or other blob: TarStream skips the rest
        if self._kept + member.size > _MAX_KEPT_TOTAL:
            self.notes.warnings.append(f"{printable_name(name)}: over {_MAX_KEPT_TOTAL} bytes of JSON; not read")
            return
        self.contents[number] = head + tar.read(member.size - len(head))
        self._kept += member.size

    def _read(self, name: str, ref: BlobRef) -> bytes:
        if ref.member not in self.contents:
            raise ScanError(f"{self.path}: {name} is not JSON")
        return self.contents[ref.member]


def open_outer_stream(fh: io.BufferedIOBase | io.RawIOBase, compression: str, limits: Limits) -> TarStream:
    """The decompressed outer tar of a compressed archive, read forward-only under the outer limits."""
    return TarStream(io.BufferedReader(Inflate.for_outer(fh, compression, limits), 1 << 20))


def open_container(path: Path, notes: Notes, limits: Limits | None = None) -> Container:
    if path.is_dir():
        return _DirContainer(path, notes)
    if not path.is_file():
        raise ScanError(f"{path}: no such file or directory")
    with open(path, "rb") as fh:
        compression = compression_of(fh.read(4))
    if compression is not None:
        return _StreamTarContainer(path, notes, compression, limits or Limits())
    return _TarContainer(path, notes)
