"""Finds an image inside an archive: indexes the outer tar (or OCI directory) and resolves config and layer blobs.

Reads what `docker save` writes (legacy manifest.json + <id>/layer.tar, and Docker 25+'s OCI form), plain OCI
image layouts (directory or tar, e.g. `podman save --format oci-archive`) and podman/buildah docker-archives.
The format is detected from the contents, never the file name. Nothing is extracted: layers are located as
(file, offset, size) so any process can seek to them and stream. A gzip/zstd-compressed outer archive
(`docker save | gzip`, which `docker load` accepts) cannot seek: one decompressing pass indexes it and keeps
only its small JSON members; the layers are read in a second pass (see `outer_stream`).
"""

from __future__ import annotations

import io
import json
import os
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
_INDEX_MEDIA = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


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


@dataclass(frozen=True)
class LayerRef:
    index: int
    name: str  # member name or digest, for messages
    blob: BlobRef | None  # None = missing from the archive
    diff_id: str | None
    created_by: str | None


@dataclass
class Notes:
    """What reading an archive had to say: plain warnings, and the parts it could not read (`skipped`)."""

    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass
class ImageLayout:
    format: str
    config: dict[str, Any]
    layers: list[LayerRef]
    notes: Notes = field(default_factory=Notes)
    compression: str | None = None  # of the outer archive: its layers must be read in one sequential pass
    #: why the image config could not be read (its Env, Labels and history are then not scanned); None: read
    config_error: str | None = None


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


class _Container:
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


class _DirContainer(_Container):
    def ref(self, name: str) -> BlobRef | None:
        clean, _ = clean_member_name(name)
        target = (self.path / clean).resolve()
        root = self.path.resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
        return BlobRef(str(target), 0, target.stat().st_size)


class _TarContainer(_Container):
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


def open_container(path: Path, notes: Notes, limits: Limits | None = None) -> _Container:
    if path.is_dir():
        return _DirContainer(path, notes)
    if not path.is_file():
        raise ScanError(f"{path}: no such file or directory")
    with open(path, "rb") as fh:
        compression = compression_of(fh.read(4))
    if compression is not None:
        return _StreamTarContainer(path, notes, compression, limits or Limits())
    return _TarContainer(path, notes)


def load_image(path: Path, limits: Limits | None = None) -> ImageLayout:
    """Detect the format from the contents and resolve the config and every layer's blob."""
    box = open_container(path, Notes(), limits)
    if box.has("manifest.json"):
        layout = _from_docker_manifest(box, "docker-archive")
    elif box.has("index.json"):
        layout = _from_oci_index(box)
    else:
        raise ScanError(f"{path}: {NOT_AN_IMAGE} (no manifest.json or index.json)")
    layout.compression = box.compression
    return layout


def _from_docker_manifest(box: _Container, fmt: str) -> ImageLayout:
    manifest = box.read_json("manifest.json")
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise ScanError(f"{box.path}: {NOT_AN_IMAGE} (manifest.json is not a list of images)")
    if len(manifest) > 1:
        box.notes.skipped.append(f"archive holds {len(manifest)} images; scanned the first only")
    entry = manifest[0]
    config_name = entry.get("Config")
    layer_names = entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise ScanError(f"{box.path}: {NOT_AN_IMAGE} (manifest.json lacks Config/Layers)")
    if box.has("index.json") and box.has("oci-layout"):
        fmt = "docker-archive (Docker 25+ OCI form)"
    names = [str(n) for n in layer_names]
    return _layout(box, fmt, config_name, names)


def _blob_name(digest: object) -> str:
    if not isinstance(digest, str) or ":" not in digest:
        raise ScanError(f"bad digest in OCI descriptor: {str(digest)[:80]!r}")
    alg, _, hexpart = digest.partition(":")
    return f"blobs/{alg}/{hexpart}"


def _from_oci_index(box: _Container) -> ImageLayout:
    if not box.has("oci-layout"):
        box.notes.warnings.append("oci-layout file is missing; reading index.json anyway")
    doc = box.read_json("index.json")
    for _ in range(4):  # index -> (nested index ->) manifest
        desc = _pick_manifest(doc, box.path)
        doc = box.read_json(_blob_name(desc.get("digest")))
        if desc.get("mediaType") not in _INDEX_MEDIA and "manifests" not in doc:
            break
    if not isinstance(doc, dict) or "layers" not in doc:
        raise ScanError(f"{box.path}: {NOT_AN_IMAGE} (no image manifest found from index.json)")
    config_name = _blob_name(doc.get("config", {}).get("digest"))
    names = [_blob_name(layer.get("digest")) for layer in doc["layers"] if isinstance(layer, dict)]
    return _layout(box, "oci-layout", config_name, names)


def _pick_manifest(index: Any, path: Path) -> dict[str, Any]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise ScanError(f"{path}: {NOT_AN_IMAGE} (index lists no manifests)")
    images = [
        m
        for m in manifests
        if isinstance(m, dict)
        and (m.get("annotations") or {}).get("vnd.docker.reference.type") != "attestation-manifest"
    ]
    if not images:
        raise ScanError(f"{path}: {NOT_AN_IMAGE} (index lists only attestations)")
    for m in images:  # prefer linux/amd64 in a multi-platform index, else the first image
        plat = m.get("platform") or {}
        if plat.get("os") == "linux" and plat.get("architecture") == "amd64":
            return m
    first: dict[str, Any] = images[0]
    return first


def _layout(box: _Container, fmt: str, config_name: str, names: list[str]) -> ImageLayout:
    """The layout once the manifest named the config and the layers; an unreadable config is recorded, not fatal."""
    config: dict[str, Any] = {}
    error = None
    try:
        read = box.read_json(config_name)
        config = read if isinstance(read, dict) else {}
    except ScanError as exc:
        error = f"image config unreadable ({exc.message}); layers scanned without history"
    layers = _layer_refs(box, names, config)
    return ImageLayout(fmt, config, layers, box.notes, config_error=error)


def _layer_refs(box: _Container, names: list[str], config: dict[str, Any]) -> list[LayerRef]:
    rootfs = config.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    diff_ids = diff_ids if isinstance(diff_ids, list) else []
    created = layer_history(config)
    refs = []
    for i, name in enumerate(names):
        blob = box.ref(name)
        if blob is None:
            box.notes.skipped.append(f"layer {i} blob {printable_name(name)} is missing from the archive; not scanned")
        diff_id = str(diff_ids[i]) if i < len(diff_ids) else None
        refs.append(LayerRef(i, printable_name(name), blob, diff_id, created[i] if i < len(created) else None))
    return refs


def layer_history(config: dict[str, Any]) -> list[str | None]:
    """created_by of each layer-producing history entry, in layer order (empty_layer entries skipped)."""
    history = config.get("history")
    if not isinstance(history, list):
        return []
    out: list[str | None] = []
    for h in history:
        if isinstance(h, dict) and not h.get("empty_layer", False):
            cb = h.get("created_by")
            out.append(str(cb) if cb is not None else None)
    return out


def cpu_workers(requested: int | None) -> int:
    if requested is not None:
        return max(1, requested)
    return max(1, min(2, os.cpu_count() or 1))
