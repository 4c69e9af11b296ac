"""Rule `dockerfile-run-inline-credentials`: RUN commands that put a literal credential on the command line.

Such a credential lands in the image history and the build log. Values taken from variables or secret mounts pass.
"""

from __future__ import annotations

import re

from kinko.scan.interface import Finding, Location
from kinko.scan.misconfig_rules import RUN_INLINE_CREDENTIALS
from kinko.scan.sources.dockerfile.parser import Dockerfile, Instruction

_V = r"""(?P<val>"[^"\s]+"|'[^'\s]+'|[^\s'"|;&]+)"""
#: (what it is, pattern with a `val` group holding the credential)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("curl/wget user:password", re.compile(r"\b(?:curl|wget)\b[^\n;&|]*?\s(?:-u|--user)[ =]?[^\s:]+:" + _V)),
    ("password in a URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?P<val>[^/\s@'\"]+)@", re.I)),
    ("--password argument", re.compile(r"(?:--password|--passwd|--pass|--http-password|--token)[ =]" + _V)),
    ("docker login -p", re.compile(r"\b(?:docker|podman|buildah|helm)\b[^\n;&|]*\blogin\b[^\n;&|]*\s-p[ =]?" + _V)),
    ("mysql -p<password>", re.compile(r"\bmysql(?:dump|admin)?\b[^\n;&|]*\s-p(?P<val>[^\s'\";&|]+)")),
    ("sshpass -p", re.compile(r"\bsshpass\b[^\n;&|]*\s-p\s*" + _V)),
    ("npm auth token", re.compile(r"_auth(?:Token)?\s*=\s*" + _V)),
    ("htpasswd -b", re.compile(r"\bhtpasswd\b[^\n;&|]*\s-\w*b\w*\s+\S+\s+\S+\s+" + _V)),
    (
        "secret-named variable assignment",
        re.compile(r"\b[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY)[A-Z0-9_]*=" + _V),
    ),
]
_PLACEHOLDERS = frozenset({"changeme", "password", "secret", "xxx", "xxxx", "example", "dummy", "redacted", "***"})


def _literal(value: str) -> bool:
    """A real literal, not `$VAR`, `$(cat /run/secrets/x)`, a backtick command, or an obvious placeholder."""
    value = value.strip("'\"")
    if not value or "$" in value or "`" in value or value.startswith(("<", "/run/secrets", "%")):
        return False
    return value.lower() not in _PLACEHOLDERS and not value.startswith("-")


def _pieces(inst: Instruction) -> list[tuple[str, int]]:
    """(text, line of the text's first line): the command line and each heredoc body."""
    if inst.json_form:
        return [(" ".join(inst.args), inst.line)]
    return [(inst.rest, inst.line)] + [(doc.content, doc.first_line) for doc in inst.heredocs]


def inline_credential_findings(df: Dockerfile, artifact: str, path: str) -> list[Finding]:
    findings: list[Finding] = []
    for inst in df.instructions:
        target = inst.inner if inst.cmd == "ONBUILD" and inst.inner else inst
        if target.cmd != "RUN":
            continue
        seen: set[tuple[str, int]] = set()
        for text, first in _pieces(target):
            for what, pattern in _PATTERNS:
                for match in pattern.finditer(text):
                    value = match.group("val")
                    line = first + text.count("\n", 0, match.start()) if first != inst.line else inst.line
                    if not _literal(value) or (what, line) in seen:
                        continue
                    seen.add((what, line))
                    findings.append(_finding(df, inst, what, value.strip("'\""), line, artifact, path))
    return findings


def _finding(df: Dockerfile, inst: Instruction, what: str, value: str, line: int, artifact: str, path: str) -> Finding:
    location = Location(artifact=artifact, path=path, line=line, object_ref=df.stage_ref(inst))
    message = (
        f"RUN at line {inst.line} passes a literal credential ({what}); it is kept in the image history and build logs"
    )
    return RUN_INLINE_CREDENTIALS.finding(location, message, secret=value)
