"""Policy parsing, validation and matching (prefix, `+`, exact, most specific, deny, union, built-ins)."""

from __future__ import annotations

import pytest

from kinko.access.policy import BUILTINS, CompiledPolicy, PolicyAuthorizer, evaluate, parse_policy
from kinko.core.model import Caller
from kinko.errors import InvalidInput
from kinko.storage.sqlite import SqliteStore

APP = """
name: app-reader
rules:
  - path: "team/app/*"
    capabilities: [read, list]
  - path: "team/app/admin"
    capabilities: [deny]
  - path: "team/+/shared"
    capabilities: [read]
  - path: "team/app/config*"
    capabilities: [update]
"""


def allowed(docs: list[str], capability: str, path: str) -> bool:
    return evaluate([CompiledPolicy(parse_policy(d)) for d in docs], capability, path)


@pytest.mark.parametrize(("capability", "path", "expected"), [
    ("read", "team/app/db", True),            # prefix rule
    ("read", "team/app/x/y/z", True),         # `*` spans segments
    ("list", "team/app", True),               # listing the folder a `P/*` rule covers
    ("read", "team/app", False),              # ...but not reading a secret named exactly `team/app`
    ("read", "team/apple", False),            # `team/app/*` is not `team/app*`
    ("read", "team/app/admin", False),        # deny
    ("list", "team/app/admin", False),        # deny covers every capability
    ("read", "team/web/shared", True),        # `+` = one segment
    ("read", "team/web/x/shared", False),     # ...exactly one
    ("read", "team/shared", False),
    ("update", "team/app/db", False),         # capability not granted
    ("update", "team/app/config-prod", True),
    ("read", "team/app/config-prod", False),  # most specific rule (config*) wins over team/app/*
    ("read", "other/app/db", False),          # deny by default
    ("read", "sys/seal", False),
])
def test_matching_table(capability: str, path: str, expected: bool) -> None:
    assert allowed([APP], capability, path) is expected


def test_exact_beats_prefix_and_longer_prefix_beats_shorter() -> None:
    doc = """
name: p
rules:
  - {path: "a/*", capabilities: [read]}
  - {path: "a/b/*", capabilities: [list]}
  - {path: "a/b/c", capabilities: [update]}
"""
    assert allowed([doc], "read", "a/x")
    assert not allowed([doc], "read", "a/b/x") and allowed([doc], "list", "a/b/x")
    assert allowed([doc], "update", "a/b/c") and not allowed([doc], "list", "a/b/c")


def test_plus_ranks_below_literal_at_the_same_position() -> None:
    doc = """
name: p
rules:
  - {path: "a/+/c", capabilities: [read]}
  - {path: "a/b/+", capabilities: [list]}
"""
    # The first wildcard comes later in a/b/+, so it is the more specific rule for a/b/c.
    assert allowed([doc], "list", "a/b/c") and not allowed([doc], "read", "a/b/c")
    assert allowed([doc], "read", "a/x/c")


def test_union_of_policies_and_deny_in_any_policy_wins() -> None:
    reader = 'name: r\nrules: [{path: "a/*", capabilities: [read]}]'
    writer = 'name: w\nrules: [{path: "a/*", capabilities: [update]}]'
    denier = 'name: d\nrules: [{path: "a/secret", capabilities: [deny]}]'
    assert allowed([reader, writer], "read", "a/x") and allowed([reader, writer], "update", "a/x")
    assert not allowed([reader], "update", "a/x")
    assert not allowed([reader, writer, denier], "read", "a/secret")
    assert allowed([reader, writer, denier], "read", "a/other")


def test_deny_in_a_less_specific_rule_still_wins() -> None:
    doc = """
name: p
rules:
  - {path: "a/*", capabilities: [deny]}
  - {path: "a/b", capabilities: [read]}
"""
    assert not allowed([doc], "read", "a/b")


