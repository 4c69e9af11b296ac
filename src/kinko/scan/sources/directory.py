"""`DirectorySource`: walk a repository and run the detector over every file, the file rules where they apply.

.gitignore files and excludes are honoured and the walk never leaves the tree; Dockerfiles and Kubernetes
manifests also get their source's rules.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import pathspec

from kinko.errors import ScanError
from kinko.scan.findings import matches_to_findings, new_in_part
from kinko.scan.interface import Detector, Finding, Location, Match, ScanResult, ScanWarning, Source
from kinko.scan.sources.allow import allowed_lines
from kinko.scan.sources.dockerfile.source import MAX_DOCKERFILE_BYTES, dockerfile_misconfigs
from kinko.scan.sources.inner import inner_parts, wide_text
from kinko.scan.sources.kubernetes.source import (
    MANIFEST_SUFFIXES,
    dedupe_secret_hits,
    looks_like_manifest,
    manifest_findings,
    skip_unlisted,
)

#: Files above this are scanned in windows instead of being read whole (bounded memory).
MAX_WHOLE_FILE = 32 * 1024 * 1024
CHUNK = 16 * 1024 * 1024
OVERLAP = 64 * 1024  # longer than any secret we detect (PEM keys included)
_DOCKERFILE_GLOBS = ("dockerfile", "dockerfile.*", "*.dockerfile", "containerfile", "containerfile.*")
_Say = Callable[[str], None]


@dataclass
class _Ignore:
    """One .gitignore (or the excludes) and the directory its patterns are relative to."""

    prefix: str  # "" for the root, else "sub/dir/"
    spec: pathspec.GitIgnoreSpec

    def verdict(self, rel: str) -> bool | None:
        if self.prefix and not rel.startswith(self.prefix):
            return None
        return self.spec.check_file(rel[len(self.prefix) :]).include


#: `dockerfile.py`, `Dockerfile.go`, ... are code about Dockerfiles (parsers, generators), not Dockerfiles.
_CODE_EXTENSIONS = frozenset(
    {
        ".py", ".pyi", ".go", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".rs", ".java", ".kt", ".kts", ".scala",
        ".rb", ".sh", ".bash", ".zsh", ".ps1", ".php", ".pl", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".swift",
        ".lua", ".r", ".ex", ".exs", ".erl", ".hs", ".clj", ".groovy", ".dart", ".md", ".rst", ".json", ".toml",
    }
)  # fmt: skip


def is_dockerfile(name: str) -> bool:
    lowered = name.lower()
    if os.path.splitext(lowered)[1] in _CODE_EXTENSIONS:
        return False
    return any(fnmatch.fnmatchcase(lowered, g) for g in _DOCKERFILE_GLOBS)


class DirectorySource(Source):
    """A folder (walked), a single file, or standard input (`-`, read whole, up to MAX_WHOLE_FILE bytes)."""

    def __init__(self, path: str | Path, *, excludes: Sequence[str] = (), stdin: IO[bytes] | None = None) -> None:
        self.root = Path(path)
        self.artifact = str(path)
        self.excludes = _Ignore("", pathspec.GitIgnoreSpec.from_lines(list(excludes)))
        self.stdin = stdin

    def scan(self, detector: Detector, result: ScanResult) -> Iterator[Finding]:
        result.artifacts.append(self.artifact)
        if self.artifact == "-":
            data = (self.stdin or sys.stdin.buffer).read(MAX_WHOLE_FILE + 1)
            if len(data) > MAX_WHOLE_FILE:
                result.skip("-", f"standard input: scanned its first {MAX_WHOLE_FILE} bytes only")
            result.bytes_scanned += len(data[:MAX_WHOLE_FILE])
            yield from self._scan_data("-", data[:MAX_WHOLE_FILE], detector, result)
            return
        if self.root.is_file():
            yield from self._scan_file(self.root.name, self.root, detector, result)
            return
        if not self.root.is_dir():
            raise ScanError(f"not a file or directory: {self.artifact}")
        for rel, full in self.files(result):
            yield from self._scan_file(rel, full, detector, result)

    def _ignored(self, rel: str, ignores: list[_Ignore]) -> bool:
        if self.excludes.verdict(rel):
            return True
        ignored = False
        for ignore in ignores:  # root first: a deeper .gitignore overrides (incl. `!negation`)
            verdict = ignore.verdict(rel)
            if verdict is not None:
                ignored = verdict
        return ignored

    def files(self, result: ScanResult) -> Iterator[tuple[str, Path]]:
        """(relative posix path, full path) of every regular, non-ignored file; symlinks are never followed.

        A directory that cannot be listed or a file that cannot be stat'ed is recorded as skipped in `result`.
        """
        ignores: list[_Ignore] = []
        unlisted = skip_unlisted(result, self.root, self.artifact)
        for folder, dirs, names in os.walk(self.root, onerror=unlisted, followlinks=False):
            base = Path(folder)
            rel_dir = base.relative_to(self.root).as_posix()
            prefix = "" if rel_dir == "." else rel_dir + "/"
            ignores = [i for i in ignores if prefix.startswith(i.prefix)]
            if ".gitignore" in names:
                ignores.append(_Ignore(prefix, _read_ignore(base / ".gitignore", result, self.artifact)))
            dirs[:] = sorted(
                d for d in dirs if d != ".git" and not self._ignored(prefix + d + "/", ignores)
            )  # fmt: skip
            for name in sorted(names):
                rel = prefix + name
                full = base / name
                if self._ignored(rel, ignores):
                    continue
                try:
                    mode = full.lstat().st_mode
                except FileNotFoundError:
                    continue  # removed while the walk ran: nothing left to scan
                except OSError as exc:
                    result.skip(self.artifact, f"{rel}: cannot stat: {exc.strerror or exc}; not scanned")
                    continue
                if stat.S_ISREG(mode):  # skips symlinks, FIFOs, sockets and devices
                    yield rel, full

    def _scan_file(self, rel: str, full: Path, detector: Detector, result: ScanResult) -> list[Finding]:
        try:
            size = full.stat().st_size
            if size > MAX_WHOLE_FILE:
                matches = _scan_windows(full, rel, detector, result)
                return matches_to_findings(detector, matches, _at(self.artifact, rel))
            data = full.read_bytes()
        except OSError as exc:
            result.skip(self.artifact, f"{rel}: cannot read: {exc.strerror or exc}; not scanned")
            return []
        result.bytes_scanned += len(data)
        return self._scan_data(rel, data, detector, result)

    def _scan_data(self, rel: str, data: bytes, detector: Detector, result: ScanResult) -> list[Finding]:
        def warn(message: str) -> None:
            result.warnings.append(ScanWarning(self.artifact, message))

        def skip(message: str) -> None:
            result.skip(self.artifact, message)

        location = _at(self.artifact, rel)
        plain = matches_to_findings(detector, detector.scan(data, path=rel), location)
        plain += self._inside(rel, data, detector, result, plain)
        covered: set[int] = set()
        structural = self._structural(rel, data, detector, (warn, skip), covered)
        allow = allowed_lines(data)
        merged = structural + dedupe_secret_hits(structural, plain, covered)
        merged = [f for f in merged if f.location.line not in allow]
        return _dedupe(merged)

    def _inside(self, rel: str, data: bytes, detector: Detector, result: ScanResult,
                plain: list[Finding]) -> list[Finding]:  # fmt: skip
        """UTF-16/32 text decoded, members of zip-family and tar archives (nested), each at `rel!member`, and `.pyc`
        constants (`!constants`, less what the raw bytes showed: `plain` holds the whole file's findings)."""
        found: list[Finding] = []
        parts = [(rel, data)] if wide_text(data) is not None else []
        problems: list[str] = []
        for name, content in [*parts, *inner_parts(rel, data, problems)]:
            if name != rel:
                result.bytes_scanned += len(content)
            text = wide_text(content)
            for buffer in (content if name != rel else b"", text or b""):
                if buffer:
                    hits = matches_to_findings(detector, detector.scan(buffer, path=name), _at(self.artifact, name))
                    if name.endswith("!constants"):
                        hits = new_in_part(hits, [*plain, *found], name.removesuffix("!constants"))
                    found += hits
        for problem in problems:
            result.skip(self.artifact, problem)
        return found

    def _structural(self, rel: str, data: bytes, detector: Detector, report: tuple[_Say, _Say],
                    covered: set[int]) -> list[Finding]:  # fmt: skip
        """The Dockerfile or manifest rules for `rel`. `report` is (warn, skip): a limit hit is a skip; input that
        does not parse is a warning (its raw text was scanned, and a template named Dockerfile is common)."""
        warn, skip = report
        name = rel.rsplit("/", 1)[-1]
        if is_dockerfile(name):
            if len(data) > MAX_DOCKERFILE_BYTES:
                skip(f"{rel}: larger than {MAX_DOCKERFILE_BYTES} bytes; its Dockerfile rules were not checked")
                return []
            try:
                return dockerfile_misconfigs(data, self.artifact, rel)
            except ScanError as exc:
                warn(f"{rel}: not parsed as a Dockerfile: {exc.message}")
                return []
        if name.lower().endswith(MANIFEST_SUFFIXES) and looks_like_manifest(data):
            return manifest_findings(data, self.artifact, rel, detector, warn, path_prefix=rel + ":", covered=covered,
                                     skip=skip)  # fmt: skip
        return []


def _at(artifact: str, path: str) -> Callable[[int], Location]:
    return lambda line: Location(artifact=artifact, path=path, line=line)


def _read_ignore(path: Path, result: ScanResult, artifact: str) -> pathspec.GitIgnoreSpec:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        result.warnings.append(ScanWarning(artifact, f"cannot read {path.name}: {exc.strerror or exc}"))
        lines = []
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _scan_windows(full: Path, rel: str, detector: Detector, result: ScanResult) -> list[Match]:
    """Scan a big file in overlapping windows; offsets and lines are made absolute, overlap hits deduped."""
    matches: list[Match] = []
    seen: set[tuple[str, int]] = set()
    offset, line_base = 0, 0
    with full.open("rb") as handle:
        while True:
            handle.seek(offset)
            window = handle.read(CHUNK + OVERLAP)
            if not window:
                break
            for m in detector.scan(window, path=rel):
                key = (m.rule_id, offset + m.start)
                if key not in seen:
                    seen.add(key)
                    matches.append(replace(m, start=offset + m.start, end=offset + m.end, line=line_base + m.line))
            result.bytes_scanned += min(len(window), CHUNK)
            if len(window) <= CHUNK:
                break
            line_base += window.count(b"\n", 0, CHUNK)
            offset += CHUNK
    return matches


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (rule, path, line): the plain pass and a structural pass may see the same secret."""
    seen: set[tuple[str, str, int | None]] = set()
    out: list[Finding] = []
    for finding in findings:
        key = (finding.rule_id, finding.location.path, finding.location.line)
        if key not in seen:
            seen.add(key)
            out.append(finding)
    return out
