"""Baseline files: keyed hashes of known findings so CI fails only on new ones. Never stores plaintext.

Format (JSON, written 0600):
  {"version": 2, "kind": "kinko-scan-baseline", "algorithm": "hmac-sha256", "key": "<64 hex>",
   "findings": [{"hash": "<hex>", "rule_id": "...", "artifact": "...", "path": "..."}]}
`hash` = HMAC-SHA256(key, rule_id NUL file NUL secret), file as in `places.file_key` (the file for manifests and
directories, archive NUL in-image path for images): a known secret copied into another file is new again.
Version 1 files (HMAC of rule_id NUL secret, in any file) are still read with that meaning.
The random per-baseline key stops anyone who reads the file from confirming a guessed secret against another
baseline or a public hash list, but whoever reads the file has the key too and can test guesses offline (a weak
password falls to a dictionary). So when KINKO_BASELINE_KEY (hex, at least 32 bytes) is set, that key is used
and the file records only `"key": "env:KINKO_BASELINE_KEY"` plus a `key_id` (HMAC of a constant) that tells a
wrong key from new findings. This module never reads the environment: the caller passes that key (`parse_key`
decodes the variable's value) as `env_key`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinko.config import ENV_BASELINE_KEY
from kinko.errors import InvalidInput
from kinko.scan.interface import Finding
from kinko.scan.places import file_key

VERSION = 2
#: Versions `load` accepts; 1 hashes ignore the file.
READABLE_VERSIONS = (1, 2)
KIND = "kinko-scan-baseline"
KEY_BYTES = 32
KEY_ENV = ENV_BASELINE_KEY
ENV_KEY_REF = f"env:{KEY_ENV}"


def parse_key(text: str | None) -> bytes | None:
    """A KINKO_BASELINE_KEY value decoded, or None when unset or blank. The message on a bad value never repeats it."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise InvalidInput(f"{KEY_ENV} must be hex of at least {KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)")
    return key


def key_id(key: bytes) -> str:
    """Identifies the key without revealing it: lets a reader tell a wrong env key from a changed image."""
    return hmac.new(key, b"kinko-baseline-key-id", hashlib.sha256).hexdigest()[:16]


def finding_identity(finding: Finding) -> str:
    """What a finding's hash covers: the secret, or for secretless findings where and what it is."""
    if finding.secret:
        return finding.secret
    loc = finding.location
    return f"{loc.path}\0{loc.object_ref or ''}\0{finding.message}"


def fingerprint(key: bytes, finding: Finding, version: int = VERSION) -> str:
    """HMAC-SHA256(key, rule_id NUL file NUL identity) as hex; version 1 leaves the file out."""
    parts = [finding.rule_id, finding_identity(finding)]
    if version >= 2:
        parts.insert(1, file_key(finding.location))
    message = "\0".join(parts).encode("utf-8", errors="surrogateescape")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class BaselineEntry:
    hash: str
    rule_id: str
    artifact: str
    path: str


@dataclass
class Baseline:
    key: bytes = field(repr=False)
    entries: list[BaselineEntry] = field(default_factory=list)
    key_from_env: bool = False  # the file names KINKO_BASELINE_KEY instead of holding the key
    version: int = VERSION  # what the hashes cover; a loaded version 1 file keeps its meaning

    @classmethod
    def new(cls, env_key: bytes | None = None) -> Baseline:
        """Keyed with `env_key` (KINKO_BASELINE_KEY's key: the file names it) when given, else a fresh random key
        (written into the file)."""
        return cls(key=env_key, key_from_env=True) if env_key else cls(key=secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_findings(
        cls, findings: Iterable[Finding], key: bytes | None = None, *, env_key: bytes | None = None
    ) -> Baseline:
        """The key: `env_key` when given (so it never lands in the file), else `key`, else a random one."""
        baseline = cls.new(env_key)
        if key and not baseline.key_from_env:
            baseline.key = key
        seen: set[str] = set()
        for finding in findings:
            digest = fingerprint(baseline.key, finding)
            if digest not in seen:
                seen.add(digest)
                loc = finding.location
                baseline.entries.append(BaselineEntry(digest, finding.rule_id, loc.artifact, loc.path))
        return baseline

    def hashes(self) -> frozenset[str]:
        return frozenset(entry.hash for entry in self.entries)

    def filter(self, findings: Iterable[Finding]) -> list[Finding]:
        """Findings whose keyed hash is not in the baseline."""
        known = self.hashes()
        return [f for f in findings if fingerprint(self.key, f, self.version) not in known]

    def to_json(self) -> str:
        doc = {
            "version": self.version,
            "kind": KIND,
            "algorithm": "hmac-sha256",
            "key": ENV_KEY_REF if self.key_from_env else self.key.hex(),
            **({"key_id": key_id(self.key)} if self.key_from_env else {}),
            "findings": [vars(entry) for entry in self.entries],
        }
        return json.dumps(doc, indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        """Write atomically with mode 0600 (the key lets its holder test guesses against the hashes)."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=".kinko-baseline-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.to_json())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path, *, env_key: bytes | None = None) -> Baseline:
        """Read a baseline file; one that names KINKO_BASELINE_KEY needs that key as `env_key`."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(f"baseline {path}: cannot read ({exc.strerror})") from None
        except ValueError:
            raise InvalidInput(f"baseline {path}: not valid JSON") from None
        return cls.from_document(doc, str(path), env_key=env_key)

    @classmethod
    def from_document(cls, doc: Any, where: str, *, env_key: bytes | None = None) -> Baseline:
        version = doc.get("version") if isinstance(doc, dict) else None
        if type(version) is not int or version not in READABLE_VERSIONS or doc.get("kind") != KIND:
            raise InvalidInput(f"baseline {where}: not a kinko baseline (version 1 or {VERSION})")
        if doc.get("key") == ENV_KEY_REF:
            key = _env_key_for(doc, where, env_key)
            return cls(key=key, entries=_entries(doc, where), key_from_env=True, version=version)
        try:
            key = bytes.fromhex(str(doc["key"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(f"baseline {where}: malformed key or findings list") from None
        if len(key) != KEY_BYTES:
            raise InvalidInput(f"baseline {where}: key must be {KEY_BYTES} bytes")
        return cls(key=key, entries=_entries(doc, where), version=version)


def _env_key_for(doc: dict[str, Any], where: str, key: bytes | None) -> bytes:
    if key is None:
        raise InvalidInput(f"baseline {where}: its key is kept out of the file but {KEY_ENV} is not set; "
                           "set it to the key the baseline was written with")  # fmt: skip
    if "key_id" in doc and not hmac.compare_digest(str(doc["key_id"]), key_id(key)):
        raise InvalidInput(f"baseline {where}: {KEY_ENV} is not the key this baseline was written with")
    return key


def _entries(doc: dict[str, Any], where: str) -> list[BaselineEntry]:
    try:
        return [
            BaselineEntry(str(e["hash"]), str(e["rule_id"]), str(e.get("artifact", "")), str(e.get("path", "")))
            for e in doc["findings"]
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidInput(f"baseline {where}: malformed key or findings list") from None
