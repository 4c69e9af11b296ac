"""Finds an image inside an archive: detects its format from the contents and resolves config and layer blobs.

Reads what `docker save` writes (legacy manifest.json + <id>/layer.tar, and Docker 25+'s OCI form), plain OCI
image layouts (directory or tar, e.g. `podman save --format oci-archive`) and podman/buildah docker-archives.
The format is detected from the contents, never the file name. The archive's members are indexed by `members`
(nothing is extracted; a compressed outer archive's layers are read in a second pass, see `outer_stream`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinko.errors import ScanError
from kinko.scan.sources.image.limits import Limits
from kinko.scan.sources.image.members import (
    NOT_AN_IMAGE,
    BlobRef,
    Container,
    Notes,
    clean_member_name,
    open_container,
    open_outer_stream,
    printable_name,
)

# The member index's public names (defined in `members`) stay importable from here.
__all__ = [
    "NOT_AN_IMAGE",
    "BlobRef",
    "ImageLayout",
    "LayerRef",
    "Notes",
    "clean_member_name",
    "cpu_workers",
    "layer_history",
    "load_image",
    "open_container",
    "open_outer_stream",
    "printable_name",
]


_INDEX_MEDIA = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


@dataclass(frozen=True)
class LayerRef:
    index: int
    name: str  # member name or digest, for messages
    blob: BlobRef | None  # None = missing from the archive
    diff_id: str | None
    created_by: str | None


@dataclass
class ImageLayout:
    format: str
    config: dict[str, Any]
    layers: list[LayerRef]
    notes: Notes = field(default_factory=Notes)
    compression: str | None = None  # of the outer archive: its layers must be read in one sequential pass
    #: why the image config could not be read (its Env, Labels and history are then not scanned); None: read
    config_error: str | None = None


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


def _from_docker_manifest(box: Container, fmt: str) -> ImageLayout:
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


def _from_oci_index(box: Container) -> ImageLayout:
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


def _layout(box: Container, fmt: str, config_name: str, names: list[str]) -> ImageLayout:
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


def _layer_refs(box: Container, names: list[str], config: dict[str, Any]) -> list[LayerRef]:
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
