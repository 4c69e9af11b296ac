"""The scanner's contracts: what a source yields, what a detector returns, and what a finding says.

Flow: a `Source` walks an artifact (image archive, Dockerfile, manifests, directory), hands each piece of
content to a `Detector`, and yields `Finding`s (secrets found by the detector, plus the source's own
structural findings such as "COPY then rm" or "secret volume mode 0644"). Reports format findings; they
redact `Finding.secret` unless the user opted in.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kinko.scan.detect.loader import Rule


class Severity(enum.IntEnum):
    """Ordered so `finding.severity >= Severity.HIGH` reads naturally."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r}; expected one of: {names}") from None


class Confidence(enum.IntEnum):
    """How sure the detector is that a hit is a real secret. LOW: a specific format in documentation or an example,
    or a generic assignment in a test; its severity is capped at MEDIUM, below `--fail-on`'s default."""

    LOW = 0
    MEDIUM = 1
    HIGH = 2


class FileStatus(enum.Enum):
    """Whether a file found in an image layer is still visible in the final filesystem."""

    PRESENT = "present"
    DELETED = "deleted"  # removed by a later whiteout / opaque dir, still recoverable from the archive
    NOT_APPLICABLE = "n/a"  # config, Dockerfile, manifest, plain file


class FindingKind(enum.Enum):
    SECRET = "secret"  # a secret value was found
    MISCONFIG = "misconfig"  # a dangerous practice (COPY-then-rm, ADD URL, 0644 secret volume, ...)


@dataclass(frozen=True)
class Location:
    """Where a finding is. Fields that do not apply to the artifact stay None."""

    artifact: str  # the scanned thing as the user named it: an archive path, a Dockerfile, a manifest
    path: str  # file inside the artifact/layer, or a pseudo path such as "config:Env[2]"
    line: int | None = None
    layer_index: int | None = None  # 0 = base layer
    layer_diff_id: str | None = None
    created_by: str | None = None  # history `created_by` of the layer that added the file
    status: FileStatus = FileStatus.NOT_APPLICABLE
    deleted_in_layer: int | None = None  # layer index whose whiteout removed the file
    object_ref: str | None = None  # k8s "Secret/ns/name" or Dockerfile stage name, when useful


@dataclass(frozen=True)
class Match:
    """One detector hit inside a buffer. Offsets are byte offsets into the scanned buffer."""

    rule_id: str
    start: int
    end: int
    secret: bytes = field(repr=False)
    line: int
    confidence: Confidence = Confidence.HIGH


@dataclass(frozen=True)
class Finding:
    rule_id: str
    title: str
    severity: Severity
    kind: FindingKind
    location: Location
    #: the matched secret; never shown unless the user asks (`--show-secrets`). Excluded from repr.
    secret: str = field(default="", repr=False)
    message: str = ""
    fix: str = ""
    confidence: Confidence = Confidence.HIGH

    def redacted_secret(self, keep: int = 4) -> str:
        """The secret's first `keep` characters then asterisks; short secrets show nothing."""
        if not self.secret:
            return ""
        if len(self.secret) <= keep * 3:
            return "*" * 8
        return self.secret[:keep] + "*" * 8


@dataclass(frozen=True)
class ScanWarning:
    """Something a report should mention. `skipped`: part of the artifact was not scanned (a missing blob, a
    truncated archive, a bomb limit hit), so the scan is incomplete; the message names the part and the limit."""

    artifact: str
    message: str
    skipped: bool = False


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    warnings: list[ScanWarning] = field(default_factory=list)
    bytes_scanned: int = 0
    artifacts: list[str] = field(default_factory=list)
    # Set by `kinko.scan.run.scan`, never by a source:
    #: the detector's rule set (SARIF lists it)
    rules: Sequence[Rule] = ()
    #: the key reports fingerprint with (the baseline's, or KINKO_BASELINE_KEY); None: fingerprints by location
    fingerprint_key: bytes | None = field(default=None, repr=False)
    #: how many findings a written baseline accepted (they no longer fail the scan); None: no baseline written
    accepted: int | None = None

    def skip(self, artifact: str, message: str) -> None:
        """Record that part of `artifact` was not scanned (`message`: which part, and why): the scan is incomplete."""
        self.warnings.append(ScanWarning(artifact, message, skipped=True))

    @property
    def incomplete(self) -> list[ScanWarning]:
        """The warnings that say part of an artifact was not scanned; empty when everything was."""
        return [w for w in self.warnings if w.skipped]


class Detector(ABC):
    """Finds secrets in a buffer. Implementations must be safe to call from several threads."""

    @abstractmethod
    def scan(self, data: bytes, *, path: str = "") -> list[Match]:
        """All matches in `data`. `path` lets path-aware rules (e.g. `.pem`, `.p12`) and allow-lists apply."""

    def scan_deployed(self, data: bytes, *, path: str = "") -> list[Match]:
        """Like `scan`, for a value known to be used as-is (a Kubernetes Secret's decoded `data`).

        Stand-in values such as `pass` or `root` mark documentation in source files; in a deployed value they
        are a real (weak) credential. Detectors without that distinction scan normally.
        """
        return self.scan(data, path=path)

    @abstractmethod
    def rule_info(self, rule_id: str) -> tuple[str, Severity]:
        """(title, severity) for a rule id, used to turn matches into findings."""


class Source(ABC):
    """An artifact kind that can be scanned."""

    @abstractmethod
    def scan(self, detector: Detector, result: ScanResult) -> Iterator[Finding]:
        """Yield findings as they are found; append warnings and byte counts to `result`.

        Content left unscanned (a limit hit, an unreadable file or layer) goes to `result.skip`, never only to a
        plain warning: a scan that skipped anything must not pass as clean.
        """
