"""Loading the rule set: YAML rule files shipped in `rules/` become validated, compiled `Rule` objects."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from kinko.errors import InvalidInput
from kinko.scan.interface import Severity

#: libyaml's safe loader parses the shipped rules ~10x faster than the pure-Python one (40 ms per process)
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: regex group holding the secret when a rule does not name one
_VALUE_GROUP = "secret"
_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_KNOWN_KEYS = frozenset(
    {
        "id", "title", "description", "severity", "regex", "prefilter", "keywords", "secret_group",
        "entropy", "path_regex", "ignore_case", "dotall", "multiline", "generic", "placeholders",
        "window", "lookbehind", "min_length", "reject_identifiers", "assignment", "in_docs",
        "checksum", "context", "value",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One detection rule. `regex` is authoritative; `prefilter` is the cheaper pattern hyperscan runs.

    The regex is compiled on first use: most rules never reach the confirm step in a given process (each
    worker only confirms rules whose prefilter hit), and compiling all of them cost ~10 ms per start.
    """

    id: str
    title: str
    severity: Severity
    family: str
    pattern: bytes = field(repr=False)  # source of `regex`
    prefilter: bytes = field(repr=False)
    regex_flags: int = 0
    keywords: tuple[bytes, ...] = ()
    description: str = ""
    #: as declared; `group` is the one used (the `secret` named group when none is declared)
    secret_group: str | int | None = None
    entropy: float | None = None
    path_regex: re.Pattern[str] | None = None
    ignore_case: bool = False
    dotall: bool = False
    multiline: bool = False
    #: generic rules yield to a specific rule that matched an overlapping span
    generic: bool = False
    #: drop secrets that look like placeholders (changeme, ${VAR}, <token>, ...)
    placeholders: bool = True
    #: bytes after / before a prefilter hit's end offset in which the full regex is run
    window: int = 1024
    lookbehind: int = 256
    min_length: int = 1
    #: drop values that read as code (`self.password`, `get_token`) or names (`my-db-secret`)
    reject_identifiers: bool = False
    #: a `key = value` rule: the hit is judged by its key, syntax and value shape (`judge.py`)
    assignment: bool = False
    #: a hit in documentation, an example or an API model: "low" (reported, low confidence) or "drop"
    in_docs: str = "low"
    #: a format proof from `checksums.CHECKSUMS` the secret must pass (or else be of low confidence / dropped)
    checksum: str | None = None

    @functools.cached_property
    def regex(self) -> re.Pattern[bytes]:
        return re.compile(self.pattern, self.regex_flags)

    @functools.cached_property
    def group(self) -> str | int | None:
        """The regex group holding the secret; None = the whole match."""
        if self.secret_group is not None:
            return self.secret_group
        return _VALUE_GROUP if _VALUE_GROUP in self.regex.groupindex else None


#: `key <op> value` in the assignment syntaxes of common languages and config formats: `k = v`, `k: v`, `k := v`,
#: make's `?=` `::=` `:::=`, PHP `.=` and `$a["k"] =`, `=>`, Go `var k string = v`, `setProperty("K", "v")`,
#: `<k>v</k>` (also over lines), a YAML key nested under the vendor's (`discord:\n  secret: v`), quoted with
#: ' " ` or JSON-escaped \" — the shape every `context` rule is built on
_ASSIGN = (
    r"[A-Za-z0-9_.-]{0,30}"
    r"(?::[ \t]*\r?\n[ \t]+[A-Za-z0-9_.-]{1,30})?"  # vendor:\n  key: v
    r"(?:\\?[\"'`][ \t]*,[ \t]*\\?[\"'`]|(?:\\?[\"'`])?\]?"  # setProperty("K", "v") | `"]`, a quote, or none:
    r"(?:>|(?:[ \t]+(?:string|String|str|&str|char\s*\*))?\s*(?::{1,3}=|[?+.!]=|=>|[:=])))"  # <k>v | typed = v
    r"\s*(?:\\?[\"'`])?"
)
_VALUE_END = r"(?:[\"'`;,\s)\]}<\\]|$)"
#: a lookahead or lookbehind in a `value` (`(?!aio_)`): hyperscan has none, so the prefilter goes without it
_LOOKAROUND = re.compile(r"\(\?<?[=!](?:[^()\\]|\\.)*\)")


def context_regex(context: list[str], value: str) -> str:
    """The regex of a `context` rule: one of the vendor words, an assignment, then the value.

    For formats without a prefix (a Discord client secret is 32 plain characters) the vendor's name in the key is
    the evidence; the value pattern alone would match half of any codebase.
    """
    words = "|".join(re.escape(w) for w in context)
    return f"(?i:{words}){_ASSIGN}(?P<{_VALUE_GROUP}>{value}){_VALUE_END}"


