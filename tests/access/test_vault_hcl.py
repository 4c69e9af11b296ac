"""Vault HCL policies -> kinko rules: every KV mapping, globs, deny, token/sys endpoints, and every refusal."""

from __future__ import annotations

import pytest

from kinko.access.policy import Policy, parse_policy
from kinko.access.vault_hcl import translate
from kinko.access.vault_hcl_parse import looks_like_vault_policy
from kinko.errors import InvalidInput

Rules = dict[str, set[str]]


def rules(hcl: str, **mounts: str) -> Rules:
    policy = translate(hcl, name="p", mounts=mounts or {"secret": ""})
    return {r.path: set(r.capabilities) for r in policy.rules}


def stanza(path: str, *caps: str) -> str:
    listed = ", ".join(f'"{c}"' for c in caps)
    return f'path "{path}" {{\n  capabilities = [{listed}]\n}}\n'


def refused(hcl: str, *words: str) -> str:
    with pytest.raises(InvalidInput) as info:
        translate(hcl, name="p")
    for word in words:
        assert word in info.value.message, info.value.message
    return info.value.message


@pytest.mark.parametrize(("path", "caps", "expected"), [
    ("secret/data/team/*", ("read",), {"team/*": {"read"}}),
    ("secret/data/team/db", ("create", "update", "patch", "delete"), {"team/db": {"create", "update", "delete"}}),
    ("secret/data/team/db", ("list",), None),  # LIST on data/ means nothing in KV v2: no grant
    ("secret/metadata/team/*", ("read",), {"team/*": {"list"}}),
    ("secret/metadata/team/*", ("list",), {"team/*": {"list"}}),
    ("secret/metadata/team/*", ("delete",), {"team/*": {"delete", "purge"}}),
    # the settings that guard the data (cas_required, max_versions, ...) sit on their own path, as in Vault
    ("secret/metadata/team/*", ("update",), {"sys/kv/secret/metadata/team/*": {"update"}}),
    ("secret/delete/team/*", ("update",), {"team/*": {"delete"}}),
    ("secret/undelete/team/*", ("update",), {"team/*": {"recover"}}),
    ("secret/destroy/team/*", ("update",), {"team/*": {"purge"}}),
    ("secret/delete/team/*", ("create", "read"), None),  # Vault checks update there, nothing else
    ("secret/config", ("read", "update"), {"sys/kv/secret/config": {"read", "update"}}),
    ("secret/config", ("create",), None),  # Vault's config write checks update
    ("secret/data/team/+/db", ("read",), {"team/+/db": {"read"}}),
    ("secret/data/team/app*", ("read",), {"team/app*": {"read"}}),
    ("/secret/data/team/db", ("read",), {"team/db": {"read"}}),  # a leading '/' is dropped, as Vault does
    ("secret/data/team/db", ("read", "sudo"), {"team/db": {"read", "sudo"}}),
])
def test_each_kv_kind_maps_to_what_the_kv_engine_checks(path: str, caps: tuple[str, ...],
                                                         expected: Rules | None) -> None:
    if expected is None:
        refused(stanza(path, *caps), "grants nothing")
    else:
        assert rules(stanza(path, *caps)) == expected


def test_a_glob_or_plus_in_the_kind_place_is_the_union_of_the_kinds() -> None:
    everything = stanza("secret/*", "create", "read", "update", "patch", "delete", "list")
    assert rules(everything) == {"sys/kv/secret/config": {"read", "update"},
                                 "*": {"create", "read", "update", "delete", "list", "purge", "recover"},
                                 "sys/kv/secret/metadata/*": {"update"}}
    assert rules(stanza("secret/+/team/db", "read")) == {"team/db": {"read", "list"}}  # data + metadata + subkeys
    assert rules(stanza("secret/d*", "update")) == {"*": {"update", "delete", "purge"}}  # data, delete, destroy
    assert rules(stanza("sec*", "read")) == rules(stanza("secret/*", "read"))


def test_transit_paths_map_one_to_one() -> None:
    hcl = stanza("transit/encrypt/app", "update") + stanza("transit/keys/*", "read", "list")
    assert rules(hcl) == {"transit/encrypt/app": {"update"}, "transit/keys/*": {"read", "list"}}
    assert rules(stanza("transit/decrypt/app", "deny")) == {"transit/decrypt/app": {"deny"}}


def test_mount_prefixes_and_several_mounts() -> None:
    hcl = stanza("apps/data/web/*", "read") + stanza("secret/data/db", "read")
    assert rules(hcl, secret="", apps="apps/") == {"apps/web/*": {"read"}, "db": {"read"}}
    assert rules(stanza("apps/config", "read"), apps="apps/") == {"sys/kv/apps/config": {"read"}}


