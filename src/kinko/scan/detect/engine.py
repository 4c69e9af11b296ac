"""Detection engines: one multi-pattern pass (hyperscan, or an Aho-Corasick keyword prefilter) then `re`.

Both engines share the confirmation step: the rule's full regex runs only in spans the prefilter selected,
then entropy, placeholder and identifier filters, per-rule overlap dedupe, generic-vs-specific dedupe and
the `kinko:allow` inline comment. Line numbers are computed only for surviving matches.
"""

from __future__ import annotations

import re
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kinko.errors import InvalidInput
from kinko.scan.detect import hscache
from kinko.scan.detect.context import FileContext, file_context
from kinko.scan.detect.entropy import is_placeholder, looks_like_identifier, shannon_entropy
from kinko.scan.detect.judge import judge
from kinko.scan.detect.loader import Rule
from kinko.scan.detect.pathgate import may_match, required_suffixes
from kinko.scan.detect.published import is_published
from kinko.scan.interface import Detector, Match, Severity

ALLOW_MARKER = b"kinko:allow"
Span = tuple[int, int]
#: (rule, start, end, secret) before line numbers are known
#: rule, secret start, secret end, secret, length of the whole regex match (the evidence around the secret)
_Raw = tuple[Rule, int, int, bytes, int]


def merge_windows(ends: Sequence[int], before: int, after: int, size: int) -> list[Span]:
    """Windows [end-before, end+after] around each prefilter end offset, clipped and merged."""
    spans: list[Span] = []
    for end in sorted(ends):
        lo, hi = max(0, end - before), min(size, end + after)
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    return spans


def confirm(rule: Rule, data: bytes, spans: Iterable[Span], *, deployed: bool = False) -> Iterator[_Raw]:
    """Run the rule's full regex inside `spans`; yield the secrets that pass the rule's filters."""
    group = rule.group
    size = len(data)
    for lo, hi in spans:
        for found in rule.regex.finditer(data, lo, hi):
            if found.end() == hi < size:
                # The window's end may have cut a long key short, or let a `$` match a value that goes on: only a
                # match that also holds without the cap is real (re-matched from the same start).
                whole = rule.regex.match(data, found.start())
                if whole is None:
                    continue
                found = whole
            start, end = found.span(group) if group is not None else found.span()
            if start < 0:  # the secret group is optional and did not take part
                continue
            secret = data[start:end]
            if len(secret) < rule.min_length:
                continue
            if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
                continue
            if rule.placeholders and is_placeholder(secret, deployed=deployed):
                continue
            if rule.reject_identifiers and looks_like_identifier(secret):
                continue
            if is_published(secret):
                continue
            yield rule, start, end, secret, found.end() - found.start()


def _dedupe(raw: list[_Raw]) -> list[_Raw]:
    """Drop a match nested in another of the same rule, a second rule on the very same secret (a specific rule
    before a generic one, then the more severe, then the one whose match holds more evidence: a connection string
    over the bare key in it), and generic matches overlapping a specific one."""
    raw.sort(key=lambda r: (r[1], -r[2], r[0].generic, -r[0].severity, -r[4], r[0].id))
    kept: list[_Raw] = []
    last_end: dict[str, int] = {}
    last_span = (-1, -1)
    for item in raw:
        rule, start, end = item[:3]
        if start < last_end.get(rule.id, -1) and end <= last_end[rule.id]:
            continue
        if (start, end) == last_span:
            continue
        last_end[rule.id] = max(end, last_end.get(rule.id, -1))
        last_span = (start, end)
        kept.append(item)
    specific = [(s, e) for r, s, e, *_ in kept if not r.generic]
    if len(specific) == len(kept):
        return kept
    return [k for k in kept if not k[0].generic or not any(s < k[2] and k[1] < e for s, e in specific)]


def _allowed(data: bytes, start: int) -> bool:
    """True when the line holding `start` carries the inline `kinko:allow` comment."""
    line_start = data.rfind(b"\n", 0, start) + 1
    line_end = data.find(b"\n", start)
    return ALLOW_MARKER in data[line_start : line_end if line_end >= 0 else len(data)]


def _path_gate(rules: Sequence[Rule]) -> re.Pattern[str] | None:
    """One regex matching wherever any path rule's regex matches; None means "test each rule".

    Built only when joining with `|` is exact: no capture groups (their numbers would shift) and equal flags.
    """
    patterns = [r.path_regex for r in rules if r.path_regex is not None]
    if not patterns or any(p.groups for p in patterns) or len({p.flags for p in patterns}) != 1:
        return None
    try:
        return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), patterns[0].flags)
    except re.error:  # e.g. an inline global flag that must come first
        return None


