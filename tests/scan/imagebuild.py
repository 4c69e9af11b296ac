"""Builds container image archives in code (docker save legacy / Docker 25+, OCI layout dir or tar) for tests.

Formats follow moby's `docker save` layout (manifest.json + <config>.json + <id>/layer.tar + repositories;
Docker 25+ adds index.json + oci-layout + blobs/sha256/) and the OCI image-spec (image-layout, manifest,
config, layer whiteouts `.wh.<name>` and `.wh..wh..opq`).

A layer is a dict path -> value:
  bytes      a regular file with that content
  None       a whiteout: `.wh.<basename>` in the same directory (deletes the path from lower layers)
  OPAQUE     key is a directory; writes `<dir>/.wh..wh..opq` (hides everything lower layers put there)
  Symlink / Hardlink(target)  a link entry (never followed by the scanner)
  tarfile.TarInfo  written as-is (data from `.size` zero bytes is not added; use for hostile headers)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import zstandard


class _Opaque:
    def __repr__(self) -> str:
        return "OPAQUE"


OPAQUE = _Opaque()


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Hardlink:
    target: str


@dataclass(frozen=True)
class H:
    """A history entry. `empty` = no layer (ENV, CMD, LABEL, ...)."""

    created_by: str
    empty: bool = False


LayerSpec = Mapping[str, "bytes | _Opaque | Symlink | Hardlink | tarfile.TarInfo | None"]
HistorySpec = Sequence["str | H"]
Compression = Literal["none", "gzip", "zstd"]

_EMPTY_PREFIXES = ("ENV ", "CMD ", "LABEL ", "ENTRYPOINT ", "EXPOSE ", "WORKDIR ", "USER ", "ARG ")
_MTIME = 1_700_000_000


def _history_entry(item: str | H) -> H:
    if isinstance(item, H):
        return item
    # Plain strings: instructions that never make a layer are marked empty_layer, like the real builder.
    return H(item, empty=item.startswith(_EMPTY_PREFIXES))


def layer_tar(layer: LayerSpec) -> bytes:
    """The uncompressed layer tar for one layer spec (entries in dict order)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value in layer.items():
            _add_entry(tar, name, value)
    return buf.getvalue()


def _add_entry(tar: tarfile.TarFile, name: str, value: object) -> None:
    if isinstance(value, tarfile.TarInfo):
        tar.addfile(value)
        return
    if value is None:
        parent, base = posixpath.split(name.rstrip("/"))
        info = tarfile.TarInfo(posixpath.join(parent, ".wh." + base))
        info.mtime = _MTIME
        tar.addfile(info, io.BytesIO(b""))
        return
    if isinstance(value, _Opaque):
        info = tarfile.TarInfo(posixpath.join(name.rstrip("/"), ".wh..wh..opq"))
        info.mtime = _MTIME
        tar.addfile(info, io.BytesIO(b""))
        return
    info = tarfile.TarInfo(name)
    info.mtime = _MTIME
    if isinstance(value, Symlink | Hardlink):
        info.type = tarfile.SYMTYPE if isinstance(value, Symlink) else tarfile.LNKTYPE
        info.linkname = value.target
        tar.addfile(info)
        return
    assert isinstance(value, bytes), f"unsupported layer value for {name}"
    info.size = len(value)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(value))


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=1).compress(data)
    return data


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_config(
    diff_ids: Sequence[str],
    history: HistorySpec,
    *,
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    labels: Mapping[str, str] | None = None,
    cmd: Sequence[str] | None = ("/bin/sh",),
    entrypoint: Sequence[str] | None = None,
) -> bytes:
    """An OCI/docker image config JSON. Checks that non-empty history entries match the layer count."""
    entries = [_history_entry(h) for h in history]
    non_empty = sum(1 for h in entries if not h.empty)
    if history and non_empty != len(diff_ids):
        raise ValueError(f"history has {non_empty} layer entries for {len(diff_ids)} layers")
    hist: list[dict[str, object]] = []
    for h in entries:
        item: dict[str, object] = {"created": "2026-01-01T00:00:00Z", "created_by": h.created_by}
        if h.empty:
            item["empty_layer"] = True
        hist.append(item)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": list(env),
            "Cmd": list(cmd) if cmd is not None else None,
            "Entrypoint": list(entrypoint) if entrypoint is not None else None,
            "Labels": dict(labels) if labels is not None else None,
        },
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": hist,
    }
    return json.dumps(config, indent=2).encode()


