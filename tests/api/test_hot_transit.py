"""Transit encrypt/decrypt below the framework (api/hot_read.py) answer what the FastAPI routes answer: status,
body (ciphertexts are random: compared by shape, and each side's decrypts back) and headers, case by case."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kinko.api.app import create_app
from kinko.api.auth import FailureLimiter
from kinko.api.middleware import RequestGuard
from tests.api.conftest import keyfile_vault

PLAIN = base64.b64encode(b"transit hot path").decode()
ONLY_APP = 'path "transit/encrypt/app" { capabilities = ["update"] }\npath "transit/decrypt/app" ' \
           '{ capabilities = ["update"] }\n'


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, Any, dict[str, str]]]:
    vault, root = keyfile_vault(tmp_path)
    full = create_app(vault, limiter=FailureLimiter(limit=10_000))
    routes_only = RequestGuard(full.app.app, full.max_body, vault)  # type: ignore[attr-defined]
    with TestClient(full, raise_server_exceptions=False) as hot, \
            TestClient(routes_only, raise_server_exceptions=False) as slow:
        auth = {"X-Vault-Token": root}
        assert hot.post("/v1/transit/keys/app", headers=auth, json={}).status_code == 200
        assert hot.post("/v1/transit/keys/rsa", headers=auth, json={"type": "rsa-2048"}).status_code == 200
        assert hot.put("/v1/sys/policies/acl/only-app", headers=auth, json={"policy": ONLY_APP}).status_code in (
            200, 204)
        app_token = hot.post("/v1/auth/token/create", headers=auth,
                             json={"policies": ["only-app"]}).json()["auth"]["client_token"]
        tokens = {"root": root, "app": app_token, "bad": "kinko_not-a-real-token"}
        yield hot, slow, vault, tokens
    vault.close()


def _normal(response: Any) -> tuple[int, Any, dict[str, str]]:
    text = re.sub(r'"request_id":"[^"]*"', '"request_id":"<id>"', response.text)
    text = re.sub(r"vault:v(\d+):[A-Za-z0-9+/=]+", r"vault:v\1:<ct>", text)
    headers = {k: v for k, v in response.headers.items()
               if k.lower() not in ("x-request-id", "date", "content-length")}
    return response.status_code, text, headers


def _cases(hot: TestClient, token: str) -> list[tuple[str, str, Any]]:
    ciphertext = hot.post("/v1/transit/encrypt/app", headers={"X-Vault-Token": token},
                          json={"plaintext": PLAIN}).json().get("data", {}).get("ciphertext", "vault:v1:AAAA")
    tampered = ciphertext[:-6] + ("AAAA==" if not ciphertext.endswith("AAAA==") else "BBBB==")
    return [
        ("POST", "/v1/transit/encrypt/app", {"plaintext": PLAIN}),
        ("PUT", "/v1/transit/encrypt/app", {"plaintext": PLAIN, "associated_data": PLAIN}),
        ("POST", "/v1/transit/encrypt/app", {"batch_input": [{"plaintext": PLAIN, "reference": "a"},
                                                             {"plaintext": "not base64!"}]}),
        ("POST", "/v1/transit/encrypt/app", {"plaintext": "not base64!"}),
        ("POST", "/v1/transit/encrypt/app", {"batch_input": "nope"}),
        ("POST", "/v1/transit/encrypt/app", [1, 2]),
        ("POST", "/v1/transit/encrypt/app", None),
        ("POST", "/v1/transit/encrypt/missing", {"plaintext": PLAIN}),
        ("POST", "/v1/transit/encrypt/rsa", {"plaintext": PLAIN}),
        ("POST", "/v1/transit/decrypt/app", {"ciphertext": ciphertext}),
        ("POST", "/v1/transit/decrypt/app", {"ciphertext": tampered}),
        ("POST", "/v1/transit/decrypt/app", {"ciphertext": "vault:v9:AAAA"}),
        ("POST", "/v1/transit/decrypt/app", {"batch_input": [{"ciphertext": ciphertext}, {"ciphertext": "x"}]}),
        ("POST", "/v1/transit/decrypt/missing", {"ciphertext": ciphertext}),
    ]


@pytest.mark.parametrize("who", ["root", "app", "bad", None])
def test_every_encrypt_and_decrypt_answer_equals_the_routes(pair: Any, who: str | None) -> None:
    hot, slow, _vault, tokens = pair
    headers = {"X-Vault-Token": tokens[who]} if who else {}
    for method, url, body in _cases(hot, tokens["root"]):
        fast = hot.request(method, url, json=body, headers=headers)
        routed = slow.request(method, url, json=body, headers=headers)
        assert _normal(fast) == _normal(routed), (method, url, body)
    raw = b'{"plaintext": '  # a body that is not JSON
    assert _normal(hot.post("/v1/transit/encrypt/app", content=raw, headers=headers)) == _normal(
        slow.post("/v1/transit/encrypt/app", content=raw, headers=headers))


def test_what_one_side_encrypts_the_other_decrypts(pair: Any) -> None:
    hot, slow, _vault, tokens = pair
    auth = {"X-Vault-Token": tokens["app"]}
    for a, b in ((hot, slow), (slow, hot)):
        ciphertext = a.post("/v1/transit/encrypt/app", headers=auth, json={"plaintext": PLAIN}).json()["data"][
            "ciphertext"]
        assert b.post("/v1/transit/decrypt/app", headers=auth,
                      json={"ciphertext": ciphertext}).json()["data"]["plaintext"] == PLAIN


def test_sealed_answers_alike(pair: Any) -> None:
    hot, slow, vault, tokens = pair
    vault.seal(vault.authenticate(tokens["root"]))
    for method, url, body in [("POST", "/v1/transit/encrypt/app", {"plaintext": PLAIN}),
                              ("POST", "/v1/transit/decrypt/app", {"ciphertext": "vault:v1:AAAA"})]:
        fast = hot.request(method, url, json=body, headers={"X-Vault-Token": tokens["root"]})
        assert _normal(fast) == _normal(slow.request(method, url, json=body,
                                                     headers={"X-Vault-Token": tokens["root"]}))
        assert fast.status_code == 503


def test_the_audit_records_the_same_for_both(pair: Any, tmp_path: Path) -> None:
    hot, slow, vault, tokens = pair
    vault.enable_audit(tmp_path / "audit.log")
    for client in (hot, slow):
        client.post("/v1/transit/encrypt/app", headers={"X-Vault-Token": tokens["app"]}, json={"plaintext": PLAIN})
        client.post("/v1/transit/encrypt/rsa", headers={"X-Vault-Token": tokens["app"]}, json={"plaintext": PLAIN})
    lines = (tmp_path / "audit.log").read_text().splitlines()
    import json

    shapes = [(r["operation"], r["outcome"], r["path"]) for r in map(json.loads, lines)]
    half = len(shapes) // 2
    assert shapes[:half] == shapes[half:] and any(outcome == "denied" for _, outcome, _ in shapes)
    assert "transit hot path" not in "\n".join(lines) and PLAIN not in "\n".join(lines)
