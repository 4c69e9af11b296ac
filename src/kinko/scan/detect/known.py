"""The vault's own secrets: exact occurrences of stored values, found by keyed fingerprints (`--known-from-vault`).

`KnownValuesDetector` wraps the rule detector. Every buffer is cut into tokens at strong delimiters (whitespace,
quotes, `,;()[]{}<>|`); each token, and each piece of it between weak delimiters (`=:@/?&#`: a value after
`KEY=`, a password inside `postgres://user:PASS@host`), whose length is the length of a stored value is hashed
with the scan's key and looked up. Values with a strong delimiter inside (a passphrase with spaces) are looked for
where such values are written: between quotes, after `=` or `: ` to the end of the line, and as a whole line.
Values written encoded are decoded first: a base64 token (a Kubernetes Secret's `data`, an env var) and a
percent-encoded piece (`p%40ss` in a URL). A hit is reported as rule `vault-secret:<vault path>`, critical,
whether or not any pattern rule matches it; a rule hit on the same bytes gives way to it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

from kinko.core.fingerprints import HMAC_SHA256, Fingerprint, digester
from kinko.errors import InvalidInput
from kinko.scan.interface import Confidence, Detector, Match, Severity

RULE_PREFIX = "vault-secret:"
#: strong delimiters end a token; weak ones cut it into pieces (`KEY=value`, `postgres://user:PASS@host`)
_STRONG = b"\t\n\x0b\x0c\r '\"`,;()[]{}<>|"
_WEAK = b"=:@/?&#"
_TO_TOKENS = bytes.maketrans(_STRONG, b" " * len(_STRONG))
_TO_PIECES = bytes.maketrans(_STRONG + _WEAK, b" " * len(_STRONG + _WEAK))
#: in a binary file a value is a run of printable ASCII (what `strings` shows): every other byte ends a token
_UNPRINTABLE = bytes(range(0x21)) + bytes(range(0x7F, 0x100))
_BIN_TOKENS = bytes.maketrans(_STRONG + _UNPRINTABLE, b" " * len(_STRONG + _UNPRINTABLE))
_BIN_PIECES = bytes.maketrans(_STRONG + _WEAK + _UNPRINTABLE, b" " * len(_STRONG + _WEAK + _UNPRINTABLE))
#: on the token text: the rest of a token after `=` or `:` (`KEY=a:b`, `KEY=<base64>==`)
_AFTER = re.compile(rb"[=:]([^ =:][^ ]*)")
_PERCENT = re.compile(rb"%[0-9A-Fa-f]{2}")
_B64 = re.compile(rb"(?:[A-Za-z0-9+/]{4}){3,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
#: a strong delimiter that may sit inside a spaced value (a passphrase)
_IN = rb"[ \t,;()\[\]{}<>|]"
_SPACED = (
    re.compile(rb'"([^"\n]*' + _IN + rb'[^"\n]*)"'),
    re.compile(rb"'([^'\n]*" + _IN + rb"[^'\n]*)'"),
    re.compile(rb"^[ \t]*[A-Za-z_][A-Za-z0-9_.-]*[ \t]*(?:=|:[ \t])[ \t]*(\S[^\n]*?" + _IN + rb"[^\n]*?\S)[ \t\r]*$",
               re.MULTILINE),
)
#: a file of a few lines may be the secret itself (`/run/secrets/db_password`): its lines are candidates
_SECRET_FILE_LINES = 4
_LINE = re.compile(rb"^[ \t]*(\S[^\n]*?[ \t'\"`,;()\[\]{}<>|][^\n]*?\S)[ \t\r]*$", re.MULTILINE)
_BOUND = re.escape(_STRONG + _WEAK)
_BIN_BOUND = re.escape(_STRONG + _WEAK + _UNPRINTABLE)


class KnownValues:
    """Stored values' fingerprints, with the scan's key. Never holds a value.

    Candidates come from C-speed passes (`bytes.translate` + `split` for tokens and pieces, a few regexes for the
    rest of a token after `=`/`:` and for spaced values); each distinct candidate of a stored length is hashed
    once, in bulk (`core.fingerprints.digester`: no Python frame per candidate), and only a hit is located.
    """

    def __init__(self, prints: Sequence[Fingerprint], key: bytes) -> None:
        algorithms = {fp.algorithm for fp in prints}
        if len(algorithms) > 1:
            raise InvalidInput(f"fingerprints made with different algorithms: {sorted(algorithms)}")
        self._key = key
        self._algorithm = algorithms.pop() if algorithms else HMAC_SHA256
        self._table = {fp.digest: fp.path for fp in prints}
        self._count = len(prints)
        self.lengths = frozenset(fp.length for fp in prints)

    def __len__(self) -> int:
        return self._count

    def find(self, data: bytes) -> list[tuple[int, int, str]]:
        """(start, end, vault path) of every stored value found in `data`, each span once."""
        if not self.lengths:
            return []
        binary = b"\x00" in data[:8192]
        raw, decoded = self._candidates(data, binary)
        values = list(raw | decoded.keys())
        table = self._table
        hits = [(v, table[d]) for v, d in zip(values, digester(self._key, self._algorithm)(values), strict=True)
                if d in table]  # fmt: skip
        found: dict[tuple[int, int], str] = {}
        for value, path in hits:  # rare: locate them
            for text in ({value} if value in raw else set()) | decoded.get(value, set()):
                bound = _BIN_BOUND if binary else _BOUND
                for m in re.finditer(rb"(?<![^%s])%s(?![^%s])" % (bound, re.escape(text), bound), data):
                    found.setdefault(m.span(), path)
        return [(start, end, path) for (start, end), path in found.items()]

    def _candidates(self, data: bytes, binary: bool) -> tuple[set[bytes], dict[bytes, set[bytes]]]:
        """Raw candidates (hashed as they are) and decoded ones (value -> the texts that decode to it)."""
        lengths = self.lengths
        token_text = data.translate(_BIN_TOKENS if binary else _TO_TOKENS)
        tokens = token_text.split()
        pieces = data.translate(_BIN_PIECES if binary else _TO_PIECES).split()
        after = _AFTER.findall(token_text)
        spaced = [t for pattern in (_SPACED[:2] if binary else _SPACED) for t in pattern.findall(data)]
        if not binary and data.count(b"\n", 0, 65536) <= _SECRET_FILE_LINES:
            spaced += _LINE.findall(data)
        # text repeats itself: distinct strings first (in C), then the per-string checks on far fewer
        distinct = set(tokens).union(pieces, after, spaced)
        raw = {t for t in distinct if len(t) in lengths}
        decoded: dict[bytes, set[bytes]] = {}
        longest = max(lengths) * 4 // 3 + 4
        for text in (t for t in distinct if 12 <= len(t) <= longest and len(t) % 4 == 0):
            if _B64.fullmatch(text) and len(value := base64.b64decode(text)) in lengths:
                decoded.setdefault(value, set()).add(text)
        if b"%" in data:
            for text in (t for t in distinct if b"%" in t and _PERCENT.search(t)):
                if len(value := unquote_to_bytes(text)) in lengths:
                    decoded.setdefault(value, set()).add(text)
        return raw, decoded


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