def _source(spec: dict[str, Any], where: str) -> tuple[str, str]:
    """A rule's regex and prefilter: given as `regex` (and `prefilter`), or built from `context` + `value`."""
    if "context" not in spec:
        source = str(_require(spec, "regex", where))
        return source, str(spec.get("prefilter", source))
    context, value = spec["context"], str(_require(spec, "value", where))
    if "regex" in spec or not isinstance(context, list) or not all(isinstance(w, str) and w for w in context):
        raise InvalidInput(f"rule {where}: context must be a list of words, given with value and without regex")
    prefilter = spec.get("prefilter") or context_regex(context, _LOOKAROUND.sub("", value))
    return context_regex(context, value), str(prefilter)


def _flags(spec: dict[str, Any]) -> int:
    flags = 0
    if spec.get("ignore_case"):
        flags |= re.IGNORECASE
    if spec.get("dotall"):
        flags |= re.DOTALL
    if spec.get("multiline"):
        flags |= re.MULTILINE
    return flags


def _in_docs(spec: dict[str, Any], where: str) -> str:
    value = str(spec.get("in_docs", "low"))
    if value not in ("low", "drop"):
        raise InvalidInput(f"rule {where}: in_docs must be 'low' or 'drop'")
    return value


def _checksum(spec: dict[str, Any], where: str) -> str | None:
    from kinko.scan.detect.checksums import CHECKSUMS

    name = spec.get("checksum")
    if name is not None and name not in CHECKSUMS:
        raise InvalidInput(f"rule {where}: unknown checksum {name!r}; known: {sorted(CHECKSUMS)}")
    return None if name is None else str(name)


def _require(spec: dict[str, Any], key: str, where: str) -> Any:
    if key not in spec:
        raise InvalidInput(f"rule {where}: missing required field {key!r}")
    return spec[key]


def parse_rule(spec: dict[str, Any], family: str, *, compile_now: bool = True) -> Rule:
    """Validate one rule mapping from a rules file; errors name the rule and the field.

    `compile_now=False` (the shipped rules, which the test suite compiles) leaves the regex to its first use.
    """
    rule_id = str(_require(spec, "id", family))
    where = f"{family}/{rule_id}"
    if not _ID_RE.match(rule_id):
        raise InvalidInput(f"rule {where}: id must be lowercase words joined by '-'")
    unknown = set(spec) - _KNOWN_KEYS
    if unknown:
        raise InvalidInput(f"rule {where}: unknown fields {sorted(unknown)}")
    try:
        severity = Severity.parse(str(_require(spec, "severity", where)))
    except ValueError as exc:
        raise InvalidInput(f"rule {where}: {exc}") from None
    source, prefilter = _source(spec, where)
    try:
        if compile_now:
            re.compile(source.encode(), _flags(spec))  # `re` caches it: the first use does not compile again
        path_regex = re.compile(spec["path_regex"]) if spec.get("path_regex") else None
    except re.error as exc:
        raise InvalidInput(f"rule {where}: bad regex: {exc}") from None
    if not all(isinstance(k, str) for k in spec.get("keywords", ())):
        raise InvalidInput(f"rule {where}: keywords must be strings (quote one that ends in ':')")
    default_keywords = spec.get("context", ())  # a context rule cannot match without one of its words
    keywords = tuple(k.encode("latin-1").lower() for k in spec.get("keywords", default_keywords))
    return Rule(
        id=rule_id,
        title=str(_require(spec, "title", where)),
        severity=severity,
        family=family,
        pattern=source.encode(),
        prefilter=prefilter.encode(),
        regex_flags=_flags(spec),
        keywords=keywords,
        description=str(spec.get("description", "")),
        secret_group=spec.get("secret_group"),
        entropy=float(spec["entropy"]) if spec.get("entropy") is not None else None,
        path_regex=path_regex,
        ignore_case=bool(spec.get("ignore_case", False)),
        dotall=bool(spec.get("dotall", False)),
        multiline=bool(spec.get("multiline", False)),
        generic=bool(spec.get("generic", False)),
        placeholders=bool(spec.get("placeholders", True)),
        window=int(spec.get("window", 1024)),
        lookbehind=int(spec.get("lookbehind", 256)),
        min_length=int(spec.get("min_length", 1)),
        reject_identifiers=bool(spec.get("reject_identifiers", False)),
        assignment=bool(spec.get("assignment", False)),
        in_docs=_in_docs(spec, where),
        checksum=_checksum(spec, where),
    )


def parse_rules_text(text: str, family: str, *, compile_now: bool = True) -> list[Rule]:
    """Rules from one YAML document: a top-level `rules:` list."""
    doc = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader, only the C one when available
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise InvalidInput(f"rules file {family}: expected a mapping with a 'rules' list")
    return [parse_rule(spec, family, compile_now=compile_now) for spec in doc["rules"]]


def load_rules() -> list[Rule]:
    """Every rule shipped in the package, in file then declaration order. Ids are unique."""
    rules: list[Rule] = []
    folder = resources.files("kinko.scan.detect") / "rules"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            family = entry.name[: -len(".yaml")]
            rules.extend(parse_rules_text(entry.read_text(encoding="utf-8"), family, compile_now=False))
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise InvalidInput(f"rule {rule.family}/{rule.id}: duplicate rule id")
        seen.add(rule.id)
    return rules