def _lazy_context(path: str, data: bytes) -> Callable[[], FileContext]:
    """The file's context, worked out on first use (most buffers have no hit to judge)."""
    found: list[FileContext] = []

    def get() -> FileContext:
        if not found:
            found.append(file_context(path, data))
        return found[0]

    return get


class RuleDetector(Detector):
    """Shared logic: rule bookkeeping, path-gated rules, confirmation and result assembly."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = list(rules)
        self._by_id = {rule.id: rule for rule in self._rules}
        #: rules that apply only to matching file names run `re` over the whole (small) file
        self._path_rules = [r for r in self._rules if r.path_regex is not None]
        self._content_rules = [r for r in self._rules if r.path_regex is None]
        self._path_gate = _path_gate(self._path_rules)
        self._path_suffixes = required_suffixes([r.path_regex for r in self._path_rules if r.path_regex is not None])

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules)

    def rule_info(self, rule_id: str) -> tuple[str, Severity]:
        rule = self._by_id.get(rule_id)
        if rule is None:
            raise InvalidInput(f"unknown rule id {rule_id!r}")
        return rule.title, rule.severity

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled engines hold native state; a worker process rebuilds from the (picklable) rules.
        return (type(self), (self._rules,))

    @abstractmethod
    def _candidates(self, data: bytes) -> Iterable[tuple[Rule, list[Span]]]:
        """Rules worth confirming and the spans of `data` to run their regex in."""

    def scan(self, data: bytes, *, path: str = "") -> list[Match]:
        return self._scan(data, path, deployed=False)

    def scan_deployed(self, data: bytes, *, path: str = "") -> list[Match]:
        return self._scan(data, path, deployed=True)

    def _scan(self, data: bytes, path: str, *, deployed: bool) -> list[Match]:
        if not data:
            return []
        if not isinstance(data, bytes):  # bytearray / memoryview from a source: matches must hold bytes
            data = bytes(data)
        raw: list[_Raw] = []
        for rule, spans in self._candidates(data):
            raw.extend(confirm(rule, data, spans, deployed=deployed))
        # Most files match no path rule: one combined search decides that, instead of one search per rule.
        if (
            path
            and self._path_rules
            and may_match(path, self._path_suffixes)
            and (self._path_gate is None or self._path_gate.search(path))
        ):
            whole = [(0, len(data))]
            for rule in self._path_rules:
                if rule.path_regex is not None and rule.path_regex.search(path):
                    raw.extend(confirm(rule, data, whole, deployed=deployed))
        if not raw:
            return []
        kept = _dedupe(raw)
        check_allow = ALLOW_MARKER in data
        context = _lazy_context(path, data)
        matches: list[Match] = []
        line, offset = 1, 0
        for rule, start, end, secret, _ in kept:  # sorted by start: count newlines incrementally
            confidence = judge(rule, data, start, end, context)
            if confidence is None or (check_allow and _allowed(data, start)):
                continue
            line += data.count(b"\n", offset, start)
            offset = start
            matches.append(Match(rule.id, start, end, secret, line, confidence))
        return matches


class KeywordDetector(RuleDetector):
    """Fallback engine: pyahocorasick over lowercased keywords, then each hit rule's regex on the buffer."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        import ahocorasick

        super().__init__(rules)
        by_keyword: dict[str, list[int]] = {}
        self._always: list[int] = []
        for index, rule in enumerate(self._content_rules):
            if not rule.keywords:
                self._always.append(index)
            for keyword in rule.keywords:
                by_keyword.setdefault(keyword.decode("latin-1"), []).append(index)
        self._automaton = ahocorasick.Automaton()
        for word, indexes in by_keyword.items():
            self._automaton.add_word(word, tuple(indexes))
        self._automaton.make_automaton()

    def _candidates(self, data: bytes) -> Iterator[tuple[Rule, list[Span]]]:
        # latin-1 maps bytes 1:1 to code points, so offsets and binary content survive the decode.
        text = data.lower().decode("latin-1")
        hit: set[int] = set(self._always)
        for _end, indexes in self._automaton.iter(text):
            hit.update(indexes)
        whole = [(0, len(data))]
        for index in sorted(hit):
            yield self._content_rules[index], whole


