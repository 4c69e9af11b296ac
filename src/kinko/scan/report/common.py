"""What every report format shares: redaction (including secrets echoed in other fields) and summaries."""

from __future__ import annotations

import secrets as _random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kinko.scan.baseline import fingerprint
from kinko.scan.interface import FileStatus, Finding, Location, ScanResult, Severity

#: Shorter secrets are not scrubbed out of other fields (they would mangle ordinary words).
_MIN_SCRUB = 6


@dataclass
class ReportOptions:
    show_secrets: bool = False
    #: HMAC key for fingerprints; the baseline's key when one is used, else random per run.
    fingerprint_key: bytes = field(default_factory=lambda: _random.token_bytes(32), repr=False)


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


def in_image(location: Location) -> bool:
    """A file (or config entry) inside an image archive: its path names nothing on the scanning host."""
    return (
        location.layer_index is not None
        or location.layer_diff_id is not None
        or location.status is not FileStatus.NOT_APPLICABLE
        or location.path.startswith("config:")
    )


def file_and_object(location: Location) -> tuple[str, str | None]:
    """(the file on disk the finding is in, relative to the scan root; what inside it, or None).

    `Location.path` mixes both for manifests (`deploy/x.yaml:Secret/ns/n:data.k`, or `Secret/ns/n:data.k` with
    the file as the artifact) and names a file inside the archive for images. The object is the Kubernetes
    object path for manifests and the in-image path (or `config:` entry) for images.
    """
    if in_image(location):
        return location.artifact, location.path
    ref, path = location.object_ref, location.path
    if ref:
        at = path.find(ref + ":")
        if at == 0:
            return location.artifact, path
        if at > 0 and path[at - 1] == ":":
            return path[: at - 1], path[at:]
    return path, None


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


def finding_dict(finding: Finding, redactor: Redactor, options: ReportOptions) -> dict[str, Any]:
    return {
        "rule_id": finding.rule_id,
        "title": finding.title,
        "severity": finding.severity.name.lower(),
        "kind": finding.kind.value,
        "message": redactor.text(finding.message),
        "fix": redactor.text(finding.fix),
        "secret": redactor.secret(finding),
        "fingerprint": fingerprint(options.fingerprint_key, finding),
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
