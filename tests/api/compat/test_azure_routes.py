"""The Key Vault routes in process: the challenge, audit, seal, the name prefix, content types, /v1 interop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kinko.api.app import create_app
from kinko.api.auth import FailureLimiter
from kinko.api.compat.azure_http import CHALLENGE
from kinko.api.server import load_config
from kinko.errors import UsageError
from kinko.vault import Vault
from tests.api.conftest import keyfile_vault

Q = {"api-version": "2026-04-01"}


@dataclass
class World:
    vault: Vault
    client: TestClient
    bearer: dict[str, str]
    native: dict[str, str]
    audit: Path

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    vault, token = keyfile_vault(tmp_path)
    vault.enable_audit(tmp_path / "audit.log")
    app = create_app(vault, limiter=FailureLimiter(limit=10_000), azure_prefix="kv/team")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(vault, client, {"Authorization": f"Bearer {token}"}, {"X-Kinko-Token": token},
                    tmp_path / "audit.log")
    vault.close()


ROUTES = [("GET", "/secrets"), ("PUT", "/secrets/a"), ("GET", "/secrets/a/"), ("GET", "/secrets/a"),
          ("GET", "/secrets/a/" + "0" * 32), ("PATCH", "/secrets/a/"), ("DELETE", "/secrets/a"),
          ("GET", "/secrets/a/versions"), ("POST", "/secrets/a/backup"), ("POST", "/secrets/restore"),
          ("GET", "/deletedsecrets"), ("GET", "/deletedsecrets/a"), ("DELETE", "/deletedsecrets/a"),
          ("POST", "/deletedsecrets/a/recover"), ("POST", "/secrets/a"), ("GET", "/secrets/a/b/c"),
          ("PUT", "/secrets/bad_name"), ("GET", "/deletedsecrets/a/b")]


@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_no_token_gets_the_challenge_before_anything_else(world: World, method: str, url: str) -> None:
    # A body that is not JSON and an api-version nobody sends: neither is looked at before the challenge.
    response = world.client.request(method, url, params={"api-version": "0.0"}, content=b"{not json")
    assert response.status_code == 401 and response.headers["www-authenticate"] == CHALLENGE
    assert response.json()["error"]["code"] == "Unauthorized"
    record = world.records()[-1]
    assert record["request_id"] == response.headers["x-request-id"]
    assert (record["operation"], record["path"], record["outcome"]) == (f"http.{method.lower()}", url,
                                                                         "unauthenticated")


def test_the_challenge_names_key_vaults_resource_and_a_tenant() -> None:
    from azure.keyvault.secrets._shared.http_challenge import HttpChallenge

    challenge = HttpChallenge("https://127.0.0.1:8200/secrets/a", CHALLENGE)
    assert challenge.get_resource() == "https://vault.azure.net" and challenge.tenant_id == "kinko"


def test_every_request_is_audited_and_no_value_is_recorded(world: World) -> None:
    canary = "CANARY-kv-3f1e"
    c, auth = world.client, world.bearer
    answers = [c.put("/secrets/x", params=Q, json={"value": canary}, headers=auth),
               c.get("/secrets/x/", params=Q, headers=auth),
               c.get("/secrets/x/", params={"api-version": "1.0"}, headers=auth),
               c.put("/secrets/y_z", params=Q, json={"value": canary}, headers=auth),
               c.get("/secrets/x/", params=Q, headers={"Authorization": "Bearer kinko_s_" + "q" * 43})]
    assert [a.status_code for a in answers] == [200, 200, 400, 400, 403]
    text = world.audit.read_text()
    assert canary not in text and world.bearer["Authorization"][7:] not in text
    ids = {r["request_id"] for r in world.records()}
    assert all(a.headers["x-request-id"] in ids for a in answers)
    assert all(canary not in a.text for a in answers[2:])


def test_kinko_header_works_and_sealed_is_503_after_the_challenge(world: World) -> None:
    c = world.client
    assert c.put("/secrets/x", params=Q, json={"value": "v"}, headers=world.native).status_code == 200
    world.vault.seal(world.vault.authenticate(world.native["X-Kinko-Token"]))
    sealed = c.get("/secrets/x/", params=Q, headers=world.bearer)
    assert sealed.status_code == 503 and sealed.json()["error"]["code"] == "ServiceUnavailable"
    assert c.get("/secrets/x/", params=Q).status_code == 401


def test_names_live_under_the_configured_prefix(world: World) -> None:
    c, auth, native = world.client, world.bearer, world.native
    assert c.put("/secrets/db", params=Q, json={"value": "v"}, headers=auth).status_code == 200
    assert c.get("/v1/secrets/kv/team/db", headers=native).json()["value"] == "v"
    for path in ("kv/team/sub/nested", "kv/team/under_score", "kv/other", "elsewhere"):
        assert c.put(f"/v1/secrets/{path}", json={"value": "v"}, headers=native).status_code == 200
    listed = c.get("/secrets", params=Q, headers=auth).json()
    assert [item["id"].rsplit("/", 1)[1] for item in listed["value"]] == ["db"] and listed["nextLink"] is None


def test_versions_are_kinko_version_numbers(world: World) -> None:
    c, auth, native = world.client, world.bearer, world.native
    for value in ("one", "two", "three"):
        c.put("/v1/secrets/kv/team/app", json={"value": value}, headers=native)
    got = c.get("/secrets/app/" + "0" * 31 + "2", params=Q, headers=auth).json()
    assert got["value"] == "two" and got["id"].endswith("/secrets/app/" + "0" * 31 + "2")
    assert c.get("/secrets/app/" + "0" * 32, params=Q, headers=auth).status_code == 404
    assert c.get("/secrets/app/" + "F" * 32, params=Q, headers=auth).status_code == 404
    c.patch("/secrets/app/" + "0" * 31 + "1", params=Q, json={"attributes": {"enabled": False}}, headers=auth)
    assert c.get("/v1/versions/kv/team/app", headers=native).json()["versions"][0]["enabled"] is False


def test_paging_by_hand(world: World) -> None:
    c, auth = world.client, world.bearer
    for i in range(5):
        c.put(f"/secrets/s{i}", params=Q, json={"value": "v"}, headers=auth)
    seen, link = [], "/secrets?api-version=7.5&maxresults=2"
    while link:
        body = c.get(link.replace("http://testserver", ""), headers=auth).json()
        seen += [item["id"].rsplit("/", 1)[1] for item in body["value"]]
        link = body["nextLink"]
        assert link is None or "api-version=7.5" in link
    assert seen == [f"s{i}" for i in range(5)]
    too_many = c.get("/secrets", params={**Q, "maxresults": 26}, headers=auth)
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "BadParameter"


def test_content_types_map_onto_kinkos(world: World) -> None:
    c, auth, native = world.client, world.bearer, world.native
    free = c.put("/secrets/free", params=Q, json={"value": "v", "contentType": "application/json"}, headers=auth)
    assert free.json()["contentType"] == "application/json" and "tags" not in free.json()
    stored = c.get("/v1/secrets/kv/team/free", headers=native).json()
    assert stored["content_type"] == "text" and stored["tags"] == {"kinko:content-type": "application/json"}
    typed = c.put("/secrets/key", params=Q, json={"value": "k" * 40, "contentType": "api-key"}, headers=auth)
    assert typed.json()["contentType"] == "api-key"
    assert c.get("/v1/secrets/kv/team/key", headers=native).json()["content_type"] == "api-key"
    bad = c.put("/secrets/cert", params=Q, json={"value": "not a PEM", "contentType": "certificate"}, headers=auth)
    assert bad.status_code == 400
    fixed = c.patch("/secrets/free/", params=Q, json={"contentType": "api-key"}, headers=auth)
    assert fixed.status_code == 400  # kinko's content type is fixed per version
    retagged = c.patch("/secrets/free/", params=Q, json={"tags": {"a": "b"}}, headers=auth).json()
    assert retagged["contentType"] == "application/json" and retagged["tags"] == {"a": "b"}


def test_values_key_vault_cannot_carry_are_refused_not_mangled(world: World) -> None:
    c, auth, native = world.client, world.bearer, world.native
    c.put("/v1/secrets/kv/team/bin", json={"value": {"base64": "/wA="}}, headers=native)
    c.put("/v1/secrets/kv/team/map", json={"data": {"user": "u"}, "content_type": "Opaque"}, headers=native)
    for name in ("bin", "map"):
        refused = c.get(f"/secrets/{name}/", params=Q, headers=auth)
        assert refused.status_code == 400 and "/v1" in refused.json()["error"]["message"]


def test_restoring_a_backup_from_outside_the_prefix_says_where_it_went(world: World) -> None:
    import base64

    c, auth, native = world.client, world.bearer, world.native
    c.put("/v1/secrets/elsewhere/db", json={"value": "v"}, headers=native)
    blob = c.get("/v1/backup/elsewhere/db", headers=native).json()["backup"].encode()
    c.delete("/v1/secrets/elsewhere/db", headers=native)
    c.delete("/v1/deleted/elsewhere/db", headers=native)
    value = base64.urlsafe_b64encode(blob).decode().rstrip("=")
    answer = c.post("/secrets/restore", params=Q, json={"value": value}, headers=auth)
    assert answer.status_code == 400 and "elsewhere/db" in answer.json()["error"]["message"]
    assert c.get("/v1/secrets/elsewhere/db", headers=native).json()["value"] == "v"


@pytest.mark.parametrize(("prefix", "expected"), [("azure", "azure/"), ("a/b/", "a/b/"), ("", "")])
def test_the_prefix_setting(prefix: str, expected: str) -> None:
    assert load_config(env={"KINKO_AZURE_PREFIX": prefix}).azure_prefix == prefix
    from kinko.api.compat.azure_shapes import check_prefix

    assert check_prefix(prefix) == expected


@pytest.mark.parametrize("prefix", ["sys/", "a//b", "../x", "a b"])
def test_a_bad_prefix_is_a_usage_error(prefix: str) -> None:
    with pytest.raises(UsageError, match="azure_prefix"):
        load_config(env={"KINKO_AZURE_PREFIX": prefix})