class HyperscanDetector(RuleDetector):
    """Fast engine: every rule's prefilter in one hyperscan block database; `re` runs in windows around hits.

    The compiled database comes from the cache in `cache_dir` when it holds this exact rule set (see `hscache`;
    None: no cache), and travels to worker processes serialized, so no process compiles the same rules twice.
    """

    def __init__(
        self, rules: Sequence[Rule], *, serialized: bytes | None = None, cache_dir: Path | None = None
    ) -> None:
        import hyperscan

        super().__init__(rules)
        self._hs = hyperscan
        self._cache_dir = cache_dir
        self._db, self._serialized = self._load(self._content_rules, serialized)
        self._local = threading.local()  # hyperscan scratch space is per thread

    def __reduce__(self) -> tuple[Any, ...]:
        # Ship the compiled database with the rules: a worker deserializes it (~0.1 ms) instead of compiling.
        # The cache dir goes along for the rare worker whose hyperscan cannot load it.
        return (_restore_hyperscan, (type(self), self._rules, self._serialized, self._cache_dir))

    def _flags(self, rule: Rule) -> int:
        hs = self._hs
        flags = 0
        if rule.ignore_case:
            flags |= hs.HS_FLAG_CASELESS
        if rule.dotall:
            flags |= hs.HS_FLAG_DOTALL
        if rule.multiline:
            flags |= hs.HS_FLAG_MULTILINE
        return flags

    def _deserialize(self, blob: bytes | None) -> Any:
        if blob is None:
            return None
        try:
            return self._hs.loadb(blob, self._hs.HS_MODE_BLOCK)
        except (self._hs.error, TypeError, ValueError):  # another hyperscan build or CPU wrote it
            return None

    def _load(self, rules: Sequence[Rule], serialized: bytes | None) -> tuple[Any, bytes]:
        """(database, its serialized form): from the caller's bytes, else the user cache, else compiled."""
        db = self._deserialize(serialized)
        if db is not None and serialized is not None:
            return db, serialized
        version = str(getattr(self._hs, "__version__", "?"))
        key = hscache.database_key(version, self._hs.HS_MODE_BLOCK, [(r.prefilter, self._flags(r)) for r in rules])
        cached = hscache.load(key, self._cache_dir)
        db = self._deserialize(cached)
        if db is not None and cached is not None:
            return db, cached
        db = self._compile(rules)
        blob = bytes(self._hs.dumpb(db))
        hscache.store(key, blob, self._cache_dir)  # best effort: a read-only home only costs the compile next time
        return db, blob

    def _compile(self, rules: Sequence[Rule]) -> Any:
        hs = self._hs
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        try:
            db.compile(
                expressions=[r.prefilter for r in rules],
                ids=list(range(len(rules))),
                elements=len(rules),
                flags=[self._flags(r) for r in rules],
            )
        except hs.error:
            for rule in rules:  # find the culprit so the error names a rule
                try:
                    hs.Database(mode=hs.HS_MODE_BLOCK).compile(expressions=[rule.prefilter], flags=0)
                except hs.error as exc:
                    raise InvalidInput(f"rule {rule.id}: prefilter does not compile in hyperscan: {exc}") from None
            raise
        return db

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        return scratch

    def _candidates(self, data: bytes) -> list[tuple[Rule, list[Span]]]:
        hits: list[tuple[int, int]] = []
        self._db.scan(data, match_event_handler=_collect, context=hits, scratch=self._scratch())
        if not hits:  # the common case: nothing else to do for this buffer
            return []
        ends: dict[int, list[int]] = {}
        for pattern_id, end in hits:
            ends.setdefault(pattern_id, []).append(end)
        size = len(data)
        out = []
        for pattern_id, hit_ends in ends.items():
            rule = self._content_rules[pattern_id]
            out.append((rule, merge_windows(hit_ends, rule.lookbehind, rule.window, size)))
        return out


def _collect(pattern_id: int, _start: int, end: int, _flags: int, hits: list[tuple[int, int]]) -> None:
    """Hyperscan match callback: module level with a per-scan list as context (no closure per buffer)."""
    hits.append((pattern_id, end))


def _restore_hyperscan(
    cls: type[HyperscanDetector], rules: Sequence[Rule], serialized: bytes, cache_dir: Path | None = None
) -> HyperscanDetector:
    """Unpickling: rebuild around the shipped database (recompiles only if it does not load here)."""
    return cls(rules, serialized=serialized, cache_dir=cache_dir)
