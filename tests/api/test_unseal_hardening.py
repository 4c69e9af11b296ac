"""/v1/sys/unseal: malformed shares keep progress, failures are rate limited per client, attempts are audited."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kinko.api.app import create_app
from kinko.api.auth import FailureLimiter
from kinko.crypto.seal import SealType
from kinko.crypto.shares import encode_share
from kinko.vault import Vault, open_vault

WRONG_LENGTH = encode_share(os.urandom(16) + b"\x01")  # well-formed text, checksum right, length wrong


@pytest.fixture
def shamir(tmp_path: Path) -> Iterator[tuple[Vault, list[str]]]:
    vault = open_vault(tmp_path / "vault.db", create=True)
    shares = list(vault.init(seal=SealType.SHAMIR, shares=5, threshold=3).shares)
    yield vault, shares
    vault.close()


def client(vault: Vault, limit: int = 10_000) -> TestClient:
    return TestClient(create_app(vault, limiter=FailureLimiter(limit=limit, window=60)))


def test_malformed_shares_do_not_reset_progress(shamir: tuple[Vault, list[str]]) -> None:
    vault, shares = shamir
    c = client(vault)
    assert c.post("/v1/sys/unseal", json={"share": shares[0]}).json()["progress"] == 1
    for bad in ("not-a-share", shares[1][:-1] + ("0" if shares[1][-1] != "0" else "1"), WRONG_LENGTH):
        response = c.post("/v1/sys/unseal", json={"share": bad})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_share"
        assert c.get("/v1/sys/seal-status").json()["progress"] == 1
    assert c.post("/v1/sys/unseal", json={"passphrase": "x"}).status_code == 400  # wrong method: no reset either
    assert c.post("/v1/sys/unseal", json={"share": shares[1]}).json()["progress"] == 2
    assert c.post("/v1/sys/unseal", json={"share": shares[2]}).json()["sealed"] is False


def test_failed_unseal_attempts_are_rate_limited_per_client(shamir: tuple[Vault, list[str]]) -> None:
    vault, shares = shamir
    c = client(vault, limit=3)
    for _ in range(3):
        assert c.post("/v1/sys/unseal", json={"share": "kinko-share:AAAA.00000000"}).status_code == 400
    limited = c.post("/v1/sys/unseal", json={"share": shares[0]})
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert c.get("/v1/sys/seal-status").json()["progress"] == 0  # the limited request was not applied


def test_successful_shares_do_not_count_as_failures(shamir: tuple[Vault, list[str]]) -> None:
    vault, shares = shamir
    c = client(vault, limit=1)
    assert c.post("/v1/sys/unseal", json={"share": shares[0]}).status_code == 200
    assert c.post("/v1/sys/unseal", json={"share": shares[1]}).status_code == 200
    assert c.post("/v1/sys/unseal", json={"share": shares[2]}).json()["sealed"] is False


def test_attempts_are_audited_and_logged_without_the_material(
        shamir: tuple[Vault, list[str]], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vault, shares = shamir
    audit = tmp_path / "audit.log"
    vault.enable_audit(audit)
    c = client(vault)
    caplog.set_level(logging.INFO, logger="kinko.api")
    c.post("/v1/sys/unseal", json={"share": WRONG_LENGTH})
    for share in shares[:3]:
        assert c.post("/v1/sys/unseal", json={"share": share}).status_code == 200
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    unseals = [(r["path"], r["outcome"]) for r in records if r["operation"] == "sys.unseal"]
    # While sealed a sink may be unable to write (a keyed chain needs the vault's salt): the log has those.
    assert unseals[-1] == ("sys/unseal/share", "allowed")
    assert set(unseals) <= {("sys/unseal/share", "allowed"), ("sys/unseal/share", "invalid_share")}
    assert all(r["client"] for r in records)
    assert "unseal attempt (share) from testclient: invalid_share" in caplog.text
    assert caplog.text.count("unseal attempt (share) from testclient: allowed") == 3
    for text in (audit.read_text(), caplog.text):
        assert not any(s in text for s in shares) and WRONG_LENGTH not in text


def test_a_repeated_share_is_refused_without_resetting_progress(shamir: tuple[Vault, list[str]]) -> None:
    vault, shares = shamir
    c = client(vault)
    assert c.post("/v1/sys/unseal", json={"share": shares[0]}).json()["progress"] == 1
    repeated = c.post("/v1/sys/unseal", json={"share": shares[0]})
    assert repeated.status_code == 400 and "already given" in repeated.json()["error"]["message"]
    assert c.get("/v1/sys/seal-status").json()["progress"] == 1
    assert c.post("/v1/sys/unseal", json={"share": shares[1]}).json()["progress"] == 2
    assert c.post("/v1/sys/unseal", json={"share": shares[2]}).json()["sealed"] is False


def test_a_stranger_posting_foreign_shares_cannot_block_unseal_or_get_the_operator_limited(
        shamir: tuple[Vault, list[str]], tmp_path: Path) -> None:
    vault, shares = shamir
    other = open_vault(tmp_path / "other.db", create=True)
    foreign = list(other.init(seal=SealType.SHAMIR, shares=5, threshold=3).shares)
    other.close()
    app = create_app(vault, limiter=FailureLimiter(limit=3, window=60))
    operator = TestClient(app, client=("10.0.0.1", 40000))
    stranger = TestClient(app, client=("10.6.6.6", 40000))
    for round_ in range(5):  # more rounds than the failure limit
        assert operator.post("/v1/sys/unseal", json={"share": shares[0]}).json()["progress"] == 1
        attempt = stranger.post("/v1/sys/unseal", json={"share": foreign[round_ % 5]})
        # The foreign share is refused on its own (429 once the stranger is over its own limit)...
        assert attempt.status_code in (400, 429)
        if attempt.status_code == 400:
            assert attempt.json()["error"]["code"] == "invalid_share"
        # ... so the operator's shares still complete the threshold, and nothing is charged to the operator.
        assert operator.post("/v1/sys/unseal", json={"share": shares[1]}).json()["progress"] == 2
        assert operator.post("/v1/sys/unseal", json={"share": shares[2]}).json()["sealed"] is False
        vault.drop_keys()  # sealed again for the next round (as another worker's seal would)
    assert stranger.post("/v1/sys/unseal", json={"share": foreign[0]}).status_code == 429
