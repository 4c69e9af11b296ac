"""The container image source: scans the config and every layer (base included), resolving whiteouts per finding.

Layers are scanned in parallel worker processes (each opens the archive and seeks to its blob). Once every
layer's entries and whiteouts are known, each finding gets its status: PRESENT in the final image, or DELETED
by a later layer (whiteout, opaque dir, or the path replaced) but still recoverable from the archive.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
import posixpath
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from kinko.scan.findings import matches_to_findings
from kinko.scan.interface import Detector, FileStatus, Finding, Location, ScanResult, ScanWarning, Source
from kinko.scan.sources.gitwhere import GitFiles, merged, resolve_hits, unresolved
from kinko.scan.sources.image.archive import ImageLayout, cpu_workers, load_image
from kinko.scan.sources.image.layers import LayerJob, LayerScan, Limits, scan_layer
from kinko.scan.sources.image.outer_stream import scan_stream_layers

if TYPE_CHECKING:  # the detectors are imported only when a scan needs them
    from kinko.scan.detect import DetectorSettings

_worker_detector: Detector | None = None
#: What a layer worker starts from: a pickled detector, or the settings of a `default_detector` to reuse.
WorkerPayload: TypeAlias = "bytes | DetectorSettings"
#: Below this many bytes outside the biggest layer, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 16 << 20


def _default_detector(settings: DetectorSettings) -> Detector:
    from kinko.scan.detect import default_detector

    det: Detector = default_detector(*settings)
    return det


def _init_worker(payload: WorkerPayload) -> None:
    """Set the detector once per worker process: the caller's (pickled) one, or the default one built with the
    caller's settings (under fork, the very object the parent built: inherited, not rebuilt)."""
    global _worker_detector
    _worker_detector = pickle.loads(payload) if isinstance(payload, bytes) else _default_detector(payload)  # noqa: S301


def _run_job(job: LayerJob) -> LayerScan:
    assert _worker_detector is not None
    return scan_layer(job, _worker_detector)


