"""A refused Kubernetes login: the client gets the uniform 403, the audit record and server log get the reason."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from tests.access.test_identity import Issuer, unsigned
from tests.api.conftest import Local
from tests.api.test_kubernetes_auth import DENIED, _configure


def test_denied_login_reason_is_audited_and_logged_but_not_returned(
        local: Local, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    issuer = Issuer()
    _configure(local, issuer)
    log = tmp_path / "audit.log"
    local.vault.enable_audit(log)
    now = time.time()
    cases = [
        ("web", issuer.mint(issuer.claims("other", "web", now=now)), "wrong namespace"),
        ("web", issuer.mint(issuer.claims("shop", "api", now=now)), "wrong service account"),
        ("web", issuer.mint(issuer.claims(now=now, aud="other")), "wrong audience"),
        ("web", issuer.mint(issuer.claims(now=now, iss="https://elsewhere")), "wrong issuer"),
        ("web", issuer.mint(issuer.claims(now=now - 7200)), "expired"),
        ("web", Issuer().mint(issuer.claims(now=now)), "bad signature"),
        ("web", unsigned(issuer.claims(now=now)), "algorithm not allowed"),
        ("nope", issuer.mint(issuer.claims(now=now)), "unknown role"),
    ]
    jwts = [jwt for _, jwt, _ in cases]
    with caplog.at_level(logging.INFO, logger="kinko"):
        for role, jwt, _ in cases:
            r = local.client.post("/v1/auth/kubernetes/login", json={"role": role, "jwt": jwt})
            assert (r.status_code, r.json()) == (403, DENIED)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    outcomes = [r["outcome"] for r in records if r["operation"] == "auth.kubernetes.login"]
    assert outcomes == [f"denied: {reason}" for _, _, reason in cases]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "kinko.auth")
    for _, _, reason in cases:
        assert reason in logged
    everything = logged + log.read_text()
    assert not any(jwt in everything or jwt.split(".")[2] in everything for jwt in jwts if jwt.split(".")[2])
