"""The hot read path (api/hot_read.py) answers exactly what the FastAPI routes answer, case by case: the same
status, body and headers for found, missing, disabled, deleted, destroyed, denied, unauthenticated and sealed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kinko.api.app import create_app
from kinko.api.auth import FailureLimiter
from kinko.api.middleware import RequestGuard
from kinko.core.model import Caller
from kinko.vault import Vault
from tests.api.conftest import keyfile_vault

READER = "name: reader\nrules:\n  - {path: 'app/*', capabilities: [read]}\n"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, Vault, dict[str, str]]]:
    """(client through the hot path, client straight to the FastAPI routes, vault, tokens) over one vault."""
    vault, root = keyfile_vault(tmp_path)
    full = create_app(vault, limiter=FailureLimiter(limit=10_000))
    assert isinstance(full, RequestGuard)
    routes_only = RequestGuard(full.app.app, full.max_body, vault)  # type: ignore[attr-defined]
    caller = vault.authenticate(root)
    _fill(vault, caller)
    tokens = {"root": root, "reader": vault.create_token(caller, policies=["reader"])[0],
              "other": vault.create_token(caller, policies=["default"])[0], "bad": "kinko_not-a-real-token"}
    with TestClient(full, raise_server_exceptions=False) as hot, \
            TestClient(routes_only, raise_server_exceptions=False) as slow:
        yield hot, slow, vault, tokens
    vault.close()


def _fill(vault: Vault, root: Caller) -> None:
    vault.write_policy(root, READER)
    vault.put(root, "app/db", b"v1")
    vault.put(root, "app/db", b"v2")
    vault.kv.write(root, "secret", "app/kv", {"user": "u", "password": "p"}, None)
    vault.kv.write(root, "secret", "app/kv", {"n": 1, "nested": {"a": [1, 2]}}, None)
    vault.kv.write(root, "secret", "app/kv", {"last": "yes"}, None)
    vault.kv.delete_versions(root, "app/kv", [2])
    vault.kv.destroy(root, "app/kv", [1])
    vault.kv.write_metadata(root, "secret", "app/kv", custom_metadata={"owner": "team"})


PATHS = [
    "/v1/secrets/app/db", "/v1/secrets/app/db?version=1", "/v1/secrets/app/db?version=9", "/v1/secrets/app/none",
    "/v1/secrets/app/db?version=x", "/v1/secrets/app/db?version=1&x=2", "/v1/secrets/app/db/", "/v1/secrets/",
    "/v1/secret/data/app/kv", "/v1/secret/data/app/kv?version=1", "/v1/secret/data/app/kv?version=2",
    "/v1/secret/data/app/kv?version=7", "/v1/secret/data/app/none", "/v1/secret/data/app/db",
    "/v1/secret/data/app/kv/", "/v1/secret/data/other/x",
]


def _normal(response: Any) -> tuple[int, Any, dict[str, str]]:
    body = response.json() if response.content else None
    if isinstance(body, dict) and "request_id" in body:
        body["request_id"] = "<id>"
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("x-request-id", "date")}
    return response.status_code, body, headers


@pytest.mark.parametrize("who", ["root", "reader", "other", "bad", None])
def test_every_answer_of_the_hot_path_equals_the_routes(pair: Any, who: str | None) -> None:
    hot, slow, _vault, tokens = pair
    headers = {"X-Vault-Token": tokens[who]} if who else {}
    for path in PATHS:
        assert _normal(hot.get(path, headers=headers)) == _normal(slow.get(path, headers=headers)), path


def test_both_answer_sealed_alike(pair: Any) -> None:
    hot, slow, vault, tokens = pair
    vault.seal(vault.authenticate(tokens["root"]))
    headers = {"X-Vault-Token": tokens["root"]}
    for path in PATHS:
        fast, routed = _normal(hot.get(path, headers=headers)), _normal(slow.get(path, headers=headers))
        assert fast == routed and fast[0] == 503, path


def test_a_hot_read_is_audited_like_a_routed_one(pair: Any, tmp_path: Path) -> None:
    hot, slow, vault, tokens = pair
    vault.enable_audit(tmp_path / "audit.log")
    for client in (hot, slow):
        client.get("/v1/secret/data/app/kv", headers={"X-Vault-Token": tokens["reader"]})
        client.get("/v1/secret/data/app/kv", headers={"X-Vault-Token": tokens["other"]})
    records = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    shapes = [(r["operation"], r["outcome"], r["path"]) for r in records]
    half = len(shapes) // 2
    assert shapes[:half] == shapes[half:] and ("secret.get", "denied", "app/kv") in shapes
    assert "yes" not in (tmp_path / "audit.log").read_text().replace('"outcome"', "")
