"""sys routes, sealing, authentication (uniform 403), the route x token matrix and failure rate limiting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kinko.api.app import create_app
from kinko.api.auth import FailureLimiter
from kinko.vault import open_vault
from tests.api.conftest import Local
from tests.api.http_routes import PUBLIC, concrete, denial_for, vault_only


def routes(client: TestClient) -> Iterator[tuple[str, str]]:
    """Every (method, concrete url) in the OpenAPI document."""
    for template, ops in client.get("/v1/openapi.json").json()["paths"].items():
        url = concrete(template)
        for method in ops:
            yield method.upper(), url


def send(client: TestClient, method: str, url: str, headers: dict[str, Any]) -> Any:
    body = {"value": "x"} if method in ("PUT", "POST", "PATCH") else None
    if url.endswith("/restore"):
        body = {"backup": "kinko-backup-1:AAAA"}
    return client.request(method, url, json=body, headers=headers)


BAD_TOKENS: dict[str, dict[str, Any]] = {
    "none": {},
    "empty": {"X-Kinko-Token": ""},
    "malformed": {"X-Kinko-Token": "not a token \u00e9".encode()},
    "wrong": {"X-Kinko-Token": "kinko_root_" + "A" * 43},
    "bearer-wrong": {"Authorization": "Bearer kinko_root_" + "B" * 43},
    "basic-scheme": {"Authorization": "Basic cm9vdDpyb290"},
    "huge": {"X-Kinko-Token": "k" * 5000},
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_every_protected_route_denies_bad_tokens_identically(local: Local, kind: str) -> None:
    local.client.put("/v1/secrets/app/db", json={"value": "x"}, headers=local.auth)
    checked = 0
    for method, url in routes(local.client):
        if (method, url) in PUBLIC:
            continue
        response = send(local.client, method, url, BAD_TOKENS[kind])
        assert (response.status_code, response.json()) == (403, denial_for(url)), (method, url)
        checked += 1
    assert checked >= 15
    assert local.client.get("/v1/secrets/app/db", headers=local.auth).json()["version"] == 1  # nothing changed


def test_root_token_works_as_bearer(local: Local) -> None:
    response = local.client.get("/v1/auth/token/lookup-self", headers={"Authorization": f"Bearer {local.token}"})
    assert response.status_code == 200 and response.json()["policies"] == ["root"]
    assert local.token not in response.text


def test_sealed_vault_answers_503_on_every_secret_route(local: Local) -> None:
    assert local.client.post("/v1/sys/seal", headers=local.auth).status_code == 204
    for method, url in routes(local.client):
        if (method, url) in PUBLIC:
            continue
        for headers in (local.auth, {}):
            response = send(local.client, method, url, headers)
            assert response.status_code == 503, (method, url)
            if vault_only(url):  # a KV mount or a Vault policy route: Vault's own words
                assert response.json() == {"errors": ["Vault is sealed"]}
                continue
            assert response.json()["error"]["code"] == "sealed"
            assert "unseal" in response.json()["error"]["message"]
    assert local.client.get("/v1/sys/health").status_code == 503
    assert local.client.post("/v1/sys/unseal", json={"key_file": True}).json()["sealed"] is False
    assert local.client.get("/v1/sys/health").status_code == 200


def test_init_and_shamir_unseal_over_http(tmp_path: Path) -> None:
    vault = open_vault(tmp_path / "fresh.db", create=True)
    c = TestClient(create_app(vault))
    assert c.get("/v1/sys/health").status_code == 501
    sealed = c.get("/v1/secrets/a/b", headers={"X-Kinko-Token": "x"})
    assert sealed.status_code == 501 and sealed.json()["error"]["code"] == "not_initialized"
    result = c.post("/v1/sys/init", json={"shares": 3, "threshold": 2, "retention_days": 7}).json()
    assert len(result["shares"]) == 3 and result["root_token"].startswith("kinko_")
    assert c.get("/v1/sys/health").status_code == 503
    for headers in ({}, {"X-Kinko-Token": result["root_token"]}, {"X-Kinko-Token": "kinko_wrong"}):
        again = c.post("/v1/sys/init", json={}, headers=headers)  # initialised: refused as Vault refuses it
        assert (again.status_code, again.json()["error"]["code"]) == (400, "already_initialized")
        assert "root_token" not in again.text
    assert c.post("/v1/sys/unseal", json={"share": result["shares"][0]}).json()["progress"] == 1
    assert c.post("/v1/sys/unseal", json={"share": result["shares"][2]}).json()["sealed"] is False
    assert c.get("/v1/sys/health").status_code == 200
    h = {"X-Kinko-Token": result["root_token"]}
    assert c.put("/v1/secrets/a/b", json={"value": "v"}, headers=h).status_code == 200
    assert c.post("/v1/sys/rotate", headers=h).json()["key_term"] == 2
    assert c.post("/v1/sys/rewrap", headers=h).json()["rewrapped"] == 1
    vault.close()


def test_wrong_unseal_material_is_refused_without_detail(local: Local) -> None:
    local.client.post("/v1/sys/seal", headers=local.auth)
    bad = local.client.post("/v1/sys/unseal", json={"share": "not-a-share"})
    assert 400 <= bad.status_code < 500 and "not-a-share" not in bad.text
    both = local.client.post("/v1/sys/unseal", json={"share": "a", "passphrase": "b"})
    assert both.status_code == 400
    assert local.client.get("/v1/sys/health").status_code == 503


def test_repeated_failures_from_one_client_are_rate_limited(tmp_path: Path) -> None:
    from tests.api.conftest import keyfile_vault

    vault, token = keyfile_vault(tmp_path)
    c = TestClient(create_app(vault, limiter=FailureLimiter(limit=3, window=60)))
    for _ in range(3):
        assert c.get("/v1/secrets-list", headers={"X-Kinko-Token": "guess"}).status_code == 403
    limited = c.get("/v1/secrets-list", headers={"X-Kinko-Token": "guess"})
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert c.get("/v1/secrets-list").status_code == 429  # no token at all counts as a failure too
    # a valid token is always accepted: one client behind a shared NAT cannot lock everyone else out
    assert c.get("/v1/secrets-list", headers={"X-Kinko-Token": token}).status_code == 200
    assert c.get("/v1/secrets-list", headers={"X-Kinko-Token": "guess"}).status_code == 429  # still limited
    vault.close()


def test_limited_client_with_a_valid_token_for_every_request(tmp_path: Path) -> None:
    from tests.api.conftest import keyfile_vault

    vault, token = keyfile_vault(tmp_path)
    c = TestClient(create_app(vault, limiter=FailureLimiter(limit=1, window=60)))
    assert c.get("/v1/secrets-list", headers={"X-Kinko-Token": "kinko_s_" + "A" * 43}).status_code == 403
    for _ in range(5):  # valid requests neither fail nor add to the count
        assert c.get("/v1/secrets-list", headers={"X-Kinko-Token": token}).status_code == 200
    assert c.get("/v1/secrets-list", headers={"Authorization": "Bearer nope"}).status_code == 429
    vault.close()


def test_limiter_forgets_after_the_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(limit=2, window=10, clock=lambda: now[0])
    limiter.failed("1.2.3.4")
    limiter.failed("1.2.3.4")
    with pytest.raises(Exception, match="too many"):
        limiter.check("1.2.3.4")
    limiter.check("5.6.7.8")
    now[0] = 11
    limiter.check("1.2.3.4")