def test_stanzas_on_one_kinko_path_merge_and_deny_wins_on_every_path_it_maps_to() -> None:
    hcl = stanza("secret/data/team/*", "read") + stanza("secret/metadata/team/*", "list")
    assert rules(hcl) == {"team/*": {"read", "list"}}
    denied = hcl + stanza("secret/metadata/team/*", "deny")
    assert rules(denied) == {"team/*": {"deny"}, "sys/kv/secret/metadata/team/*": {"deny"}}
    assert rules(stanza("secret/*", "deny")) == {"sys/kv/secret/config": {"deny"}, "*": {"deny"},
                                                 "sys/kv/secret/metadata/*": {"deny"}}
    old_style = 'path "secret/data/a/*" {\n  policy = "deny"\n}\n'
    assert rules(old_style) == {"a/*": {"deny"}}


def test_old_policy_shorthand_expands_as_vault_does() -> None:
    assert rules('path "secret/data/a/*" {\n  policy = "read"\n}\n') == {"a/*": {"read"}}
    assert rules('path "secret/metadata/a/*" {\n  policy = "read"\n}\n') == {"a/*": {"list"}}
    refused('path "secret/data/a" {\n  policy = "everything"\n}\n', "invalid policy")


@pytest.mark.parametrize(("path", "caps", "kinko"), [
    ("auth/token/lookup-self", ("read",), {"sys/tokens/self": {"read"}}),
    ("auth/token/renew-self", ("update",), {"sys/tokens/self": {"update"}}),
    ("auth/token/revoke-self", ("update",), {"sys/tokens/self": {"delete"}}),
    ("auth/token/create", ("update",), {"sys/tokens/create": {"create"}}),
    ("auth/token/create", ("update", "sudo"), {"sys/tokens/create": {"create", "sudo"}}),
    ("auth/token/lookup", ("update",), {"sys/tokens/accessors/*": {"read"}}),
    ("auth/token/revoke-accessor", ("update",), {"sys/tokens/accessors/*": {"delete"}}),
    ("auth/token/accessors/", ("list", "sudo"), {"sys/tokens/accessors": {"list"}}),
    ("sys/policies/acl/team-*", ("read", "update"), {"sys/policies/team-*": {"read", "update"}}),
    ("sys/policies/acl/*", ("list",), {"sys/policies": {"list"}}),
    ("sys/policy/app", ("create", "delete"), {"sys/policies/app": {"create", "delete"}}),
    ("sys/policy", ("read",), {"sys/policies": {"list"}}),
    ("sys/mounts", ("read",), {"sys/mounts": {"read"}}),
    ("sys/seal", ("update", "sudo"), {"sys/seal": {"sudo"}}),
    ("auth/token/*", ("read",), {"sys/tokens/self": {"read"}}),
])
def test_token_and_sys_endpoints_kinko_has(path: str, caps: tuple[str, ...], kinko: Rules) -> None:
    assert rules(stanza(path, *caps)) == kinko


def test_sys_seal_needs_both_update_and_sudo_as_in_vault() -> None:
    refused(stanza("sys/seal", "sudo"), "grants nothing")
    refused(stanza("auth/token/accessors/", "list"), "grants nothing")


@pytest.mark.parametrize(("hcl", "words"), [
    (stanza("pki/issue/web", "update"), ("'pki' is not a KV v2 mount", "refused rather than ignored")),
    (stanza("sys/capabilities-self", "update"), ("not a token or sys endpoint",)),
    (stanza("cubbyhole/*", "read"), ("'cubbyhole' is not a KV v2 mount",)),
    (stanza("+/data/*", "read"), ("wildcard in place of the mount",)),
    (stanza("secret/data/a*b", "read"), ("'*' may only end a path",)),
    (stanza("secret/data/a/+*", "read"), ("'+*'",)),
    (stanza("secret/metadata/", "list"), ("names no secret", "secret/metadata/*")),
    (stanza("secret/data/sys/*", "read"), ("sys/",)),
    (stanza("secret/data/a b", "read"), ("path 'secret/data/a b'",)),
    (stanza("secret/metadata/team/*", "scan"), ("'scan'",)),
    (stanza("secret/data/a", "patch"), ("'patch' without 'update'",)),
    (stanza("secret/metadata/a", "create"), ("metadata 'create' without 'update'",)),
    (stanza("secret/subkeys/a/*", "read"), ("subkeys needs read",)),
    (stanza("secret/data/a", "root"), ("invalid capability 'root'",)),
    ('path "secret/data/{{identity.entity.id}}/*" { capabilities = ["read"] }', ("templating",)),
    ('path "secret/data/${var.x}" { capabilities = ["read"] }', ("interpolation",)),
    ('name = "x"\nother = "y"\n', ("unknown top-level key 'other'",)),
    ('name = "x"\n', ("no path",)),
    ('path "secret/data/a" {\n  capabilities = ["read"]\n  colour = "blue"\n}\n', ("unknown key 'colour'",)),
    ('path "secret/data/a" {\n  capabilities = "read"\n}\n', ("must be a list",)),
])
def test_refusals_name_the_path_and_the_reason(hcl: str, words: tuple[str, ...]) -> None:
    refused(hcl, *words)


