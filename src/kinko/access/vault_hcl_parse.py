"""Reading a Vault ACL policy (HCL, or Vault's JSON form) into path stanzas, refusing what kinko cannot honour."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kinko.errors import InvalidInput

#: What OpenBao 2.x accepts in `capabilities` (`root` is never writable there either).
VAULT_CAPABILITIES = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny", "scan")
#: The pre-0.9 `policy = "..."` shorthand, expanded as Vault expands it.
_OLD_POLICY = {
    "deny": ("deny",), "read": ("read", "list"), "write": ("create", "read", "update", "delete", "list"),
    "sudo": ("create", "read", "update", "delete", "list", "sudo"),
}
#: Stanza keys Vault knows but kinko cannot honour: each changes what a rule means, so it is never ignored.
REFUSED_KEYS = {
    "allowed_parameters": "parameter constraints cannot be expressed in kinko rules (the grant would be wider)",
    "denied_parameters": "parameter constraints cannot be expressed in kinko rules (the grant would be wider)",
    "required_parameters": "parameter constraints cannot be expressed in kinko rules (the grant would be wider)",
    "min_wrapping_ttl": "response wrapping is not supported",
    "max_wrapping_ttl": "response wrapping is not supported",
    "mfa_methods": "MFA on a path is not supported",
    "control_group": "control groups are not supported",
    "expiration": "rules that expire are not supported",
    "pagination_limit": "list pagination limits are not supported",
    "list_scan_response_keys_filter_path": "list response filters are not supported",
}
_KEYS = ("capabilities", "policy", "comment")
MAX_POLICY_BYTES = 256 * 1024
_WORD = re.compile(r"[a-z_-]{1,16}")


@dataclass(frozen=True)
class Stanza:
    """One `path "..." { ... }` block: the Vault path pattern and its capabilities (old `policy` expanded)."""

    path: str
    capabilities: frozenset[str]


def looks_like_vault_policy(text: str) -> bool:
    """True for HCL `path "..." {` blocks or Vault's JSON form (`{"path": {...}}`); kinko's YAML has `rules:`."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            return False
        return isinstance(doc, dict) and "path" in doc and "rules" not in doc
    for line in stripped.splitlines():
        words = line.strip().split(None, 1)
        if words and words[0] == "path" and len(words) > 1 and words[1].lstrip().startswith(('"', "=", "{")):
            return True
    return False


def parse_stanzas(text: str) -> list[Stanza]:
    """The policy's stanzas in order. Errors say where and why, never quoting the document."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise InvalidInput(f"policy is larger than {MAX_POLICY_BYTES // 1024} KiB")
    stripped = text.lstrip()
    doc, quoted = (_load_json(stripped), False) if stripped.startswith("{") else (_load_hcl(text), True)
    extra = sorted(str(k) for k in doc if k not in ("path", "name"))
    if extra:
        raise InvalidInput(f"unknown top-level key {extra[0][:40]!r} in the policy (Vault allows 'path' and 'name')")
    stanzas = [_stanza(_string(label, "a path", quoted), body, quoted) for label, body in _blocks(doc.get("path"))]
    if not stanzas:
        raise InvalidInput("the policy has no path \"...\" { capabilities = [...] } stanza")
    return stanzas


def _load_json(text: str) -> Mapping[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise InvalidInput("policy is not valid JSON" + (f" (line {line})" if line else "")) from None
    if not isinstance(doc, dict):
        raise InvalidInput("a JSON policy is an object with a 'path' key")
    return doc


def _load_hcl(text: str) -> Mapping[str, Any]:
    import hcl2  # lazy: only policy commands need the parser
    from hcl2.utils import SerializationOptions

    options = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=False)
    try:
        doc = hcl2.loads(text, serialization_options=options)
    except Exception as exc:  # lark and the transformer raise many types; none is shown
        line, column = getattr(exc, "line", None), getattr(exc, "column", None)
        where = f" at line {line}, column {column}" if isinstance(line, int) and line > 0 else ""
        raise InvalidInput(f"policy is not valid HCL{where}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("policy is not valid HCL")
    return doc


def _blocks(raw: object) -> Iterator[tuple[object, object]]:
    """`path "x" { }` blocks (a list of one-key objects) or the object form `path = { "x" = { } }`."""
    if raw is None:
        return
    items = raw if isinstance(raw, list) else [raw]
    for item in items:
        if not isinstance(item, dict):
            raise InvalidInput("each 'path' must be a block: path \"<pattern>\" { capabilities = [...] }")
        yield from item.items()


def _string(value: object, what: str, quoted: bool) -> str:
    """A string as written (HCL's quotes removed, escapes decoded); interpolation and templates are refused."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string")
    text = value
    if quoted:
        if len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
            raise InvalidInput(f"{what} must be a quoted string")
        try:
            text = json.loads(value)
        except ValueError:
            text = value[1:-1]
    if "${" in text or "%{" in text or "{{" in text:
        raise InvalidInput(f"{what} uses interpolation or identity templating, which kinko does not support")
    return text


def _stanza(path: str, body: object, quoted: bool) -> Stanza:
    where = f"path {path[:200]!r}"
    if not isinstance(body, dict):
        raise InvalidInput(f"{where}: the body must be a block {{ capabilities = [...] }}")
    keys = [_unquoted_key(k) for k in body]
    for key in keys:
        if key in REFUSED_KEYS:
            raise InvalidInput(f"{where}: {key} is refused: {REFUSED_KEYS[key]}")
        if key not in _KEYS:
            raise InvalidInput(f"{where}: unknown key {key[:40]!r} (kinko accepts capabilities, policy, comment)")
    values = dict(zip(keys, body.values(), strict=True))
    caps = set(_capabilities(where, values.get("capabilities"), quoted))
    if "policy" in values:
        old = _string(values["policy"], f"{where}: policy", quoted)
        if old not in _OLD_POLICY:
            raise InvalidInput(f"{where}: invalid policy {old[:20]!r} (deny, read, write or sudo)")
        caps |= set(_OLD_POLICY[old])
    if not caps:
        raise InvalidInput(f"{where}: no capabilities")
    return Stanza(path.removeprefix("/"), frozenset({"deny"} if "deny" in caps else caps))


def _unquoted_key(key: object) -> str:
    text = str(key)
    return text[1:-1] if len(text) >= 2 and text.startswith('"') and text.endswith('"') else text


def _capabilities(where: str, raw: object, quoted: bool) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput(f"{where}: capabilities must be a list such as [\"read\", \"list\"]")
    caps = [_string(c, f"{where}: a capability", quoted) for c in raw]
    for cap in caps:
        if cap not in VAULT_CAPABILITIES:
            # named only when it looks like a misspelt capability: a pasted value is never repeated back
            shown = repr(cap) if _WORD.fullmatch(cap) else "a value that is not a capability"
            raise InvalidInput(f"{where}: invalid capability {shown} (known: {', '.join(VAULT_CAPABILITIES)})")
    return caps
