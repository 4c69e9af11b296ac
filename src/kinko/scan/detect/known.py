"""The vault's own secrets: exact occurrences of stored values, found by keyed fingerprints (`--known-from-vault`).

`KnownValuesDetector` wraps the rule detector. Every buffer is cut into tokens at strong delimiters (whitespace,
quotes, `,;()[]{}<>|`); each token, and each piece of it between weak delimiters (`=:@/?&#`: a value after
`KEY=`, a password inside `postgres://user:PASS@host`), whose length is the length of a stored value is hashed
with the scan's key and looked up. A hit is reported as rule `vault-secret:<vault path>`, critical, whether or
not any pattern rule matches it; a rule hit on the same bytes gives way to it. Values with a strong delimiter
inside (a passphrase with spaces) are not found this way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kinko.core.fingerprints import Fingerprint, keyed_digest
from kinko.scan.interface import Confidence, Detector, Match, Severity

RULE_PREFIX = "vault-secret:"
_TOKEN = re.compile(rb"[^\s'\"`,;()\[\]{}<>|]+")
_WEAK = re.compile(rb"[=:@/?&#]")
_MAX_PIECES = 16  # weak delimiters considered per token (a long URL query is cut there)


class KnownValues:
    """Stored values' fingerprints by length, with the scan's key. Never holds a value."""

    def __init__(self, prints: Sequence[Fingerprint], key: bytes) -> None:
        self._key = key
        self._by_length: dict[int, dict[bytes, str]] = {}
        for fp in prints:
            self._by_length.setdefault(fp.length, {})[fp.digest] = fp.path
        self.lengths = frozenset(self._by_length)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_length.values())

    def find(self, data: bytes) -> list[tuple[int, int, str]]:
        """(start, end, vault path) of every stored value found in `data`."""
        if not self._by_length:
            return []
        lengths, lo, hi = self.lengths, min(self.lengths), max(self.lengths)
        found: list[tuple[int, int, str]] = []
        for token in _TOKEN.finditer(data):
            start, end = token.span()
            if end - start < lo:
                continue
            weak = [m.start() + start for m in _WEAK.finditer(token.group())][:_MAX_PIECES]
            cuts = [start, *weak, end]
            for i, left in enumerate(cuts[:-1]):
                begin = left if i == 0 else left + 1
                for right in cuts[i + 1 :]:
                    size = right - begin
                    if size > hi:
                        break
                    if size in lengths:
                        path = self._by_length[size].get(keyed_digest(self._key, data[begin:right]))
                        if path is not None:
                            found.append((begin, right, path))
        return found


class KnownValuesDetector(Detector):
    """The rule detector plus the vault's stored values."""

    def __init__(self, inner: Detector, known: KnownValues) -> None:
        self.inner = inner
        self.known = known
        self.rules = getattr(inner, "rules", ())

    def scan(self, data: bytes, *, path: str = "") -> list[Match]:
        return self._merge(data, self.inner.scan(data, path=path))

    def scan_deployed(self, data: bytes, *, path: str = "") -> list[Match]:
        return self._merge(data, self.inner.scan_deployed(data, path=path))

    def _merge(self, data: bytes, matches: list[Match]) -> list[Match]:
        hits = self.known.find(data)
        if not hits:
            return matches
        own = [Match(RULE_PREFIX + where, start, end, data[start:end], data.count(b"\n", 0, start) + 1, Confidence.HIGH)
               for start, end, where in hits]  # fmt: skip
        kept = [m for m in matches if not any(h.start < m.end and m.start < h.end for h in own)]
        return kept + own

    def rule_info(self, rule_id: str) -> tuple[str, Severity]:
        if rule_id.startswith(RULE_PREFIX):
            return f"Secret stored in the vault at {rule_id[len(RULE_PREFIX):]}", Severity.CRITICAL
        return self.inner.rule_info(rule_id)
