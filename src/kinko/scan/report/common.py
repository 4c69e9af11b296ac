"""What every report format shares: redaction (including secrets echoed in other fields) and summaries."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kinko.scan.baseline import fingerprint
from kinko.scan.interface import FileStatus, Finding, Location, ScanResult, Severity
from kinko.scan.places import file_and_object

#: Shorter secrets are not scrubbed out of other fields (they would mangle ordinary words).
_MIN_SCRUB = 6


#: SARIF partialFingerprints names: a hash of where the finding is, or the baseline's keyed hash.
LOCATION_PRINT = "kinkoLocation/v1"
SECRET_PRINT = "kinkoSecret/v1"


@dataclass
class ReportOptions:
    show_secrets: bool = False
    #: The baseline's HMAC key (a baseline given or KINKO_BASELINE_KEY set): fingerprints are the baseline's
    #: keyed hashes. None: a plain hash of non-secret facts, stable across runs (a random key churned alerts).
    fingerprint_key: bytes | None = field(default=None, repr=False)

    @property
    def print_name(self) -> str:
        return LOCATION_PRINT if self.fingerprint_key is None else SECRET_PRINT


class Redactor:
    """Hides every finding's secret: in its own field and wherever it was echoed (created_by, messages)."""

    def __init__(self, findings: list[Finding], show_secrets: bool) -> None:
        self.show = show_secrets
        pairs = {(f.secret, f.redacted_secret()) for f in findings if len(f.secret) >= _MIN_SCRUB}
        # Longest first so a secret containing another is replaced whole.
        self._pairs = sorted(pairs, key=lambda p: -len(p[0]))

    def secret(self, finding: Finding) -> str:
        return finding.secret if self.show else finding.redacted_secret()

    def text(self, value: str | None) -> str | None:
        if value is None or self.show:
            return value
        for secret, masked in self._pairs:
            if secret in value:
                value = value.replace(secret, masked)
        return value


def status_text(location: Location) -> str:
    """Human wording of whether the file is still in the image."""
    if location.status is FileStatus.PRESENT:
        return "present in final image"
    if location.status is FileStatus.DELETED:
        where = f" in layer {location.deleted_in_layer}" if location.deleted_in_layer is not None else ""
        return f"deleted{where}, still recoverable from the archive"
    return ""


def location_fingerprint(finding: Finding, occurrence: int = 0) -> str:
    """sha256(rule_id NUL file NUL object NUL kind [NUL occurrence]): no secret (so no guess can be confirmed
    against it) and no line (lines move). `occurrence` tells apart hits of one rule in the same place."""
    file, obj = file_and_object(finding.location)
    parts = [finding.rule_id, file, obj or "", finding.kind.value]
    if occurrence:
        parts.append(str(occurrence))
    return hashlib.sha256("\0".join(parts).encode("utf-8", errors="surrogateescape")).hexdigest()


def fingerprints(findings: Sequence[Finding], options: ReportOptions) -> list[str]:
    """One fingerprint per finding, in order: keyed (see ReportOptions.fingerprint_key) or by location."""
    if options.fingerprint_key is not None:
        return [fingerprint(options.fingerprint_key, f) for f in findings]
    groups: defaultdict[str, list[int]] = defaultdict(list)
    for i, finding in enumerate(findings):
        groups[location_fingerprint(finding)].append(i)
    prints = [""] * len(findings)
    for members in groups.values():
        # Ordinals follow layer then line, not emission order (parallel layer scans reorder findings).
        members.sort(key=lambda i: (findings[i].location.layer_index or -1, findings[i].location.line or 0, i))
        for occurrence, i in enumerate(members):
            prints[i] = location_fingerprint(findings[i], occurrence)
    return prints


def location_dict(location: Location, redactor: Redactor) -> dict[str, Any]:
    file, obj = file_and_object(location)
    return {
        "artifact": location.artifact,
        "path": redactor.text(location.path),
        "file": redactor.text(file),
        "object": redactor.text(obj),
        "line": location.line,
        "layer_index": location.layer_index,
        "layer_diff_id": location.layer_diff_id,
        "created_by": redactor.text(location.created_by),
        "status": location.status.value,
        "deleted_in_layer": location.deleted_in_layer,
        "object_ref": redactor.text(location.object_ref),
    }


def finding_dict(finding: Finding, redactor: Redactor, print_: str) -> dict[str, Any]:
    return {
        "rule_id": finding.rule_id,
        "title": finding.title,
        "severity": finding.severity.name.lower(),
        "kind": finding.kind.value,
        "confidence": finding.confidence.name.lower(),
        "message": redactor.text(finding.message),
        "fix": redactor.text(finding.fix),
        "secret": redactor.secret(finding),
        "fingerprint": print_,
        "location": location_dict(finding.location, redactor),
    }


def summary(result: ScanResult) -> dict[str, Any]:
    counts = Counter(f.severity for f in result.findings)
    return {
        "findings": len(result.findings),
        "by_severity": {s.name.lower(): counts.get(s, 0) for s in sorted(Severity, reverse=True)},
        "deleted_but_recoverable": sum(1 for f in result.findings if f.location.status is FileStatus.DELETED),
        "warnings": len(result.warnings),
        "artifacts": list(result.artifacts),
        "bytes_scanned": result.bytes_scanned,
    }
