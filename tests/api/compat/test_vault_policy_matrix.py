"""HCL policies written through Vault's route: the same token is allowed or denied the same secret through the
native /v1/secrets routes and the KV v2 routes, denials are audited, and the stored policy keeps its MAC."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from kinko.api.app import create_app
from kinko.api.auth import FailureLimiter
from tests.api.conftest import keyfile_vault

#: name -> HCL; every token below holds one of them (plus kinko's implicit `default`)
POLICIES = {
    "reader": 'path "secret/data/team/*" {\n  capabilities = ["read"]\n}\n'
              'path "secret/metadata/team/*" {\n  capabilities = ["read", "list"]\n}\n',
    "writer": 'path "secret/data/team/*" {\n  capabilities = ["create", "read", "update", "patch"]\n}\n'
              'path "secret/metadata/team/*" {\n  capabilities = ["list"]\n}\n',
    "exact": 'path "secret/data/team/db" {\n  capabilities = ["read"]\n}\n'
             'path "secret/+/ops/*" {\n  capabilities = ["read", "update", "delete", "list"]\n}\n',
    "locked": 'path "secret/*" {\n  capabilities = ["create", "read", "update", "delete", "list"]\n}\n'
              'path "secret/data/team/locked" {\n  capabilities = ["deny"]\n}\n',
    "cleaner": 'path "secret/data/team/*" {\n  capabilities = ["delete"]\n}\n'
               'path "secret/undelete/team/*" {\n  capabilities = ["update"]\n}\n'
               'path "secret/destroy/team/*" {\n  capabilities = ["update"]\n}\n'
               'path "secret/metadata/team/*" {\n  capabilities = ["delete"]\n}\n',
}
PATHS = ["team/db", "team/locked", "ops/db", "other/db"]
Send = Callable[[str, str, dict[str, str]], int]


@dataclass
class World:
    client: TestClient
    root: dict[str, str]
    tokens: dict[str, dict[str, str]]
    audit: Path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    vault, token = keyfile_vault(tmp_path)
    vault.enable_audit(tmp_path / "audit.log")
    client = TestClient(create_app(vault, limiter=FailureLimiter(limit=100_000)))
    root = {"X-Vault-Token": token}
    for name, hcl in POLICIES.items():
        assert client.put(f"/v1/sys/policies/acl/{name}", json={"policy": hcl}, headers=root).status_code == 204
    tokens = {}
    for name in POLICIES:
        made = client.post("/v1/auth/token/create", json={"policies": [name]}, headers=root).json()
        tokens[name] = {"X-Vault-Token": made["auth"]["client_token"]}
    yield World(client, root, tokens, tmp_path / "audit.log")
    vault.close()


def fresh(world: World, path: str, state: str = "live") -> None:
    """A secret at `path` with one version, made by root: live, soft-deleted (native) or version-deleted (KV)."""
    c, root = world.client, world.root
    c.delete(f"/v1/secret/metadata/{path}", headers=root)
    c.delete(f"/v1/deleted/{path}", headers=root)
    assert c.post(f"/v1/secret/data/{path}", json={"data": {"k": "v"}}, headers=root).status_code == 200
    if state == "deleted":
        assert c.delete(f"/v1/secrets/{path}", headers=root).status_code < 300
    elif state == "version-deleted":
        assert c.delete(f"/v1/secret/data/{path}", headers=root).status_code == 204


def call(world: World, method: str, url: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
    extra = {"Content-Type": "application/merge-patch+json" if method == "PATCH" else "application/json"}
    content = json.dumps(body).encode() if body is not None else None
    return world.client.request(method, url, content=content, headers={**headers, **extra})


#: operation -> (native (method, url, body, setup), KV (method, url, body, setup)); `{p}` is the kinko path
OPERATIONS: dict[str, tuple[tuple[str, str, Any, str], tuple[str, str, Any, str]]] = {
    "read": (("GET", "/v1/secrets/{p}", None, "live"), ("GET", "/v1/secret/data/{p}", None, "live")),
    "update": (("PUT", "/v1/secrets/{p}", {"value": "w"}, "live"),
               ("POST", "/v1/secret/data/{p}", {"data": {"k": "w"}}, "live")),
    "create": (("PUT", "/v1/secrets/{p}-new", {"value": "w"}, "live"),
               ("POST", "/v1/secret/data/{p}-new", {"data": {"k": "w"}}, "live")),
    "metadata": (("GET", "/v1/versions/{p}", None, "live"), ("GET", "/v1/secret/metadata/{p}", None, "live")),
    "delete": (("DELETE", "/v1/secrets/{p}", None, "live"), ("DELETE", "/v1/secret/data/{p}", None, "live")),
    "recover": (("POST", "/v1/recover/{p}", None, "deleted"),
                ("POST", "/v1/secret/undelete/{p}", {"versions": [1]}, "version-deleted")),
    "purge": (("DELETE", "/v1/deleted/{p}", None, "deleted"),
              ("POST", "/v1/secret/destroy/{p}", {"versions": [1]}, "live")),
}


def outcome(world: World, token: str, path: str, side: tuple[str, str, Any, str]) -> bool:
    """True if allowed (anything but 403)."""
    method, url, body, setup = side
    fresh(world, path, setup)
    world.client.delete(f"/v1/secret/metadata/{path}-new", headers=world.root)
    response = call(world, method, url.format(p=path), world.tokens[token], body)
    assert response.status_code < 500, response.text
    return response.status_code != 403


def test_native_and_kv_agree_for_every_token_path_and_operation(world: World) -> None:
    disagree, allowed = [], set()
    for token in POLICIES:
        for path in PATHS:
            for op, (native, kv) in OPERATIONS.items():
                both = outcome(world, token, path, native), outcome(world, token, path, kv)
                if both[0] != both[1]:
                    disagree.append((token, path, op, both))
                if both[1]:
                    allowed.add((token, path, op))
    assert disagree == []
    # and the matrix says what the policies mean
    assert {("reader", "team/db", "read"), ("reader", "team/db", "metadata"), ("writer", "team/db", "update"),
            ("writer", "team/db", "create"), ("exact", "team/db", "read"), ("exact", "ops/db", "delete"),
            ("locked", "other/db", "read"), ("locked", "team/db", "purge"), ("cleaner", "team/db", "purge"),
            ("cleaner", "team/db", "recover"),
            } <= allowed
    assert not {("reader", "team/db", "update"), ("reader", "other/db", "read"), ("exact", "team/db", "metadata"),
                ("exact", "team/locked", "read"), ("locked", "team/locked", "read"),
                ("locked", "team/locked", "update"), ("cleaner", "team/db", "read"),
                ("writer", "team/db", "delete")} & allowed


def test_list_subkeys_and_patch_agree_with_the_grants(world: World) -> None:
    fresh(world, "team/db")
    c, reader, writer = world.client, world.tokens["reader"], world.tokens["writer"]
    assert c.request("LIST", "/v1/secret/metadata/team", headers=reader).json()["data"]["keys"] == ["db"]
    assert c.get("/v1/secrets-list/team", headers=reader).status_code == 200
    assert c.request("LIST", "/v1/secret/metadata/ops", headers=reader).status_code == 403
    assert c.get("/v1/secret/subkeys/team/db", headers=reader).status_code == 200
    assert call(world, "PATCH", "/v1/secret/data/team/db", writer, {"data": {"x": "1"}}).status_code == 200
    assert call(world, "PATCH", "/v1/secret/data/team/db", reader, {"data": {"x": "1"}}).status_code == 403


def test_a_denial_through_the_kv_route_is_audited(world: World) -> None:
    fresh(world, "team/locked")
    denied = world.client.get("/v1/secret/data/team/locked", headers=world.tokens["locked"])
    assert denied.status_code == 403 and denied.json() == {"errors": ["permission denied"]}
    records = [json.loads(line) for line in world.audit.read_text().splitlines()]
    mine = [r for r in records if r["request_id"] == denied.headers["x-request-id"]]
    assert mine and mine[-1]["outcome"] == "denied" and mine[-1]["path"] == "team/locked"
    assert world.tokens["locked"]["X-Vault-Token"] not in world.audit.read_text()


def test_the_stored_policy_keeps_the_hcl_and_its_mac(world: World) -> None:
    c, root = world.client, world.root
    native = c.get("/v1/sys/policies/reader", headers=root).json()
    assert native["source_hcl"] == POLICIES["reader"]
    assert native["rules"] == [{"path": "team/*", "capabilities": ["read", "list"]}]
    vault = c.app.vault  # type: ignore[attr-defined]  # the RequestGuard in front of everything
    entry = vault._store.get_policy_entry("reader")
    tampered = entry.document.replace("team/*", "*")
    assert tampered != entry.document
    vault._store.put_policy("reader", tampered, 0.0, entry.mac)
    fresh(world, "other/db")  # a tampered document is treated as absent: it grants nothing, not the wider rule
    assert c.get("/v1/secret/data/other/db", headers=world.tokens["reader"]).status_code == 403
    assert c.get("/v1/secret/data/team/db", headers=world.tokens["reader"]).status_code == 403