def test_star_rules_never_reach_into_sys() -> None:
    everything = 'name: e\nrules: [{path: "*", capabilities: [read, list, create, update, delete, sudo]}]'
    assert allowed([everything], "read", "anything/at/all")
    assert not allowed([everything], "sudo", "sys/seal")
    assert not allowed([everything], "create", "sys/policies/x")
    sysadmin = 'name: s\nrules: [{path: "sys/*", capabilities: [sudo]}]'
    assert allowed([sysadmin], "sudo", "sys/seal") and not allowed([sysadmin], "read", "team/x")


def test_builtins() -> None:
    def can(name: str, capability: str, path: str) -> bool:
        return evaluate([CompiledPolicy(BUILTINS[name])], capability, path)

    assert can("secrets-reader", "read", "x/y") and can("secrets-reader", "list", "x")
    assert not can("secrets-reader", "create", "x/y")
    assert can("secrets-officer", "delete", "x/y") and can("secrets-officer", "recover", "x/y")
    assert not can("secrets-officer", "purge", "x/y") and not can("secrets-officer", "sudo", "sys/seal")
    assert can("admin", "purge", "x/y") and can("admin", "sudo", "sys/rotate")
    assert can("admin", "create", "sys/policies/p")
    assert can("default", "read", "sys/tokens/self") and not can("default", "read", "x")


@pytest.mark.parametrize(("document", "message"), [
    ("name: p\nrules:\n  - {path: 'a/*/b', capabilities: [read]}", "rule 0: '*' is only allowed as the last"),
    ("name: p\nrules:\n  - {path: a, capabilities: [read]}\n  - {path: 'a//b', capabilities: [read]}",
     "rule 1: segment 2"),
    ("name: p\nrules:\n  - {path: 'a/+x', capabilities: [read]}", "rule 0: segment 2"),
    ("name: p\nrules:\n  - {path: a, capabilities: [fly]}", "rule 0: unknown capability 'fly'"),
    ("name: p\nrules:\n  - {path: a, capabilities: [deny, read]}", "rule 0: 'deny' cannot be combined"),
    ("name: p\nrules:\n  - {path: a, capabilities: []}", "rule 0: capabilities must be a non-empty list"),
    ("name: p\nrules:\n  - {path: a}", "rule 0: a rule has exactly the keys"),
    ("name: p\nrules:\n  - {path: '', capabilities: [read]}", "rule 0: path must be a non-empty string"),
    ("name: p\nrules: []", "'rules' must be a non-empty list"),
    ("name: Bad Name\nrules: [{path: a, capabilities: [read]}]", "policy name must be"),
    ("name: p\nrules: [{path: a, capabilities: [root]}]", "unknown capability 'root'"),
    ("name: p\nowner: me\nrules: [{path: a, capabilities: [read]}]", "unknown policy field 'owner'"),
    ("name: p\nrules: [", "not valid YAML"),
    ("- just\n- a list", "a policy is a mapping"),
])
def test_validation_names_the_rule_and_problem(document: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_policy(document)
    assert message in info.value.message


def test_round_trip_through_yaml() -> None:
    policy = parse_policy(APP)
    assert parse_policy(policy.to_yaml()) == policy
    with pytest.raises(InvalidInput, match="named 'app-reader', not 'other'"):
        parse_policy(APP, name="other")


def test_authorizer_sees_writes_from_another_store_handle(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "v.db"
    mine, theirs = SqliteStore(path), SqliteStore(path)  # two handles stand in for two processes
    authorize = PolicyAuthorizer(mine)
    caller = Caller("t", frozenset({"app"}), accessor="acc")
    assert not authorize(caller, "read", "team/app/db")  # unknown policy grants nothing
    theirs.put_policy("app", 'name: app\nrules: [{path: "team/app/*", capabilities: [read]}]', 0.0)
    assert authorize(caller, "read", "team/app/db")
    theirs.put_policy("app", 'name: app\nrules: [{path: "team/app/*", capabilities: [list]}]', 1.0)
    assert not authorize(caller, "read", "team/app/db")  # cached policy replaced, not reused
    theirs.delete_policy("app")
    assert not authorize(caller, "list", "team/app/db")
    root = Caller("r", frozenset({"root"}))
    assert authorize(root, "root", "sys/tokens/create") and not authorize(caller, "root", "sys/tokens/create")