@pytest.mark.parametrize("key", ["allowed_parameters", "denied_parameters", "required_parameters",
                                 "min_wrapping_ttl", "max_wrapping_ttl", "mfa_methods", "control_group",
                                 "expiration", "pagination_limit", "list_scan_response_keys_filter_path"])
def test_stanza_keys_that_change_meaning_are_refused_never_ignored(key: str) -> None:
    value = {"allowed_parameters": '{ "*" = [] }', "denied_parameters": '{ "x" = [] }',
             "required_parameters": '["x"]', "mfa_methods": '["m"]', "control_group": '{ ttl = "1h" }',
             "pagination_limit": "10"}.get(key, '"1h"')
    hcl = f'path "secret/data/a" {{\n  capabilities = ["read"]\n  {key} = {value}\n}}\n'
    message = refused(hcl, key, "path 'secret/data/a'")
    assert "refused" in message


def test_the_matching_data_grant_makes_subkeys_exact_and_metadata_update_is_its_own() -> None:
    hcl = stanza("secret/data/a/*", "read", "update") + stanza("secret/metadata/a/*", "update", "create", "list") \
        + stanza("secret/subkeys/a/*", "read")
    assert rules(hcl) == {"a/*": {"read", "update", "list"}, "sys/kv/secret/metadata/a/*": {"update"}}
    # data update alone no longer lets a token change the settings that guard the data (Vault's rule too)
    assert rules(stanza("secret/data/a/*", "update")) == {"a/*": {"update"}}


@pytest.mark.parametrize("bad", [
    'path "secret/data/a" {\n  capabilities = ["read"\n',
    'path "secret/data/a" { capabilities = ["read"] } }',
    '{"path": {"secret/data/a": ',
    'path "secret/data/a" {\n  capabilities = [hunter2-VALUE-9f8e]\n}\n',
])
def test_bad_documents_give_a_clear_error_without_echoing_the_text(bad: str) -> None:
    message = refused(bad)
    assert "hunter2" not in message and "VALUE" not in message
    assert message.startswith(("policy is not valid", "path 'secret/data/a'")), message


def test_a_pasted_value_as_a_capability_is_not_repeated_back() -> None:
    message = refused(stanza("secret/data/a", "s3cr3t-Token-Value!"), "invalid capability")
    assert "s3cr3t" not in message
    assert "'raed'" in refused(stanza("secret/data/a", "raed"))  # a misspelling is named


def test_vault_json_policies_and_detection() -> None:
    doc = '{"path": {"secret/data/a/*": {"capabilities": ["read"]}, "secret/metadata/a/*": {"capabilities": ["list"]}}}'
    assert rules(doc) == {"a/*": {"read", "list"}}
    assert looks_like_vault_policy(doc) and looks_like_vault_policy(stanza("secret/data/a", "read"))
    assert looks_like_vault_policy('# c\npath "x" {\n}\n')
    assert not looks_like_vault_policy("name: app\nrules:\n  - {path: 'a/*', capabilities: [read]}\n")
    assert not looks_like_vault_policy('{"name": "app", "rules": []}')


def test_the_text_is_kept_and_survives_the_stored_yaml_document() -> None:
    hcl = '# team access\npath "secret/data/team/*" {\n  capabilities = ["read"]   # "quoted": yes\n}\n\t\n'
    policy = translate(hcl, name="team")
    assert policy.source_hcl == hcl
    stored = parse_policy(policy.to_yaml(), name="team")
    assert stored == policy and stored.source_hcl == hcl
    assert parse_policy("name: n\nrules:\n  - {path: a, capabilities: [read]}\n").source_hcl is None
    with pytest.raises(InvalidInput, match="source_hcl"):
        parse_policy({"name": "n", "rules": [{"path": "a", "capabilities": ["read"]}], "source_hcl": 3})


def test_policy_names_are_checked() -> None:
    with pytest.raises(InvalidInput, match="policy name"):
        translate(stanza("secret/data/a", "read"), name="Not A Name")
    assert isinstance(translate(stanza("secret/data/a", "read"), name="ok"), Policy)
