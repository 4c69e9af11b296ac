"""In-process behaviour of the /v1 API over a real vault file: CRUD, values, errors, limits."""

from __future__ import annotations

import base64

import httpx
from fastapi.testclient import TestClient

from kinko.api.app import create_app
from tests.api.conftest import Local


def test_put_get_text_value_round_trips(local: Local) -> None:
    c = local.client
    written = c.put("/v1/secrets/app/db", json={"value": "pa55", "tags": {"env": "prod"}}, headers=local.auth)
    assert written.status_code == 200
    assert written.json()["version"] == 1 and "value" not in written.json()
    got = c.get("/v1/secrets/app/db", headers=local.auth).json()
    assert got["value"] == "pa55" and got["tags"] == {"env": "prod"} and got["version"] == 1


def test_binary_and_key_value_secrets_round_trip(local: Local) -> None:
    c, raw = local.client, bytes(range(256))
    body = {"data": {"cert": {"base64": base64.b64encode(raw).decode()}, "user": "admin"}}
    assert c.post("/v1/secrets/app/blob", json=body, headers=local.auth).status_code == 200
    data = c.get("/v1/secrets/app/blob", headers=local.auth).json()["data"]
    assert base64.b64decode(data["cert"]["base64"]) == raw and data["user"] == "admin"


def test_versions_cas_and_version_query(local: Local) -> None:
    c, h = local.client, local.auth
    c.put("/v1/secrets/a/s", json={"value": "one"}, headers=h)
    c.put("/v1/secrets/a/s", json={"value": "two", "cas": 1}, headers=h)
    conflict = c.put("/v1/secrets/a/s", json={"value": "three", "cas": 1}, headers=h)
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "version_conflict"
    assert c.get("/v1/secrets/a/s?version=1", headers=h).json()["value"] == "one"
    assert [v["version"] for v in c.get("/v1/versions/a/s", headers=h).json()["versions"]] == [1, 2]


def test_list_and_attributes(local: Local) -> None:
    c, h = local.client, local.auth
    for path in ("team/app/db", "team/app/api", "team/web"):
        c.put(f"/v1/secrets/{path}", json={"value": "x"}, headers=h)
    assert c.get("/v1/secrets-list/team", headers=h).json()["keys"] == ["app/", "web"]
    assert c.get("/v1/secrets-list", headers=h).json()["keys"] == ["team/"]
    patched = c.patch("/v1/attributes/team/web", json={"enabled": False, "expires": "2999-01-01T00:00:00Z"},
                      headers=h)
    assert patched.status_code == 200 and patched.json()["expires"] == "2999-01-01T00:00:00Z"
    disabled = c.get("/v1/secrets/team/web", headers=h)
    assert disabled.status_code == 403 and disabled.json()["error"]["code"] == "secret_disabled"


def test_delete_recover_purge(local: Local) -> None:
    c, h = local.client, local.auth
    c.put("/v1/secrets/gone/x", json={"value": "x"}, headers=h)
    assert c.delete("/v1/secrets/gone/x", headers=h).json()["deleted"]
    assert c.get("/v1/secrets/gone/x", headers=h).status_code == 404
    assert [d["path"] for d in c.get("/v1/deleted-list", headers=h).json()["deleted"]] == ["gone/x"]
    assert c.post("/v1/recover/gone/x", headers=h).status_code == 200
    assert c.get("/v1/secrets/gone/x", headers=h).json()["value"] == "x"
    c.delete("/v1/secrets/gone/x", headers=h)
    assert c.delete("/v1/deleted/gone/x", headers=h).status_code == 204
    assert c.post("/v1/recover/gone/x", headers=h).status_code == 404


def test_backup_restore(local: Local) -> None:
    c, h = local.client, local.auth
    c.put("/v1/secrets/b/k", json={"value": "v1"}, headers=h)
    blob = c.get("/v1/backup/b/k", headers=h).json()["backup"]
    c.delete("/v1/secrets/b/k", headers=h)
    c.delete("/v1/deleted/b/k", headers=h)
    assert c.post("/v1/restore", json={"backup": blob}, headers=h).status_code == 200
    assert c.get("/v1/secrets/b/k", headers=h).json()["value"] == "v1"
    bad = c.post("/v1/restore", json={"backup": "kinko-backup-1:AAAA"}, headers=h)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"


