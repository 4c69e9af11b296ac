"""`kinko scan image REF`: an image pulled from an OCI registry, scanned like a saved archive.

The image is pulled into a private temporary directory (0700; removed when the scan ends, whatever happens) as an
OCI layout, then `ImageSource` scans it: every layer, whiteouts, history and config, exactly as for `docker save`
output. Findings and warnings name the pulled reference pinned to its digest (`host/repo:tag@sha256:...`), never
the temporary directory.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kinko.scan.interface import Detector, Finding, ScanResult, ScanWarning, Source
from kinko.scan.sources.image import ImageSource
from kinko.scan.sources.registry.auth import load_credentials
from kinko.scan.sources.registry.pull import PullOptions, pull
from kinko.scan.sources.registry.reference import ImageRef, parse_reference


class RegistrySource(Source):
    """An image on a registry. `docker_config`: a Docker client config.json to take credentials from (None:
    anonymous); `plain_http`: None speaks plain HTTP to loopback registries only (as Docker does), TLS elsewhere."""

    def __init__(
        self,
        reference: str | ImageRef,
        *,
        docker_config: Path | None = None,
        plain_http: bool | None = None,
        platform: str = "linux/amd64",
        ca_file: Path | None = None,
        workers: int | None = None,
        scan_config: bool = True,
        temp_dir: Path | None = None,
    ) -> None:
        self.ref = parse_reference(reference) if isinstance(reference, str) else reference
        self.docker_config = docker_config
        self.plain_http = self.ref.is_loopback if plain_http is None else plain_http
        self.platform = platform
        self.ca_file = ca_file
        self.workers = workers
        self.scan_config = scan_config
        self.temp_dir = temp_dir

    def scan(self, detector: Detector, result: ScanResult) -> Iterator[Finding]:
        options = PullOptions(
            credentials=load_credentials(self.ref, self.docker_config),
            plain_http=self.plain_http,
            platform=self.platform,
            verify=str(self.ca_file) if self.ca_file else True,
        )
        with tempfile.TemporaryDirectory(prefix="kinko-pull-", dir=self.temp_dir) as tmp:
            pulled = pull(self.ref, options, Path(tmp))
            artifact = self.ref.pinned(pulled.digest)
            inner = ScanResult()
            try:
                image = ImageSource(tmp, workers=self.workers, scan_config=self.scan_config)
                for finding in image.scan(detector, inner):
                    where = dataclasses.replace(finding.location, artifact=artifact)
                    yield dataclasses.replace(finding, location=where)
            finally:
                result.artifacts.append(artifact)
                result.bytes_scanned += inner.bytes_scanned
                result.warnings.extend(_renamed(w, tmp, artifact) for w in inner.warnings)
                for message in pulled.skipped:
                    result.skip(artifact, message)


def _renamed(warning: ScanWarning, tmp: str, artifact: str) -> ScanWarning:
    return dataclasses.replace(warning, artifact=artifact, message=warning.message.replace(tmp, artifact))
