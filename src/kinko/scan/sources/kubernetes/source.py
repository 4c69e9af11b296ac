"""`KubernetesSource`: scan manifest files and directories with the Secret/ConfigMap/workload rules.

YAML multi-document files, JSON and `*List` kinds; a detector pass over the raw text finds the rest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kinko.errors import ScanError
from kinko.k8s.manifests import MAX_MANIFEST_BYTES, DocError, PathKey, load
from kinko.k8s.objects import POD_SPEC_PATHS
from kinko.scan.findings import matches_to_findings
from kinko.scan.interface import Detector, Finding, FindingKind, Location, ScanResult, ScanWarning, Source
from kinko.scan.sources.allow import allowed_lines
from kinko.scan.sources.kubernetes.rules import ObjectContext, check_configmap, check_secret, object_ref
from kinko.scan.sources.kubernetes.workloads import check_workload

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
OnError = Callable[[OSError], None]


def looks_like_manifest(data: bytes) -> bool:
    """Cheap test for directory scans: has both `apiVersion` and `kind` keys."""
    head = data[:65536]
    return b"apiVersion" in head and b"kind" in head and b"\x00" not in head


def manifest_findings(
    data: bytes,
    artifact: str,
    path: str,
    detector: Detector,
    warn: Callable[[str], None],
    *,
    path_prefix: str = "",
    covered: set[int] | None = None,
    skip: Callable[[str], None] | None = None,
) -> list[Finding]:
    """Structural findings for one manifest file; problems go to `warn` (file and document index named).

    A limit that stops the parse (the size cap, an alias bomb, nesting too deep) goes to `skip` instead (to
    `warn` when not given): the file may hold a Secret whose decoded values went unchecked, so the scan is
    incomplete. Input that is not YAML/JSON at all is only a warning: its raw text was scanned.
    `covered` receives the lines of Secret data/stringData values, which are scanned here (decoded): the caller's
    raw-text pass skips them so one value is not reported twice (its base64 text looks like a password too).
    """
    skip = skip or warn
    if len(data) > MAX_MANIFEST_BYTES:
        skip(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes; not parsed as Kubernetes manifests (Secret values "
             "in it were not decoded and checked)")  # fmt: skip
        return []
    if b"\x00" in data:
        warn(f"{path}: binary content; not parsed as Kubernetes manifests")
        return []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        warn(f"{path}: not UTF-8 text; not parsed as Kubernetes manifests")
        return []
    findings: list[Finding] = []
    for doc in _lenient_load(text, is_json=path.lower().endswith(".json")):
        if isinstance(doc, DocError):
            (skip if doc.limit else warn)(f"{path}: document {doc.index}: {doc.message}")
            continue
        for obj, base in _objects(doc.data, ()):
            ctx = ObjectContext(artifact, doc, base, object_ref(obj), detector, path_prefix)
            _check_object(ctx, obj)
            findings.extend(ctx.findings)
            if covered is not None:
                covered.update(ctx.covered)
    return findings


_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


def _lenient_load(text: str, *, is_json: bool) -> list[Any]:
    """The file's documents; a YAML file indented with tabs (invalid YAML, but hand-written manifests have them and
    their Secret values are just as leaked) is read again with each leading tab as two spaces, lines unchanged."""
    docs = list(load(text, is_json=is_json))
    if is_json or "\t" not in text or not any(isinstance(d, DocError) and not d.limit for d in docs):
        return docs
    retry = list(load(_LEADING_TABS.sub(lambda m: "  " * len(m.group()), text), is_json=False))
    errors = sum(isinstance(d, DocError) for d in docs)
    return retry if sum(isinstance(d, DocError) for d in retry) < errors else docs


def _objects(data: object, base: PathKey) -> Iterator[tuple[dict[str, Any], PathKey]]:
    """Objects in a document, unpacking `List` / `*List` kinds."""
    if not isinstance(data, dict):
        return
    kind, items = data.get("kind"), data.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for i, item in enumerate(items):
            yield from _objects(item, (*base, "items", i))
    elif isinstance(kind, str):
        yield data, base


def _check_object(ctx: ObjectContext, obj: dict[str, Any]) -> None:
    kind = obj.get("kind")
    if kind in ("Secret", "secret"):  # the API server refuses `secret`; its values are in the file all the same
        check_secret(ctx, obj)
    elif kind == "ConfigMap":
        check_configmap(ctx, obj)
    elif kind in POD_SPEC_PATHS:
        check_workload(ctx, obj)


def dedupe_secret_hits(
    structural: list[Finding], plain: list[Finding], covered: set[int] | frozenset[int] = frozenset()
) -> list[Finding]:
    """Drop raw-text detector hits that a structural SECRET finding already reports (same line, same value) or
    that sit on `covered` lines (Secret values, reported by the decoded pass)."""
    known = {(f.location.line, f.secret) for f in structural if f.kind is FindingKind.SECRET}
    return [f for f in plain if (f.location.line, f.secret) not in known and f.location.line not in covered]


def skip_unlisted(result: ScanResult | None, root: Path | None = None, artifact: str = "") -> OnError | None:
    """An `os.walk` onerror recording a directory it could not list as skipped (its files were not scanned).

    With `root`, the directory is named relative to it, under `artifact` (a directory scan); else it is its own.
    """
    if result is None:
        return None

    def record(exc: OSError) -> None:
        reason = f"cannot list directory: {exc.strerror or exc}; its files were not scanned"
        path = Path(str(exc.filename))
        if root is None or not path.is_relative_to(root):
            result.skip(str(path), reason)
        else:
            result.skip(artifact, f"{path.relative_to(root).as_posix()}/: {reason}")

    return record


class KubernetesSource(Source):
    """Manifest files, or directories searched recursively for *.yaml, *.yml and *.json (symlinks not followed)."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = [Path(p) for p in paths]

    def files(self, result: ScanResult | None = None) -> Iterator[Path]:
        """Every manifest file; a directory that cannot be listed is recorded in `result` as skipped."""
        for root in self.paths:
            if root.is_dir():
                for folder, dirs, names in os.walk(root, onerror=skip_unlisted(result), followlinks=False):
                    dirs[:] = sorted(d for d in dirs if d != ".git")
                    for name in sorted(names):
                        full = Path(folder, name)
                        if name.lower().endswith(MANIFEST_SUFFIXES) and not full.is_symlink():
                            yield full
            elif root.exists():
                yield root
            else:
                raise ScanError(f"no such file or directory: {root}")

    def scan(self, detector: Detector, result: ScanResult) -> Iterator[Finding]:
        for file in self.files(result):
            artifact = str(file)
            try:
                data = file.read_bytes()
            except OSError as exc:
                result.skip(artifact, f"cannot read: {exc.strerror or exc}; not scanned")
                continue
            result.artifacts.append(artifact)
            result.bytes_scanned += len(data)
            yield from self._scan_file(data, artifact, detector, result)

    @staticmethod
    def _scan_file(data: bytes, artifact: str, detector: Detector, result: ScanResult) -> list[Finding]:
        def warn(message: str) -> None:
            result.warnings.append(ScanWarning(artifact, message))

        def location(line: int) -> Location:
            return Location(artifact=artifact, path=artifact, line=line)

        covered: set[int] = set()
        structural = manifest_findings(data, artifact, artifact, detector, warn, covered=covered,
                                       skip=lambda message: result.skip(artifact, message))  # fmt: skip
        plain = matches_to_findings(detector, detector.scan(data, path=artifact), location)
        allow = allowed_lines(data)
        merged = structural + dedupe_secret_hits(structural, plain, covered)
        return [f for f in merged if f.location.line not in allow]