class ImageSource(Source):
    """A `docker save` archive (legacy or Docker 25+), an OCI layout (directory or tar), or a podman archive."""

    def __init__(
        self,
        path: str | Path,
        *,
        workers: int | None = None,
        scan_config: bool = True,
        limits: Limits | None = None,
    ) -> None:
        self.path = Path(path)
        self.workers = cpu_workers(workers)
        self._workers_requested = workers is not None
        self.scan_config = scan_config
        self.limits = limits or Limits()

    def scan(self, detector: Detector, result: ScanResult) -> Iterator[Finding]:
        artifact = str(self.path)
        layout = load_image(self.path, self.limits)  # raises ScanError when this is not an image at all
        result.artifacts.append(artifact)
        _record(result, artifact, layout.notes.warnings, layout.notes.skipped)
        self._config_error(layout, result)
        if self.scan_config:
            yield from self._scan_config(detector, layout, result)
        scans = self._scan_layers(detector, layout, result)
        if any(ref.blob is None for ref in layout.layers):
            result.warnings.append(
                ScanWarning(artifact, "a layer is missing: deleted/present status may be wrong for lower layers")
            )
        _git_across_layers(scans)
        findings = _resolve_status(scans, len(layout.layers))
        findings.sort(key=lambda f: (f.location.layer_index or 0, f.location.path, f.location.line or 0, f.rule_id))
        yield from findings

    # -- config -------------------------------------------------------------------------------------------

    def _config_error(self, layout: ImageLayout, result: ScanResult) -> None:
        """An unreadable config: skipped content when this scan covers the config (`scan_config`), else a warning."""
        if layout.config_error is None:
            return
        if self.scan_config:
            result.skip(str(self.path), f"{layout.config_error}; its Env, Labels and Cmd were not scanned")
        else:
            result.warnings.append(ScanWarning(str(self.path), layout.config_error))

    def _scan_config(self, detector: Detector, layout: ImageLayout, result: ScanResult) -> Iterator[Finding]:
        artifact = str(self.path)
        for pseudo, text, layer in _config_texts(layout):
            data = text.encode("utf-8", "surrogateescape")
            result.bytes_scanned += len(data)
            matches = detector.scan(data, path=pseudo)
            if not matches:
                continue

            def at(line: int, pseudo: str = pseudo, layer: int | None = layer) -> Location:
                ref = layout.layers[layer] if layer is not None and layer < len(layout.layers) else None
                return Location(
                    artifact=artifact,
                    path=pseudo,
                    line=line,
                    layer_index=layer,
                    layer_diff_id=ref.diff_id if ref else None,
                    created_by=ref.created_by if ref else None,
                )

            yield from matches_to_findings(detector, matches, at)

    # -- layers -------------------------------------------------------------------------------------------

    def _jobs(self, layout: ImageLayout) -> list[LayerJob]:
        return [
            LayerJob(str(self.path), ref.index, ref.blob, ref.diff_id, ref.created_by, self.limits)
            for ref in layout.layers
            if ref.blob is not None
        ]

    def _scan_layers(self, detector: Detector, layout: ImageLayout, result: ScanResult) -> list[LayerScan]:
        jobs = self._jobs(layout)
        # A gzip/zstd outer archive cannot seek: its layers are scanned in one sequential pass, in-process.
        payload = _worker_payload(detector) if layout.compression is None and self._worth_a_pool(jobs) else False
        if layout.compression is not None:
            scans = self._sequential(jobs, detector, result, layout.compression)
        elif not isinstance(payload, bool):
            scans = self._parallel(jobs, payload, result)
        else:
            scans = self._serial(jobs, detector, result)
        for s in sorted(scans, key=lambda s: s.index):
            _record(result, str(self.path), s.warnings, s.skipped)
        return scans

    def _worth_a_pool(self, jobs: list[LayerJob]) -> bool:
        """Worker processes pay off only when layers besides the biggest hold enough bytes to overlap with it.

        An explicit `workers=` is honoured as asked; the automatic choice skips the pool for small images.
        """
        if self.workers < 2 or len(jobs) < 2:
            return False
        if self._workers_requested:
            return True
        sizes = sorted(j.blob.size for j in jobs)
        return sum(sizes[:-1]) >= PARALLEL_MIN_BYTES

    def _budget_left(self, done_bytes: int, skipped: list[LayerJob], result: ScanResult) -> bool:
        """False (and a warning naming the layers left out) once the total-bytes cap is used up."""
        if done_bytes <= self.limits.max_total_bytes:
            return True
        names = ", ".join(str(j.index) for j in sorted(skipped, key=lambda j: j.index))
        result.skip(
            str(self.path),
            f"total scanned bytes over {self.limits.max_total_bytes} (bomb limit, Limits.max_total_bytes); "
            f"layers not scanned: {names}",
        )
        return False

    def _serial(self, jobs: list[LayerJob], detector: Detector, result: ScanResult) -> list[LayerScan]:
        scans: list[LayerScan] = []
        for n, job in enumerate(jobs):
            if not self._budget_left(sum(s.bytes_scanned for s in scans), jobs[n:], result):
                break
            scans.append(scan_layer(job, detector))
            result.bytes_scanned += scans[-1].bytes_scanned
        return scans

    def _sequential(self, jobs: list[LayerJob], detector: Detector, result: ScanResult, kind: str) -> list[LayerScan]:
        scans: list[LayerScan] = []
        for scan in scan_stream_layers(str(self.path), kind, jobs, detector, self.limits):
            scans.append(scan)
            result.bytes_scanned += scan.bytes_scanned
            scanned = {s.index for s in scans}
            left = [j for j in jobs if j.index not in scanned]
            if left and not self._budget_left(sum(s.bytes_scanned for s in scans), left, result):
                break
        return scans

    def _parallel(self, jobs: list[LayerJob], payload: WorkerPayload, result: ScanResult) -> list[LayerScan]:
        """At most `workers` layers in flight so the total-bytes cap can stop the rest."""
        scans: list[LayerScan] = []
        pending: dict[Future[LayerScan], LayerJob] = {}
        # Biggest layers first (popped from the end): two workers finish together instead of one idling.
        todo = sorted(jobs, key=lambda j: j.blob.size)
        done_bytes = 0
        with ProcessPoolExecutor(self.workers, initializer=_init_worker, initargs=(payload,)) as pool:
            while todo or pending:
                while todo and len(pending) < self.workers:
                    if not self._budget_left(done_bytes, todo, result):
                        todo.clear()
                        break
                    job = todo.pop()
                    try:
                        pending[pool.submit(_run_job, job)] = job
                    except BrokenProcessPool:  # an earlier worker died; the pool takes no more work
                        scans += [_failed(j, "worker pool broken") for j in [job, *todo]]
                        todo.clear()
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = pending.pop(fut)
                    try:
                        scan = fut.result()
                    except Exception as exc:  # a worker died (OOM kill, crash): report it, keep the rest
                        scan = _failed(job, type(exc).__name__)
                    done_bytes += scan.bytes_scanned
                    result.bytes_scanned += scan.bytes_scanned
                    scans.append(scan)
        return scans