class _TarWriter:
    """Writes members into an outer (uncompressed) tar file or an OCI layout directory."""

    def __init__(self, out: Path, *, as_dir: bool) -> None:
        self.out = out
        self.as_dir = as_dir
        self.tar: tarfile.TarFile | None = None
        if as_dir:
            out.mkdir(parents=True, exist_ok=True)
        else:
            self.tar = tarfile.open(out, "w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed in close()

    def add(self, name: str, data: bytes) -> None:
        if self.tar is None:
            target = self.out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            return
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = _MTIME
        self.tar.addfile(info, io.BytesIO(data))

    def add_file(self, name: str, path: Path) -> None:
        """Add a member from a file on disk, streaming (used by the bench for big layers)."""
        if self.tar is None:
            target = self.out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            return
        info = self.tar.gettarinfo(str(path), arcname=name)
        info.mtime = _MTIME
        with path.open("rb") as fh:
            self.tar.addfile(info, fh)

    def add_symlink(self, name: str, target: str) -> None:
        assert self.tar is not None
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        self.tar.addfile(info)

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


Blob = bytes | Path


def _blob_bytes_len(blob: Blob) -> int:
    return blob.stat().st_size if isinstance(blob, Path) else len(blob)


def _blob_digest(blob: Blob) -> str:
    if isinstance(blob, bytes):
        return sha256(blob)
    h = hashlib.sha256()
    with blob.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _add_blob(writer: _TarWriter, name: str, blob: Blob) -> None:
    if isinstance(blob, Path):
        writer.add_file(name, blob)
    else:
        writer.add(name, blob)


def assemble_docker_archive(
    out: Path,
    layer_blobs: Sequence[Blob],
    config: bytes,
    *,
    form: Literal["legacy", "oci25"] = "legacy",
    tag: str = "kinko-test:latest",
    dedupe_symlink: bool = False,
) -> Path:
    """Write a `docker save` tar from uncompressed layer tars (bytes or files) and a config JSON."""
    writer = _TarWriter(out, as_dir=False)
    repo, _, ref = tag.partition(":")
    config_hex = hashlib.sha256(config).hexdigest()
    layer_paths: list[str] = []
    if form == "legacy":
        writer.add(f"{config_hex}.json", config)
        parent = ""
        seen: dict[str, str] = {}
        for blob in layer_blobs:
            digest = _blob_digest(blob)
            layer_id = hashlib.sha256((parent + digest).encode()).hexdigest()
            name = f"{layer_id}/layer.tar"
            writer.add(f"{layer_id}/VERSION", b"1.0")
            writer.add(f"{layer_id}/json", json.dumps({"id": layer_id, "parent": parent}).encode())
            if dedupe_symlink and digest in seen:
                # docker save writes identical layers once and links the rest (../<id>/layer.tar).
                writer.add_symlink(name, f"../{seen[digest]}")
            else:
                _add_blob(writer, name, blob)
                seen[digest] = name
            layer_paths.append(name)
            parent = layer_id
        manifest = [{"Config": f"{config_hex}.json", "RepoTags": [tag], "Layers": layer_paths}]
        writer.add("manifest.json", json.dumps(manifest).encode())
        writer.add("repositories", json.dumps({repo: {ref: parent}}).encode())
        writer.close()
        return out
    # Docker 25+: an OCI layout (index.json, oci-layout, blobs) plus the legacy manifest.json pointing at blobs.
    descriptors = []
    for blob in layer_blobs:
        digest = _blob_digest(blob)
        name = "blobs/sha256/" + digest.split(":", 1)[1]
        if name not in layer_paths:
            _add_blob(writer, name, blob)
        layer_paths.append(name)
        descriptors.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": _blob_bytes_len(blob)}
        )
    writer.add(f"blobs/sha256/{config_hex}", config)
    manifest_blob = _oci_manifest(config, descriptors)
    writer.add("blobs/sha256/" + hashlib.sha256(manifest_blob).hexdigest(), manifest_blob)
    index = _oci_index(
        manifest_blob, annotations={"io.containerd.image.name": tag, "org.opencontainers.image.ref.name": ref}
    )
    writer.add("index.json", index)
    writer.add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    manifest = [{"Config": f"blobs/sha256/{config_hex}", "RepoTags": [tag], "Layers": layer_paths}]
    writer.add("manifest.json", json.dumps(manifest).encode())
    writer.close()
    return out


