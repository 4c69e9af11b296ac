"""Every request that reaches the API leaves an audit record with its outcome — including the ones refused before
any vault operation ran — and token lookup answers an unknown token exactly like one the caller may not see."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kinko.api.app import create_app
from kinko.api.auth import FailureLimiter
from kinko.vault import Caller, Vault
from tests.api.conftest import keyfile_vault


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[tuple[Vault, str, TestClient, Path]]:
    vault, root = keyfile_vault(tmp_path)
    log = tmp_path / "audit.log"
    vault.enable_audit(log)
    with TestClient(create_app(vault, limiter=FailureLimiter(limit=10_000)), raise_server_exceptions=False) as c:
        yield vault, root, c, log
    vault.close()


def _records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_every_probe_leaves_a_record_with_its_outcome(audited: tuple[Vault, str, TestClient, Path]) -> None:
    _, root, c, log = audited
    auth = {"X-Kinko-Token": root}
    probes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/secrets/a/b", {}),  # no token
        ("GET", "/v1/secrets/a/b",  # a token that is not ASCII
         {"headers": {"X-Kinko-Token": ("kinko_s_\u00e9" + "A" * 42).encode("latin-1")}}),
        ("GET", "/v1/secrets/a/%2e%2e/b", {"headers": auth}),  # a bad path
        ("PUT", "/v1/secrets/a/b", {"headers": auth, "content": b"{not json"}),  # a body that is not JSON
        ("PUT", "/v1/secrets/a/b", {"headers": auth, "json": {"value": 5}}),  # the wrong type (422 in FastAPI)
        ("PUT", "/v1/sys/policies/p", {"headers": auth, "json": {"rules": [{"path": "x", "capabilities": ["fly"]}]}}),
        ("POST", "/v1/auth/token/lookup", {"headers": auth, "json": {"token": "kinko_s_" + "B" * 43}}),
        ("GET", "/v1/no-such-route", {"headers": auth}),
        ("PUT", "/v1/secrets/a/b", {"headers": auth, "content": b'{"value": "\\udfff"}'}),  # not Unicode
        ("GET", "/v1/secrets/a/b", {"headers": {"Authorization": "Bearer "}}),  # an empty bearer token
        ("DELETE", "/v1/sys/health", {}),  # a method the route does not have
    ]
    for method, url, options in probes:
        before = len(_records(log)) if log.exists() else 0
        response = c.request(method, url, **options)
        assert response.status_code >= 400, (method, url)
        new = _records(log)[before:]
        assert new, f"{method} {url} ({response.status_code}) left no audit record"
        outcomes = {r["outcome"] for r in new}
        assert outcomes != {"allowed"} and root not in log.read_text(), (method, url, outcomes)


def test_polled_status_routes_are_not_audited(audited: tuple[Vault, str, TestClient, Path]) -> None:
    _, _, c, log = audited
    for url in ("/v1/sys/health", "/v1/sys/seal-status", "/v1/openapi.json"):
        assert c.get(url).status_code == 200
    assert not log.exists() or log.read_text() == ""


def test_a_request_that_cannot_be_audited_is_not_answered(audited: tuple[Vault, str, TestClient, Path]) -> None:
    _, root, c, log = audited
    c.put("/v1/secrets/a/b", json={"value": "v"}, headers={"X-Kinko-Token": root})
    log.unlink()
    log.mkdir()  # the audit file can no longer be written
    refused = c.get("/v1/secrets/a/%2e%2e/b", headers={"X-Kinko-Token": root})  # refused before any operation ran
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "audit_failed"
    read = c.get("/v1/secrets/a/b", headers={"X-Kinko-Token": root})
    assert read.status_code == 503 and read.json().get("value") != "v"  # fail closed: no record, no value
    shutil.rmtree(log)


def test_seal_works_while_the_audit_sink_is_broken(audited: tuple[Vault, str, TestClient, Path]) -> None:
    vault, root, c, log = audited
    c.put("/v1/secrets/a/b", json={"value": "v"}, headers={"X-Kinko-Token": root})
    log.unlink()
    log.mkdir()
    assert c.post("/v1/sys/seal", headers={"X-Kinko-Token": root}).status_code == 204  # the emergency brake
    assert vault.status().sealed
    assert c.get("/v1/secrets/a/b", headers={"X-Kinko-Token": root}).status_code == 503


def test_token_lookup_answers_unknown_and_unauthorised_alike(audited: tuple[Vault, str, TestClient, Path]) -> None:
    vault, _, c, log = audited
    mine, _ = vault.create_token(Caller.local_operator(), policies=["default"])
    other, _ = vault.create_token(Caller.local_operator(), policies=["default"])
    unknown = c.post("/v1/auth/token/lookup", json={"token": "kinko_s_" + "C" * 43}, headers={"X-Kinko-Token": mine})
    theirs = c.post("/v1/auth/token/lookup", json={"token": other}, headers={"X-Kinko-Token": mine})
    assert unknown.status_code == theirs.status_code == 403
    assert unknown.json() == theirs.json()
    denied = [r for r in _records(log) if r["operation"] == "token.lookup"]
    assert len(denied) == 2 and {r["outcome"] for r in denied} == {"denied"}
