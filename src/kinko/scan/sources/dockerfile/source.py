"""`DockerfileSource`: scan one Dockerfile with the detector (literal secrets) and the Dockerfile rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from kinko.errors import ScanError
from kinko.scan.findings import matches_to_findings
from kinko.scan.interface import Detector, Finding, Location, ScanResult, Source
from kinko.scan.sources.allow import allowed_lines
from kinko.scan.sources.dockerfile.parser import parse
from kinko.scan.sources.dockerfile.rules import misconfig_findings

#: Dockerfiles are small; a bigger file is not a Dockerfile we should parse (the detector still can).
MAX_DOCKERFILE_BYTES = 4 * 1024 * 1024


def dockerfile_misconfigs(data: bytes, artifact: str, path: str) -> list[Finding]:
    """Rule findings for Dockerfile bytes. Raises ScanError for malformed input (naming path and line)."""
    if len(data) > MAX_DOCKERFILE_BYTES:
        raise ScanError(f"{path}: larger than {MAX_DOCKERFILE_BYTES} bytes; not parsed as a Dockerfile")
    text = data.decode("utf-8", errors="replace")
    return misconfig_findings(parse(text, source=path), artifact, path)


class DockerfileSource(Source):
    """One Dockerfile. The detector runs over the whole file (ARG/ENV values, RUN text, heredocs)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.artifact = str(path)

    def scan(self, detector: Detector, result: ScanResult) -> Iterator[Finding]:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ScanError(f"cannot read Dockerfile {self.artifact}: {exc.strerror or exc}") from None
        result.artifacts.append(self.artifact)
        result.bytes_scanned += len(data)

        def location(line: int) -> Location:
            return Location(artifact=self.artifact, path=self.artifact, line=line)

        yield from matches_to_findings(detector, detector.scan(data, path=self.artifact), location)
        allow = allowed_lines(data)
        yield from (
            f for f in dockerfile_misconfigs(data, self.artifact, self.artifact) if f.location.line not in allow
        )