def _oci_manifest(config: bytes, layers: list[dict[str, object]]) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config),
            "size": len(config),
        },
        "layers": layers,
    }
    return json.dumps(manifest).encode()


def _oci_index(manifest_blob: bytes, *, annotations: Mapping[str, str]) -> bytes:
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(manifest_blob),
                "size": len(manifest_blob),
                "platform": {"os": "linux", "architecture": "amd64"},
                "annotations": dict(annotations),
            }
        ],
    }
    return json.dumps(index).encode()


_LAYER_MEDIA = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def build_docker_archive(
    out: Path,
    layers: Sequence[LayerSpec],
    history: HistorySpec,
    *,
    form: Literal["legacy", "oci25"] = "legacy",
    config_env: Sequence[str] = ("PATH=/usr/local/bin:/usr/bin:/bin",),
    labels: Mapping[str, str] | None = None,
    cmd: Sequence[str] | None = ("/bin/sh",),
    entrypoint: Sequence[str] | None = None,
    tag: str = "kinko-test:latest",
) -> Path:
    """A `docker save` archive (legacy layout, or Docker 25+ OCI form) of the given layers."""
    tars = [layer_tar(layer) for layer in layers]
    config = make_config(
        [sha256(t) for t in tars], history, env=config_env, labels=labels, cmd=cmd, entrypoint=entrypoint
    )
    return assemble_docker_archive(out, tars, config, form=form, tag=tag)


def build_oci_layout(
    out: Path,
    layers: Sequence[LayerSpec],
    history: HistorySpec,
    *,
    compression: Compression = "gzip",
    as_tar: bool = True,
    config_env: Sequence[str] = ("PATH=/usr/local/bin:/usr/bin:/bin",),
    labels: Mapping[str, str] | None = None,
    cmd: Sequence[str] | None = ("/bin/sh",),
    entrypoint: Sequence[str] | None = None,
    nested_index: bool = False,
) -> Path:
    """A plain OCI image layout (a directory, or a tar of it like `podman save --format oci-archive`)."""
    tars = [layer_tar(layer) for layer in layers]
    config = make_config(
        [sha256(t) for t in tars], history, env=config_env, labels=labels, cmd=cmd, entrypoint=entrypoint
    )
    writer = _TarWriter(out, as_dir=not as_tar)
    descriptors = []
    for t in tars:
        blob = compress(t, compression)
        digest = sha256(blob)
        writer.add("blobs/sha256/" + digest.split(":", 1)[1], blob)
        descriptors.append({"mediaType": _LAYER_MEDIA[compression], "digest": digest, "size": len(blob)})
    writer.add("blobs/sha256/" + hashlib.sha256(config).hexdigest(), config)
    manifest_blob = _oci_manifest(config, descriptors)
    writer.add("blobs/sha256/" + hashlib.sha256(manifest_blob).hexdigest(), manifest_blob)
    index = _oci_index(manifest_blob, annotations={"org.opencontainers.image.ref.name": "latest"})
    if nested_index:
        # A multi-platform image: index.json -> image index blob -> manifest.
        writer.add("blobs/sha256/" + hashlib.sha256(index).hexdigest(), index)
        outer = json.loads(index)
        outer["manifests"][0]["mediaType"] = "application/vnd.oci.image.index.v1+json"
        outer["manifests"][0]["digest"] = sha256(index)
        outer["manifests"][0]["size"] = len(index)
        index = json.dumps(outer).encode()
    writer.add("index.json", index)
    writer.add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    writer.close()
    return out


def raw_tar(members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """An uncompressed tar of hand-made headers (for hostile-input tests)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()
