"""Vault ACL policies translated onto kinko path rules: the same grant through the KV v2 and native APIs.

A KV v2 mount `m` (mount table: name -> kinko prefix) maps `m/<kind>/P` onto the kinko path prefix+P with the
capabilities kinko's KV engine checks for that kind (kinko.vault.kv_engine):

    data      read->read  create->create  update->update  delete->delete   (patch: only beside update)
    metadata  read,list->list  delete->delete+purge;  update->update on sys/kv/<m>/metadata/<prefix+P>
    delete    update->delete     undelete  update->recover     destroy  update->purge
    subkeys   read->read (only beside data read on P: kinko's subkeys read is a read)
    m/config  read->read  update->update  on sys/kv/<m>/config

`sudo` maps to `sudo` and `deny` to `deny` on every kinko path a stanza maps to. A glob or `+` in the kind's
place (`m/*`, `m/+/P`) covers every kind it matches. Token and sys endpoints kinko has, and the transit engine's
paths (one to one), are mapped (ENDPOINTS, PREFIXED); anything else, and every construct whose meaning kinko
cannot keep, is refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kinko.access.policy import MAX_RULES, Policy, Rule, check_pattern, validate_name
from kinko.access.vault_hcl_parse import Stanza, parse_stanzas
from kinko.errors import InvalidInput

DEFAULT_KV_MOUNTS: Mapping[str, str] = {"secret": ""}
CapMap = Mapping[str, tuple[str, ...]]
_DATA: CapMap = {"read": ("read",), "create": ("create",), "update": ("update",), "delete": ("delete",)}
KV_KINDS: Mapping[str, CapMap] = {
    "data": _DATA,
    "metadata": {"read": ("list",), "list": ("list",), "delete": ("delete", "purge")},  # update: _metadata_write
    "delete": {"update": ("delete",)},
    "undelete": {"update": ("recover",)},
    "destroy": {"update": ("purge",)},
    "subkeys": {"read": ("read",)},
}
_CONFIG: CapMap = {"read": ("read",), "update": ("update",)}
#: Vault endpoint -> (kinko path, ((Vault capabilities all needed, kinko capability), ...))
ENDPOINTS: Mapping[str, tuple[str, tuple[tuple[frozenset[str], str], ...]]] = {
    "auth/token/lookup-self": ("sys/tokens/self", ((frozenset({"read"}), "read"),)),
    "auth/token/renew-self": ("sys/tokens/self", ((frozenset({"update"}), "update"),)),
    "auth/token/revoke-self": ("sys/tokens/self", ((frozenset({"update"}), "delete"),)),
    "auth/token/create": ("sys/tokens/create", ((frozenset({"update"}), "create"), (frozenset({"sudo"}), "sudo"))),
    "auth/token/lookup": ("sys/tokens/accessors/*", ((frozenset({"update"}), "read"),)),
    "auth/token/lookup-accessor": ("sys/tokens/accessors/*", ((frozenset({"update"}), "read"),)),
    "auth/token/renew": ("sys/tokens/accessors/*", ((frozenset({"update"}), "update"),)),
    "auth/token/renew-accessor": ("sys/tokens/accessors/*", ((frozenset({"update"}), "update"),)),
    "auth/token/revoke": ("sys/tokens/accessors/*", ((frozenset({"update"}), "delete"),)),
    "auth/token/revoke-accessor": ("sys/tokens/accessors/*", ((frozenset({"update"}), "delete"),)),
    "auth/token/accessors/": ("sys/tokens/accessors", ((frozenset({"list", "sudo"}), "list"),)),
    "sys/policies/acl/": ("sys/policies", ((frozenset({"list"}), "list"),)),
    "sys/policy": ("sys/policies", ((frozenset({"read"}), "list"),)),
    "sys/mounts": ("sys/mounts", ((frozenset({"read"}), "read"),)),
    "sys/seal": ("sys/seal", ((frozenset({"update", "sudo"}), "sudo"),)),
    "sys/rotate": ("sys/rotate", ((frozenset({"update", "sudo"}), "sudo"),)),
}
_POLICY_CAPS: CapMap = {"read": ("read",), "create": ("create",), "update": ("update",), "delete": ("delete",)}
#: Vault prefix -> (kinko prefix, capabilities): `sys/policies/acl/NAME` is kinko's `sys/policies/NAME`.
_TRANSIT_CAPS: CapMap = {cap: (cap,) for cap in ("read", "list", "create", "update", "delete")}
PREFIXED: Mapping[str, tuple[str, CapMap]] = {
    "sys/policies/acl/": ("sys/policies/", _POLICY_CAPS),
    "sys/policy/": ("sys/policies/", _POLICY_CAPS),
    # kinko's key service checks Vault's own transit paths (kinko.vault.keys), so they map one to one
    "transit/": ("transit/", _TRANSIT_CAPS),
}


@dataclass
class _Rules:
    """Kinko rules being built (path -> capabilities, in first-seen order) and the conditions to check."""

    caps: dict[str, set[str]] = field(default_factory=dict)
    data: set[tuple[str, str]] = field(default_factory=set)  # (kinko path, capability) granted by a data stanza
    needs: list[tuple[str, str, str, str]] = field(default_factory=list)  # (path, cap, vault path, why)

    def grant(self, path: str, capabilities: Iterable[str]) -> None:
        self.caps.setdefault(path, set()).update(capabilities)


def translate(text: str, *, name: str, mounts: Mapping[str, str] = DEFAULT_KV_MOUNTS) -> Policy:
    """The kinko policy a Vault ACL policy (HCL or Vault's JSON) grants; `source_hcl` keeps the text."""
    validate_name(name)
    rules = _Rules()
    for stanza in parse_stanzas(text):
        if "scan" in stanza.capabilities:
            raise InvalidInput(f"path {stanza.path[:200]!r}: 'scan' (recursive listing) has no kinko equivalent")
        if not _translate_stanza(stanza, mounts, rules):
            raise InvalidInput(f"path {stanza.path[:200]!r}: {_unknown(stanza.path, mounts)}")
    _check_needs(rules)
    out = [Rule(path, frozenset({"deny"} if "deny" in caps else caps)) for path, caps in rules.caps.items() if caps]
    if not out:
        raise InvalidInput("the policy grants nothing kinko can express (every stanza maps to no capability)")
    if len(out) > MAX_RULES:
        raise InvalidInput(f"the policy translates to {len(out)} kinko rules (at most {MAX_RULES})")
    return Policy(name, tuple(out), source_hcl=text)


def _unknown(path: str, mounts: Mapping[str, str]) -> str:
    first = path.split("/", 1)[0]
    known = ", ".join(sorted(mounts)) or "none"
    return (f"{first[:60]!r} is not a KV v2 mount of this server (mounts: {known}) and the path is not a token or "
            "sys endpoint kinko maps; it is refused rather than ignored")


def _translate_stanza(stanza: Stanza, mounts: Mapping[str, str], rules: _Rules) -> bool:
    """Add what one stanza grants; False if it covers nothing kinko knows."""
    path = stanza.path
    if "+*" in path or ("*" in path[:-1]):
        raise InvalidInput(f"path {path[:200]!r}: '*' may only end a path, and '+*' is not allowed")
    if "+" in path.split("/", 1)[0]:
        raise InvalidInput(f"path {path[:200]!r}: a wildcard in place of the mount is not supported; name the mount")
    covered = False
    for mount, prefix in mounts.items():
        rest = _rest_under(path, mount + "/")
        if rest is not None:
            _kv(stanza, mount, prefix, rest, rules)
            covered = True
    for vault_prefix, (kinko_prefix, caps) in PREFIXED.items():
        rest = _rest_under(path, vault_prefix)
        if rest:
            _grant(rules, stanza, kinko_prefix + rest, caps)
            covered = True
    matcher = _vault_regex(path)
    for endpoint, (kinko_path, needs) in ENDPOINTS.items():
        if matcher.fullmatch(endpoint):
            _grant_all_of(rules, stanza, kinko_path, needs)
            covered = True
    return covered


def _rest_under(path: str, prefix: str) -> str | None:
    """What `path` says below `prefix`: the rest if it starts with it, "*" if it is a glob covering all of it."""
    if path.startswith(prefix):
        return path[len(prefix):]
    if path.endswith("*") and "+" not in path and prefix.startswith(path[:-1]):
        return "*"
    return None


def _vault_regex(path: str) -> re.Pattern[str]:
    star = path.endswith("*")
    body = path[:-1] if star else path
    parts = ["[^/]+" if seg == "+" else re.escape(seg) for seg in body.split("/")]
    return re.compile("/".join(parts) + (".*" if star else ""), re.DOTALL)


def _kv(stanza: Stanza, mount: str, prefix: str, rest: str, rules: _Rules) -> None:
    if _vault_regex(rest).fullmatch("config"):
        _grant(rules, stanza, f"sys/kv/{mount}/config", _CONFIG)
    kind, slash, key = rest.partition("/")
    for name, caps in KV_KINDS.items():
        pattern = _key_pattern(kind, bool(slash), key, name)
        if pattern is None:
            continue
        if not pattern:
            if stanza.capabilities & (set(caps) | {"deny", "sudo"}):
                raise InvalidInput(f"path {stanza.path[:200]!r}: names no secret; kinko cannot grant the mount's "
                                   f"root alone (use {mount}/{name}/* for everything under it)")
            continue
        target = check_pattern(f"path {stanza.path[:200]!r}", prefix + pattern)
        if target == "sys" or target.startswith("sys/"):
            raise InvalidInput(f"path {stanza.path[:200]!r}: kinko keeps sys/ for the vault itself; no secret "
                               "lives there, and the rule would grant system operations")
        _kv_kind(stanza, name, target, caps, rules)
        if name == "metadata":
            _metadata_write(stanza, mount, target, rules)


def _key_pattern(kind: str, slash: bool, key: str, name: str) -> str | None:
    """The key pattern a stanza gives KV kind `name` (None: it does not cover that kind)."""
    if kind in (name, "+"):
        return key if slash else None
    if kind.endswith("*") and not slash and name.startswith(kind[:-1]):
        return "*"
    return None


def _kv_kind(stanza: Stanza, kind: str, target: str, caps: CapMap, rules: _Rules) -> None:
    given = stanza.capabilities
    where = stanza.path[:200]
    if "patch" in given and "update" not in given and kind in ("data", "metadata"):
        raise InvalidInput(f"path {where!r}: 'patch' without 'update' is refused: kinko's patch is an update, so "
                           "it would also allow whole writes")
    if kind == "metadata" and "create" in given and "update" not in given:
        raise InvalidInput(f"path {where!r}: metadata 'create' without 'update' is refused: kinko's metadata "
                           "write is one operation, which also changes existing metadata")
    granted = _grant(rules, stanza, target, caps)
    if kind == "data":
        rules.data.update((target, cap) for cap in granted)
    elif kind == "subkeys" and "read" in granted:
        rules.needs.append((target, "read", stanza.path, "kinko's subkeys needs read, which also reads the values"))


def _metadata_write(stanza: Stanza, mount: str, target: str, rules: _Rules) -> None:
    """Metadata update (and deny) on the settings path kinko's KV engine checks (kv_engine.metadata_path): writing
    a secret's data does not let a token change the settings that guard it, as in Vault."""
    settings = check_pattern(f"path {stanza.path[:200]!r}", f"sys/kv/{mount}/metadata/{target}")
    if "deny" in stanza.capabilities:
        rules.grant(settings, ("deny",))
    elif "update" in stanza.capabilities:
        rules.grant(settings, ("update",))


def _grant(rules: _Rules, stanza: Stanza, target: str, caps: CapMap) -> set[str]:
    """Grant `target` the kinko capabilities `caps` maps the stanza's to (deny stays deny, sudo stays sudo)."""
    given = stanza.capabilities
    if "deny" in given:
        rules.grant(target, ("deny",))
        return set()
    granted = {kinko for cap in given for kinko in caps.get(cap, ())}
    if "sudo" in given:
        granted.add("sudo")
    if granted:
        rules.grant(target, granted)
    return granted


def _grant_all_of(rules: _Rules, stanza: Stanza, target: str, needs: tuple[tuple[frozenset[str], str], ...]) -> None:
    if "deny" in stanza.capabilities:
        rules.grant(target, ("deny",))
        return
    granted = {kinko for wanted, kinko in needs if wanted <= stanza.capabilities}
    if granted:
        rules.grant(target, granted)


def _check_needs(rules: _Rules) -> None:
    for target, cap, vault_path, why in rules.needs:
        if "deny" in rules.caps.get(target, set()) or (target, cap) in rules.data:
            continue
        kind = "update" if cap == "update" else "read"
        raise InvalidInput(f"path {vault_path[:200]!r} is refused: {why}; grant {kind!r} on the matching data/ "
                           f"path too (the same pattern), or leave it out")
