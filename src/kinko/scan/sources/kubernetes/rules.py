"""Kubernetes Secret and ConfigMap rules, and the per-object context the workload rules share.

Base64 is not encryption, plaintext stringData, per-type required keys, secrets in ConfigMaps.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from kinko.k8s.manifests import Document, PathKey
from kinko.scan.findings import judged_severity, match_secret_text
from kinko.scan.interface import Detector, Finding, FindingKind, Location, Match
from kinko.scan.misconfig_rules import (
    BASE64_NOT_ENCRYPTION,
    CONFIGMAP_SECRET,
    FILES_FIX,
    INVALID_BASE64,
    INVALID_SECRET_TYPE,
    STRINGDATA_PLAINTEXT,
    MisconfigRule,
)


def dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class ObjectContext:
    """One Kubernetes object inside a document (List items get their own context with `base`)."""

    artifact: str
    doc: Document
    base: PathKey
    ref: str
    detector: Detector
    prefix: str = ""  # "file.yaml:" when the artifact is a directory
    findings: list[Finding] = field(default_factory=list)
    #: source lines holding Secret data/stringData values: scanned here (decoded), skipped by the raw-text pass
    covered: set[int] = field(default_factory=set)

    def cover(self, rel: PathKey, value: str) -> None:
        """Mark the lines of a value (a block scalar runs on past its first line) as scanned."""
        line = self.doc.line(self.base + rel)
        if line is not None:  # JSON documents have no line map: nothing to cover
            self.covered.update(range(line, line + value.count("\n") + 1))

    def location(self, rel: PathKey) -> Location:
        line = self.doc.line(self.base + rel)
        return Location(self.artifact, f"{self.prefix}{self.ref}:{dotted(rel)}", line=line, object_ref=self.ref)

    def add(self, rule: MisconfigRule, rel: PathKey, message: str, *, secret: str = "") -> None:
        self.findings.append(rule.finding(self.location(rel), message, secret=secret))

    def detect(self, data: bytes, hint: str, *, deployed: bool = False) -> list[Match]:
        if deployed:
            return self.detector.scan_deployed(data, path=hint)
        return self.detector.scan(data, path=hint)

    def secret_hits(self, data: bytes, rel: PathKey, hint: str, *, deployed: bool = False) -> list[Finding]:
        """Detector hits in a value, as SECRET findings located at `rel` (decoded values have no own lines).

        `deployed`: the value is what the cluster uses (a Secret's decoded data), so stand-ins like `pass` count.
        """
        out: list[Finding] = []
        seen: set[tuple[str, bytes]] = set()
        for match in self.detect(data, hint, deployed=deployed):
            if (match.rule_id, match.secret) in seen:
                continue
            seen.add((match.rule_id, match.secret))
            title, severity = self.detector.rule_info(match.rule_id)
            out.append(
                Finding(
                    match.rule_id, title, judged_severity(severity, match.confidence), FindingKind.SECRET,
                    self.location(rel), secret=match_secret_text(match), message=f"{title} found in {dotted(rel)}",
                    fix=FILES_FIX, confidence=match.confidence,
                )
            )  # fmt: skip
        return out


def object_ref(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    ns = meta.get("namespace") or "default"
    return f"{obj.get('kind', '?')}/{ns}/{meta.get('name') or '?'}"


def decode_b64(value: str) -> bytes | None:
    """Kubernetes' decoding of `data` values (Go's StdEncoding skips CR/LF); None when invalid."""
    try:
        return base64.b64decode(re.sub(r"[\r\n]", "", value), validate=True)
    except (binascii.Error, ValueError):
        return None


def describe(data: bytes, hits: list[Finding]) -> str:
    """What a decoded value is, for the message (never the value itself)."""
    if hits:
        return f"a {hits[0].title}"
    head = data[:200].lstrip()
    if b"PRIVATE KEY-----" in head:
        return "a PEM private key"
    if head.startswith(b"-----BEGIN CERTIFICATE"):
        return "a PEM certificate"
    if head.startswith(b"{") and b'"auths"' in data[:4096]:
        return "a Docker registry config with credentials"
    if b"kind: Config" in data[:4096] and b"clusters:" in data[:4096]:
        return "a kubeconfig"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return f"{len(data)} bytes of binary data"
    return f"a {len(data)}-character plaintext value"


def check_secret(ctx: ObjectContext, obj: dict[str, Any]) -> None:
    data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
    string_data = obj.get("stringData") if isinstance(obj.get("stringData"), dict) else {}
    assert isinstance(data, dict) and isinstance(string_data, dict)
    stype = str(obj.get("type") or "Opaque")
    decoded: dict[str, bytes] = {}
    for key, value in data.items():
        if value is None or value == "":
            decoded[str(key)] = b""  # present but empty still satisfies "key exists" checks
        elif isinstance(value, str):
            ctx.cover(("data", str(key)), value)
            raw = _secret_data_value(ctx, str(key), value, public=str(key) in _PUBLIC_KEYS.get(stype, ()))
            decoded[str(key)] = raw if raw is not None else value.encode()
    for key, value in string_data.items():
        if isinstance(value, str):
            ctx.cover(("stringData", str(key)), value)
            ctx.findings.extend(ctx.secret_hits(value.encode(), ("stringData", str(key)), str(key), deployed=True))
        ctx.add(
            STRINGDATA_PLAINTEXT, ("stringData", str(key)),
            f"stringData.{key} holds the secret value in plain text in the manifest",
            secret=str(value) if value is not None else "",
        )  # fmt: skip
        if isinstance(value, str):
            decoded.setdefault(str(key), value.encode())
    _check_type(ctx, obj, decoded)


#: Keys of typed Secrets that hold public material (a certificate), not a secret: only the key is reported.
_PUBLIC_KEYS: dict[str, tuple[str, ...]] = {"kubernetes.io/tls": ("tls.crt", "ca.crt")}


#: a decoded value shorter than this (whitespace stripped) is not reported as a leaked secret
_MIN_SECRET_BYTES = 4


def _secret_data_value(ctx: ObjectContext, key: str, value: str, *, public: bool = False) -> bytes | None:
    rel: PathKey = ("data", key)
    raw = decode_b64(value)
    if raw is None:
        ctx.add(INVALID_BASE64, rel, f"data.{key} is not valid base64; the API server will reject it")
        ctx.findings.extend(ctx.secret_hits(value.encode(), rel, key))
        return None
    hits = ctx.secret_hits(raw, rel, key, deployed=True)
    ctx.findings.extend(hits)
    if public and not hits:  # a certificate is published on every TLS handshake; base64 hides nothing there
        return raw
    if not hits and len(raw.strip()) < _MIN_SECRET_BYTES:
        return raw  # `bar`, `1`, `yes`: a flag or a fixture, too short to be anyone's credential
    ctx.add(
        BASE64_NOT_ENCRYPTION, rel, f"data.{key} is base64, not encryption: it decodes to {describe(raw, hits)}",
        secret=raw.decode("utf-8", errors="replace"),
    )  # fmt: skip
    return raw


_REQUIRED: dict[str, tuple[str, ...]] = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "bootstrap.kubernetes.io/token": ("token-id", "token-secret"),
}
_BOOTSTRAP = {"token-id": re.compile(r"[a-z0-9]{6}"), "token-secret": re.compile(r"[a-z0-9]{16}")}


def _type_problems(obj: dict[str, Any], stype: str, values: dict[str, bytes]) -> list[str]:
    """The API server's ValidateSecret per-type checks (specs/k8s-secrets-vault-keyvault-facts.md §1.3)."""
    problems = [f"missing required key {k!r}" for k in _REQUIRED.get(stype, ()) if k not in values]
    if stype == "kubernetes.io/basic-auth" and not ({"username", "password"} & values.keys()):
        problems.append("needs a 'username' or 'password' key")
    if stype == "kubernetes.io/ssh-auth" and "ssh-privatekey" in values and not values["ssh-privatekey"]:
        problems.append("'ssh-privatekey' is empty")
    if stype == "kubernetes.io/service-account-token":
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        if not isinstance(annotations, dict) or not annotations.get("kubernetes.io/service-account.name"):
            problems.append("missing annotation 'kubernetes.io/service-account.name'")
    for key in (".dockerconfigjson", ".dockercfg"):
        if stype.endswith(key.lstrip(".")) and key in values and not _json_object(values[key]):
            problems.append(f"{key!r} is not a JSON object")
    if stype == "bootstrap.kubernetes.io/token":
        for key, pattern in _BOOTSTRAP.items():
            if key in values and not pattern.fullmatch(values[key].decode("utf-8", "replace")):
                problems.append(f"{key!r} does not match {pattern.pattern}")
    return problems


def _json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict | None)
    except ValueError:
        return False


def _check_type(ctx: ObjectContext, obj: dict[str, Any], values: dict[str, bytes]) -> None:
    stype = str(obj.get("type") or "Opaque")
    for problem in _type_problems(obj, stype, values):
        ctx.add(INVALID_SECRET_TYPE, ("type",), f"type {stype}: {problem}")


def check_configmap(ctx: ObjectContext, obj: dict[str, Any]) -> None:
    for field_name in ("data", "binaryData"):
        values = obj.get(field_name)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if not isinstance(value, str):
                continue
            raw = decode_b64(value) if field_name == "binaryData" else value.encode()
            if raw is None:
                continue
            for hit in ctx.secret_hits(raw, (field_name, str(key)), str(key)):
                ctx.add(
                    CONFIGMAP_SECRET, (field_name, str(key)), f"ConfigMap {field_name}.{key} holds {hit.title}; "
                    "ConfigMaps are not access-controlled like Secrets", secret=hit.secret,
                )  # fmt: skip
