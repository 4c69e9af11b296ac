"""/v1/auth/token routes: self-lookup and self-renewal spend no use of a use-limited token; validation errors
say the rule in words."""

from __future__ import annotations

from tests.api.conftest import Local


def _limited(local: Local, uses: int) -> dict[str, str]:
    made = local.client.post("/v1/auth/token/create", headers=local.auth,
                             json={"policies": ["default"], "num_uses": uses})
    assert made.status_code == 200, made.text
    return {"X-Kinko-Token": made.json()["token"]}


def test_lookup_self_and_renew_self_do_not_spend_a_use(local: Local) -> None:
    auth = _limited(local, 1)
    for _ in range(3):
        looked = local.client.get("/v1/auth/token/lookup-self", headers=auth)
        assert looked.status_code == 200, looked.text
        assert looked.json()["uses_left"] == 1
    renewed = local.client.post("/v1/auth/token/renew-self", headers=auth, json={"increment": 60})
    assert renewed.status_code == 200 and renewed.json()["uses_left"] == 1, renewed.text
    # A real request still spends the last use; afterwards the token gets the uniform 403.
    assert local.client.get("/v1/auth/token/accessors", headers=auth).status_code == 403  # default: no list
    gone = local.client.get("/v1/auth/token/lookup-self", headers=auth)
    assert gone.status_code == 403 and gone.json()["error"]["code"] == "permission_denied"


def test_renew_self_renews_only_the_caller(local: Local) -> None:
    auth = _limited(local, 2)
    other = local.client.post("/v1/auth/token/renew-self", headers=auth, json={"accessor": "x" * 32})
    assert other.status_code == 400 and other.json()["error"]["code"] == "invalid_input"


def test_validation_errors_name_the_field_and_the_rule_in_words(local: Local) -> None:
    bad = local.client.post("/v1/auth/token/create", headers=local.auth, json={"policies": [], "num_uses": -1})
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "num_uses must be at least 0"
    long = local.client.post("/v1/auth/token/create", headers=local.auth,
                             json={"policies": [], "display_name": "n" * 200})
    assert long.json()["error"]["message"] == "display_name must be at most 128 characters"
    typed = local.client.post("/v1/auth/token/create", headers=local.auth, json={"policies": [], "num_uses": "x"})
    assert typed.json()["error"]["message"] == "num_uses must be an integer"
