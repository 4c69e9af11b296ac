"""The Key Vault API on a real TLS server: /v1 interop, raw challenge, schemathesis, no value in logs."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from kinko.api.compat import azure_keyvault
from kinko.api.compat.azure_http import CHALLENGE
from tests.api.compat.conftest import KeyVault, unique

CANARY = "CANARY-9d1c-keyvault-must-not-leak"


def test_one_secret_two_apis(keyvault: KeyVault) -> None:
    client, name = keyvault.client(), unique("both")
    client.set_secret(name, "from-azure", tags={"a": "b"})
    with keyvault.http() as http:
        native = {"X-Kinko-Token": keyvault.token}
        doc = http.get(f"/v1/secrets/azure/{name}", headers=native).json()
        assert (doc["value"], doc["version"], doc["tags"]) == ("from-azure", 1, {"a": "b"})
        http.put(f"/v1/secrets/azure/{name}", json={"value": "from-v1"}, headers=native)
    assert client.get_secret(name).value == "from-v1"
    assert client.get_secret(name, "0" * 31 + "2").properties.version == "0" * 31 + "2"


def test_raw_challenge_over_tls(keyvault: KeyVault) -> None:
    with keyvault.http() as http:
        first = http.put(f"/secrets/{unique('raw')}", params={"api-version": "2026-04-01"},
                         json={"value": CANARY})
        assert first.status_code == 401 and first.headers["www-authenticate"] == CHALLENGE
        again = http.get("/secrets", params={"api-version": "7.6"},
                         headers={"Authorization": f"Bearer {keyvault.token}"})
        assert again.status_code == 200 and "value" in again.json()


def test_no_value_in_server_log_errors_or_audit(keyvault: KeyVault) -> None:
    client, name = keyvault.client(), unique("canary")
    client.set_secret(name, CANARY)
    with keyvault.http() as http:
        auth = {"Authorization": f"Bearer {keyvault.token}"}
        q = {"api-version": "7.4"}
        answers = [
            http.put("/secrets/bad_name", params=q, json={"value": CANARY}, headers=auth),
            http.put(f"/secrets/{name}", params=q, json={"value": CANARY, "contentType": "certificate"},
                     headers=auth),
            http.put(f"/secrets/{name}", params=q, json={"value": CANARY, "tags": {"k": 5}}, headers=auth),
            http.post("/secrets/restore", params=q, json={"value": CANARY}, headers=auth),
        ]
    assert all(400 <= a.status_code < 500 and CANARY not in a.text for a in answers)
    assert client.get_secret(name).value == CANARY
    assert CANARY not in keyvault.server.stderr.read_text() and CANARY not in keyvault.audit.read_text()


def _check(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
        assert "Traceback" not in response.text


def test_schemathesis_never_a_5xx_or_a_non_key_vault_error(keyvault: KeyVault) -> None:
    schema = schemathesis.openapi.from_dict(azure_keyvault.openapi())
    auth, ran = {"Authorization": f"Bearer {keyvault.token}"}, 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in ((GenerationMode.POSITIVE, 15), (GenerationMode.NEGATIVE, 10)):
            @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                for headers in (auth, {}):
                    response = case.call(base_url=keyvault.url, headers=headers, verify=str(keyvault.ca))
                    _check(response)
                    if not headers:
                        assert response.status_code == 401  # the challenge, whatever was asked
                        assert response.headers["www-authenticate"] == [CHALLENGE]

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE
            ran += 1
    assert ran >= 32  # 16 operations, in both modes
    assert keyvault.client().set_secret(unique("after"), "still serving").value == "still serving"
