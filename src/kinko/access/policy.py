"""Policies: path rules with capabilities, built-in roles, matching and the storage-backed Authorizer.

Matching, precisely:

* A rule path is a pattern of `/`-separated segments. `+` as a whole segment matches exactly one segment;
  `*` may only be the last character and matches any rest (including `/`), so `team/app/*` is a prefix rule
  and `team/app*` also matches `team/apple`. Everything else is literal.
* `list` on a folder `P` is also granted by a rule matching `P/` (so `team/app/*` lets you list `team/app`).
* System paths (`sys/...`: seal, rotate, rewrap, tokens, policies, audit) are matched only by rules whose
  pattern itself starts with `sys/`, and named-key paths (`transit/...`, Vault's transit paths) only by rules
  starting with `transit/`; a `*` or `+/...` rule written for secrets never reaches into either.
* `deny` in ANY matching rule of ANY of the caller's policies refuses the request, whatever else matches.
* Otherwise each policy contributes the capabilities of its single most specific matching rule, and the
  caller's rights are the union over its policies (plus the implicit `default` policy). Specificity, in order
  (Vault's ordering): (1) the first wildcard (`+` or `*`) comes later; (2) not ending in `*` beats ending in
  `*`; (3) fewer `+` segments; (4) longer pattern; (5) lexicographically larger pattern. An exact pattern
  therefore beats every glob that matches the same path, and a longer prefix beats a shorter one.
* The built-in `root` policy is not evaluated: it allows everything, including root-only operations.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kinko.access.integrity import RecordMac
from kinko.core.model import Caller
from kinko.errors import InvalidInput
from kinko.storage.fresh import FreshCache
from kinko.storage.interface import Store

#: `scan`: keyed fingerprints of the values (never the values) for `kinko scan --known-from-vault`.
SECRET_CAPABILITIES = ("read", "list", "create", "update", "delete", "recover", "purge", "scan")
CAPABILITIES = (*SECRET_CAPABILITIES, "sudo", "deny")
#: Granted only by the built-in `root` policy (never writable in a policy document).
ROOT_CAPABILITY = "root"
ROOT, DEFAULT = "root", "default"
SYS_PREFIX = "sys/"
TRANSIT_PREFIX = "transit/"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
MAX_RULES = 256


@dataclass(frozen=True)
class Rule:
    path: str
    capabilities: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "capabilities": sorted(self.capabilities, key=CAPABILITIES.index)}


@dataclass(frozen=True)
class Policy:
    name: str
    rules: tuple[Rule, ...]
    builtin: bool = False
    #: The Vault policy (HCL or JSON) these rules were translated from, kept as written (kinko.access.vault_hcl).
    source_hcl: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = {"name": self.name, "rules": [r.to_dict() for r in self.rules], "builtin": self.builtin}
        if self.source_hcl is not None:
            doc["source_hcl"] = self.source_hcl
        return doc

    def to_yaml(self) -> str:
        import yaml  # lazy: keeps `kinko secret get` start-up short

        doc: dict[str, Any] = {"name": self.name, "rules": [r.to_dict() for r in self.rules]}
        if self.source_hcl is not None:
            doc["source_hcl"] = self.source_hcl
        return yaml.safe_dump(doc, sort_keys=False)


def _builtin(name: str, *rules: tuple[str, tuple[str, ...]]) -> Policy:
    return Policy(name, tuple(Rule(p, frozenset(c)) for p, c in rules), builtin=True)


_SYS_ADMIN = ("read", "list", "create", "update", "delete", "sudo")
#: Modelled on Key Vault's data-plane roles (Administrator, Secrets Officer, Secrets User / Reader).
BUILTINS: dict[str, Policy] = {
    # Shown for reference only: `root` is never evaluated, it allows everything (including root-only operations).
    ROOT: _builtin(ROOT, ("*", SECRET_CAPABILITIES), ("sys/*", _SYS_ADMIN)),
    "admin": _builtin("admin", ("*", SECRET_CAPABILITIES), ("sys/*", _SYS_ADMIN),
                      ("transit/*", ("read", "list", "create", "update", "delete"))),
    # ... and the KV v2 settings of every secret (cas_required, max_versions: kinko.vault.kv_engine.metadata_path)
    "secrets-officer": _builtin("secrets-officer", ("*", tuple(c for c in SECRET_CAPABILITIES if c != "purge")),
                                ("sys/kv/+/metadata/*", ("update",))),
    "secrets-reader": _builtin("secrets-reader", ("*", ("read", "list"))),
    # Every token holds `default` implicitly: it may look up, renew and revoke itself.
    DEFAULT: _builtin(DEFAULT, ("sys/tokens/self", ("read", "update", "delete"))),
}


# -- parsing and validation ------------------------------------------------------------------------------------
def validate_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput("policy name must be 1-64 characters of a-z, 0-9, '.', '_', '-' (starting alphanumeric)")
    return name


def check_pattern(where: str, path: object) -> str:
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"{where}: path must be a non-empty string")
    if "*" in path[:-1]:
        raise InvalidInput(f"{where}: '*' is only allowed as the last character of the path")
    body = path[:-1] if path.endswith("*") else path
    segments = body.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        # The last segment may be empty ("team/*") or partial ("team/ap*") when the rule ends in '*'.
        if segment == "+" or (last and path.endswith("*") and (not segment or _SEGMENT.fullmatch(segment))):
            continue
        if not _SEGMENT.fullmatch(segment):
            raise InvalidInput(f"{where}: segment {i + 1} of the path is not '+' or [A-Za-z0-9._-]+")
    return path


def _check_capabilities(where: str, caps: object) -> frozenset[str]:
    if not isinstance(caps, list) or not caps or not all(isinstance(c, str) for c in caps):
        raise InvalidInput(f"{where}: capabilities must be a non-empty list of names")
    unknown = sorted(set(caps) - set(CAPABILITIES))
    if unknown:
        raise InvalidInput(f"{where}: unknown capability {unknown[0]!r} (known: {', '.join(CAPABILITIES)})")
    if "deny" in caps and len(set(caps)) > 1:
        raise InvalidInput(f"{where}: 'deny' cannot be combined with other capabilities")
    return frozenset(caps)


def parse_policy(document: str | Mapping[str, Any], *, name: str | None = None) -> Policy:
    """Validate a YAML (or JSON) policy document. Errors name the rule index and the problem."""
    if isinstance(document, str):
        import yaml  # lazy: keeps `kinko secret get` start-up short

        try:
            doc = yaml.safe_load(document)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise InvalidInput(f"policy is not valid YAML{where}") from None
    else:
        doc = document
    if not isinstance(doc, Mapping):
        raise InvalidInput("a policy is a mapping with 'name' and 'rules'")
    extra = sorted(set(doc) - {"name", "rules", "source_hcl"})
    if extra:
        raise InvalidInput(f"unknown policy field {str(extra[0])!r} (expected 'name' and 'rules')")
    source = doc.get("source_hcl")
    if source is not None and not isinstance(source, str):
        raise InvalidInput("source_hcl must be the text of a Vault policy")
    policy_name = validate_name(doc.get("name", name))
    if name is not None and policy_name != name:
        raise InvalidInput(f"policy document is named {policy_name!r}, not {name!r}")
    rules = doc.get("rules")
    if not isinstance(rules, list) or not rules:
        raise InvalidInput(f"policy {policy_name!r}: 'rules' must be a non-empty list")
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"policy {policy_name!r}: at most {MAX_RULES} rules")
    parsed = []
    for index, rule in enumerate(rules):
        where = f"policy {policy_name!r} rule {index}"
        if not isinstance(rule, Mapping) or set(rule) != {"path", "capabilities"}:
            raise InvalidInput(f"{where}: a rule has exactly the keys 'path' and 'capabilities'")
        parsed.append(Rule(check_pattern(where, rule["path"]), _check_capabilities(where, rule["capabilities"])))
    return Policy(policy_name, tuple(parsed), source_hcl=source)


# -- matching ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    regex: re.Pattern[str]
    priority: tuple[int, int, int, int, str]
    namespace: str


def _compile(rule: Rule) -> _Compiled:
    pattern, star = (rule.path[:-1], True) if rule.path.endswith("*") else (rule.path, False)
    parts = ["[^/]+" if seg == "+" else re.escape(seg) for seg in pattern.split("/")]
    regex = re.compile("/".join(parts) + (".*" if star else ""), re.DOTALL)
    wildcards = [i for i, ch in enumerate(rule.path) if ch == "*"]
    wildcards += [m.start() for m in re.finditer(r"(?:^|(?<=/))\+(?=/|$)", rule.path)]
    first = min(wildcards, default=len(rule.path))
    plus = sum(1 for seg in pattern.split("/") if seg == "+")
    priority = (first, 0 if star else 1, -plus, len(rule.path), rule.path)
    return _Compiled(rule, regex, priority, namespace(rule.path))


def namespace(path: str) -> str:
    """Which rules may match a path: "sys", "transit" or "" (secrets)."""
    for prefix in (SYS_PREFIX, TRANSIT_PREFIX):
        if path.startswith(prefix) or path == prefix[:-1]:
            return prefix[:-1]
    return ""


class CompiledPolicy:
    """A policy ready for matching: rules compiled to regexes, ordered most specific first."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._rules = sorted((_compile(r) for r in policy.rules), key=lambda c: c.priority, reverse=True)

    def matches(self, path: str, capability: str) -> list[Rule]:
        """Matching rules, most specific first."""
        space = namespace(path)
        candidates = [path, path + "/"] if capability == "list" and path else [path]
        return [c.rule for c in self._rules
                if c.namespace == space and any(c.regex.fullmatch(p) for p in candidates)]