def _failed(job: LayerJob, why: str) -> LayerScan:
    return LayerScan(job.index, skipped=[f"layer {job.index}: not scanned, worker failed ({why})"])


def _record(result: ScanResult, artifact: str, warnings: list[str], skipped: list[str]) -> None:
    result.warnings.extend(ScanWarning(artifact, w) for w in warnings)
    for message in skipped:
        result.skip(artifact, message)


def _worker_payload(detector: Detector) -> WorkerPayload | bool:
    """Settings: workers reuse the default detector built with them (inherited under fork); bytes: the pickled
    detector; False: scan in-process.

    A pickled HyperscanDetector carries its compiled database, so no worker compiles the rules again.
    """
    from kinko.scan.detect import built_with

    # Only the detector the caller actually passed counts, whatever settings built it; asking builds nothing.
    settings = built_with(detector)
    if settings is not None and multiprocessing.get_start_method() == "fork":
        return settings  # a forked worker already holds the built detector: nothing to send, nothing to build
    try:
        return pickle.dumps(detector)
    except Exception:  # hyperscan databases and lambdas do not pickle; scanning in-process still works
        return False


def _config_texts(layout: ImageLayout) -> Iterator[tuple[str, str, int | None]]:
    """(pseudo path, text, layer index) for Env, Labels, Cmd, Entrypoint and every history created_by."""
    cfg: Any = layout.config.get("config") or layout.config.get("container_config") or {}
    if isinstance(cfg, dict):
        for i, env in enumerate(cfg.get("Env") or []):
            yield f"config:Env[{i}]", str(env), None
        for key, value in (cfg.get("Labels") or {}).items():
            yield f"config:Labels[{key}]", f"{key}={value}", None
        for name in ("Cmd", "Entrypoint"):
            value = cfg.get(name)
            if value:
                yield f"config:{name}", " ".join(map(str, value)) if isinstance(value, list) else str(value), None
    layer = 0
    for i, h in enumerate(layout.config.get("history") or []):
        if not isinstance(h, dict):
            continue
        empty = bool(h.get("empty_layer", False))
        if h.get("created_by"):
            yield f"config:history[{i}].created_by", str(h["created_by"]), None if empty else layer
        layer += 0 if empty else 1


def _ancestors(path: str) -> list[str]:
    out: list[str] = []
    while True:
        path = posixpath.dirname(path)
        if not path:
            return out
        out.append(path)


def _git_across_layers(scans: list[LayerScan]) -> None:
    """Findings in git objects placed at their commit and path on every layer's `.git` files at once (the final
    `.git`: refs as the last layer left them), then the files are dropped."""
    ordered = sorted(scans, key=lambda s: s.index)
    if any(unresolved(s.hits) for s in ordered) and any(s.git.dirs for s in ordered):
        git = merged(s.git for s in ordered)
        for scan in ordered:
            if unresolved(scan.hits):
                scan.hits = resolve_hits(scan.hits, git)
    for scan in ordered:
        scan.git = GitFiles()


def _resolve_status(scans: list[LayerScan], n_layers: int) -> list[Finding]:
    """First later layer that whites out, opaques, or replaces the file (or a parent) -> DELETED there."""
    by_index = {s.index: s for s in scans}
    sets = {s.index: (set(s.whiteouts), set(s.opaque_dirs), set(s.entries)) for s in scans}
    out: list[Finding] = []
    for scan in sorted(scans, key=lambda s: s.index):
        for path, finding in scan.hits:
            parents = _ancestors(path)
            deleted_in = None
            for j in range(scan.index + 1, n_layers):
                if j not in by_index:
                    continue
                wh, opq, entries = sets[j]
                if path in wh or path in entries or any(p in wh or p in opq or p in entries for p in parents):
                    deleted_in = j
                    break
            # The status lives in the location only: every report renders it from there (text, JSON, SARIF),
            # so repeating it in the message printed it twice.
            if deleted_in is None:
                loc = dataclasses.replace(finding.location, status=FileStatus.PRESENT)
            else:
                loc = dataclasses.replace(finding.location, status=FileStatus.DELETED, deleted_in_layer=deleted_in)
            out.append(dataclasses.replace(finding, location=loc))
    return out
