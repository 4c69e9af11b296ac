"""Turning detector `Match`es into `Finding`s: the one helper every source uses for secret hits."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kinko.scan.interface import Confidence, Detector, Finding, FindingKind, Location, Match, Severity

#: Shown to the user with every secret finding: what to do about a leaked value.
LEAK_FIX = "Rotate the value, remove it from the artifact, and deliver it at run time (kinko, a mount)."


def judged_severity(severity: Severity, confidence: Confidence) -> Severity:
    """A low-confidence hit is at most MEDIUM: listed, but below `--fail-on`'s default (high)."""
    return min(severity, Severity.MEDIUM) if confidence is Confidence.LOW else severity


def match_secret_text(match: Match) -> str:
    """The matched secret as text; undecodable bytes are replaced so reports never crash on binary hits."""
    return match.secret.decode("utf-8", errors="replace")


def new_in_part(found: list[Finding], whole: Iterable[Finding], path: str) -> list[Finding]:
    """`found` (hits in a part of the file at `path`, such as its `.pyc` constants) without the secrets a scan of
    the whole file already reported at `path` itself: one leak, one finding."""
    known = {(f.rule_id, f.secret) for f in whole if f.location.path == path}
    return [f for f in found if (f.rule_id, f.secret) not in known]


def matches_to_findings(
    detector: Detector,
    matches: Iterable[Match],
    location_for_line: Callable[[int], Location],
) -> list[Finding]:
    """One SECRET finding per distinct (rule, line, secret); title and severity come from the detector."""
    findings: list[Finding] = []
    seen: set[tuple[str, int, bytes]] = set()
    for match in matches:
        key = (match.rule_id, match.line, match.secret)
        if key in seen:
            continue
        seen.add(key)
        title, severity = detector.rule_info(match.rule_id)
        findings.append(
            Finding(
                rule_id=match.rule_id,
                title=title,
                severity=judged_severity(severity, match.confidence),
                kind=FindingKind.SECRET,
                location=location_for_line(match.line),
                secret=match_secret_text(match),
                message=f"{title} found",
                fix=LEAK_FIX,
                confidence=match.confidence,
            )
        )
    return findings