def _is_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    if code:
        assert error["code"] == code


def test_bad_requests_are_json_4xx(local: Local) -> None:
    c, h = local.client, local.auth
    json_h = {**h, "content-type": "application/json"}
    _is_error(c.put("/v1/secrets/a/b", content=b'{"value": ', headers=json_h), 400, "invalid_input")
    _is_error(c.put("/v1/secrets/a/b", json={"value": 5}, headers=h), 400, "invalid_input")
    _is_error(c.put("/v1/secrets/a/b", json={"value": "x", "bogus": 1}, headers=h), 400, "invalid_input")
    _is_error(c.put("/v1/secrets/a/b", json={"value": "x", "data": {"k": "v"}}, headers=h), 400)
    _is_error(c.put("/v1/secrets/a/b", json={"value": "x", "expires": 1e300}, headers=h), 400)
    _is_error(c.put("/v1/secrets/a/b", json={"value": {"base64": "!!"}}, headers=h), 400)
    _is_error(c.put("/v1/secrets/bad path!", json={"value": "x"}, headers=h), 400, "invalid_path")
    _is_error(c.get("/v1/secrets/a/b?version=zero", headers=h), 400)
    _is_error(c.get("/v1/nowhere"), 404, "not_found")
    _is_error(c.delete("/v1/sys/health"), 405, "method_not_allowed")


def test_error_messages_never_echo_the_value(local: Local) -> None:
    canary = "CANARY-5f1e0c-never-echo"
    c, h = local.client, local.auth
    responses = [
        c.put("/v1/secrets/a/b", json={"value": canary, "content_type": "kubernetes.io/tls"}, headers=h),
        c.put("/v1/secrets/a/b", json={"value": 1, "tags": {"t": canary * 50}}, headers=h),
        c.put("/v1/secrets/a/b", content=('{"value": "' + canary).encode(),
              headers={**h, "content-type": "application/json"}),
        c.get("/v1/secrets/a/b", headers={"X-Kinko-Token": canary}),
    ]
    for response in responses:
        assert response.status_code >= 400 and canary not in response.text


def test_oversized_body_is_413_json(tmp_path: object, local: Local) -> None:
    small = TestClient(create_app(local.vault, max_body=4096))
    big = small.put("/v1/secrets/a/b", json={"value": "x" * 5000}, headers=local.auth)
    _is_error(big, 413, "too_large")
    assert small.put("/v1/secrets/a/b", json={"value": "x" * 100}, headers=local.auth).status_code == 200


def test_request_id_header_and_openapi(local: Local) -> None:
    response = local.client.get("/v1/openapi.json")
    assert response.status_code == 200 and len(response.headers["x-request-id"]) == 16
    paths = response.json()["paths"]
    assert "/v1/secrets/{path}" in paths and "/v1/sys/health" in paths and "/v1/sys/bench-hello" not in paths


def test_a_lone_surrogate_anywhere_in_a_body_is_refused_before_anything_is_stored(local: Local) -> None:
    c, h = local.client, local.auth
    bodies = [b'{"value": "x", "tags": {"a": "\\udfff"}}', b'{"value": "ok\\ud800"}',
              b'{"data": {"k\\udc00ey": "v"}}', b'{"value": "x", "tags": {"\\udfffname": "v"}}']
    for raw in bodies:
        refused = c.put("/v1/secrets/uni/s", content=raw, headers={**h, "content-type": "application/json"})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_input"
    assert c.get("/v1/secrets/uni/s", headers=h).status_code == 404  # nothing was committed
    created = c.post("/v1/auth/token/create", content=b'{"policies": [], "display_name": "a\\udfff"}',
                     headers={**h, "content-type": "application/json"})
    assert created.status_code == 400
    # A real pair of surrogates is one astral character: valid, stored, and read back.
    pair = c.put("/v1/secrets/uni/s", content=b'{"value": "\\ud83d\\udd11", "tags": {"k": "\\ud83d\\udd11"}}',
                 headers={**h, "content-type": "application/json"})
    assert pair.status_code == 200
    got = c.get("/v1/secrets/uni/s", headers=h).json()
    assert got["value"] == "\U0001f511" and got["tags"] == {"k": "\U0001f511"}
