"""Layers of a gzip/zstd-compressed outer archive: one sequential decompressing pass scans each blob as it comes."""

from __future__ import annotations

import dataclasses
import io
import zlib
from collections.abc import Iterator, Sequence

import zstandard

from kinko.scan.interface import Detector
from kinko.scan.sources.image.archive import open_outer_stream
from kinko.scan.sources.image.layers import LayerJob, LayerScan, Limits, scan_layer_stream
from kinko.scan.sources.image.limits import LimitExceeded
from kinko.scan.sources.image.tarstream import TarFormatError, TarStream

_BROKEN = (TarFormatError, LimitExceeded, OSError, zlib.error, zstandard.ZstdError)


class _MemberReader(io.RawIOBase):
    """The current outer member's data as a raw stream: reads stop at the member's end, never past it."""

    def __init__(self, tar: TarStream) -> None:
        self.tar = tar

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.tar.read(len(b))
        b[: len(data)] = data
        return len(data)


def _retarget(scan: LayerScan, job: LayerJob) -> LayerScan:
    """The same blob listed as another layer (docker save dedupes identical layers): its scan, relabelled."""
    hits = []
    for path, finding in scan.hits:
        loc = dataclasses.replace(finding.location, layer_index=job.index, layer_diff_id=job.diff_id,
                                  created_by=job.created_by)  # fmt: skip
        hits.append((path, dataclasses.replace(finding, location=loc)))
    prefix = f"layer {scan.index}:"

    def relabel(messages: list[str]) -> list[str]:
        return [f"layer {job.index}:{m[len(prefix):]}" if m.startswith(prefix) else m for m in messages]

    return dataclasses.replace(scan, index=job.index, hits=hits, entries=list(scan.entries),
                               whiteouts=list(scan.whiteouts), opaque_dirs=list(scan.opaque_dirs),
                               warnings=relabel(scan.warnings), skipped=relabel(scan.skipped),
                               bytes_scanned=0)  # fmt: skip


def scan_stream_layers(
    path: str, compression: str, jobs: Sequence[LayerJob], detector: Detector, limits: Limits
) -> Iterator[LayerScan]:
    """Yield each job's scan in archive order; the caller may stop early (the total-bytes budget).

    Nothing is written to disk and no layer is held in memory: each blob streams through the layer reader
    straight out of the decompressing outer stream. If the outer stream breaks, the layers not reached
    yet are reported as not scanned.
    """
    by_member: dict[int, list[LayerJob]] = {}
    for job in jobs:
        by_member.setdefault(job.blob.member, []).append(job)
    done: set[int] = set()
    try:
        with open(path, "rb") as fh:
            tar = open_outer_stream(fh, compression, limits)
            for number, _member in enumerate(tar.members(), start=1):
                wanted = by_member.get(number)
                if not wanted:
                    continue
                first = scan_layer_stream(wanted[0], detector, _MemberReader(tar))
                for job in wanted:
                    done.add(job.index)
                    yield first if job is wanted[0] else _retarget(first, job)
                if len(done) == len(jobs):
                    return  # every layer seen: no need to decompress the rest
    except _BROKEN as exc:
        why = str(exc) if isinstance(exc, LimitExceeded) else f"outer archive truncated or corrupt ({exc})"
        for job in jobs:
            if job.index not in done:
                done.add(job.index)
                yield LayerScan(job.index, skipped=[f"layer {job.index}: not scanned, {why}"])
    for job in jobs:  # listed in the manifest but not met in the stream (the index pass saw it: a race)
        if job.index not in done:
            yield LayerScan(job.index, skipped=[f"layer {job.index}: not found in the outer archive; not scanned"])
