"""`ManySource`: several sources scanned as one (`kinko scan dir a.py b.py src/`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from kinko.scan.interface import Detector, Finding, ScanResult, Source


class ManySource(Source):
    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = list(sources)

    def scan(self, detector: Detector, result: ScanResult) -> Iterator[Finding]:
        for source in self.sources:
            yield from source.scan(detector, result)