def evaluate(policies: Iterable[CompiledPolicy], capability: str, path: str) -> bool:
    """Deny by default; any matching deny wins; else union of each policy's most specific matching rule."""
    granted = False
    for policy in policies:
        matched = policy.matches(path, capability)
        if any("deny" in rule.capabilities for rule in matched):
            return False
        if matched and capability in matched[0].capabilities:
            granted = True
    return granted


def verified_policy(store: Store, name: str, macs: Callable[[], RecordMac] | None) -> str | None:
    """A stored policy's document, or None if it is absent or its integrity tag does not verify."""
    entry = store.get_policy_entry(name)
    if entry is None or (macs is not None and not macs().policy_ok(name, entry.document, entry.mac)):
        return None
    return entry.document


# -- the Authorizer ----------------------------------------------------------------------------------------------
class PolicyAuthorizer:
    """`(caller, capability, path) -> bool` over built-in and stored policies.

    Stored policies are cached per process; every call compares the store's policy revision (bumped in the
    same transaction as each policy write), so a write in any process is seen by the next request everywhere.
    """

    def __init__(self, store: Store, macs: Callable[[], RecordMac] | None = None) -> None:
        self._store = store
        self._macs = macs  # the Vault's record tags: a stored policy whose tag fails is treated as absent
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._cache: dict[str, CompiledPolicy] = {}
        self._revisions: FreshCache[int] = FreshCache(store, limit=1)
        self._builtins = {name: CompiledPolicy(p) for name, p in BUILTINS.items() if name != ROOT}

    def invalidate(self) -> None:
        with self._lock:
            self._revision, self._cache = None, {}
            self._revisions.clear()

    def _policies(self, names: Iterable[str]) -> list[CompiledPolicy]:
        revision = self._revisions.get("revision", self._store.policy_revision)  # no SELECT while nothing changed
        with self._lock:
            if revision != self._revision:
                self._revision, self._cache = revision, {}
            out = []
            for name in names:
                compiled = self._builtins.get(name) or self._cache.get(name)
                if compiled is None:
                    document = verified_policy(self._store, name, self._macs)
                    if document is None:
                        continue  # a deleted (or tampered) policy a token still names grants nothing
                    compiled = self._cache[name] = CompiledPolicy(parse_policy(document, name=name))
                out.append(compiled)
            return out

    def __call__(self, caller: Caller, capability: str, path: str) -> bool:
        if ROOT in caller.policies:
            return True
        if capability == ROOT_CAPABILITY:
            return False
        return evaluate(self._policies(sorted(caller.policies | {DEFAULT})), capability, path)
