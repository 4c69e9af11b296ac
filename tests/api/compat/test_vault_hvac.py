"""hvac 2.x, the Python Vault client, unchanged against a real `kinko server --dev`: KV v2, tokens, sys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from tests.api.conftest import Server

CANARY = "kinko-hvac-canary-5e2f"


@pytest.fixture
def client(server: Server) -> Iterator[hvac.Client]:
    c = hvac.Client(url=server.addr, token=server.token)
    yield c
    c.adapter.close()


def _kv(client: hvac.Client) -> hvac.api.secrets_engines.KvV2:
    return client.secrets.kv.v2


def test_kv_write_read_versions_and_list(client: hvac.Client) -> None:
    kv = _kv(client)
    written = kv.create_or_update_secret(path="hvac-list/app/db", secret={"user": "app", "password": "pw1"})
    assert written["data"]["version"] == 1
    kv.create_or_update_secret(path="hvac-list/app/db", secret={"user": "app", "password": "pw2"}, cas=1)
    assert kv.read_secret_version(path="hvac-list/app/db", raise_on_deleted_version=True)["data"]["data"] == {
        "user": "app", "password": "pw2"}
    old = kv.read_secret_version(path="hvac-list/app/db", version=1, raise_on_deleted_version=True)
    assert old["data"]["data"]["password"] == "pw1" and old["data"]["metadata"]["version"] == 1
    kv.create_or_update_secret(path="hvac-list/app/api", secret={"key": "k"})
    assert sorted(kv.list_secrets(path="hvac-list/app")["data"]["keys"]) == ["api", "db"]  # the LIST method
    assert kv.list_secrets(path="hvac-list")["data"]["keys"] == ["app/"]


def test_an_entry_with_only_metadata_is_listed_as_vault_lists_it(client: hvac.Client) -> None:
    kv = _kv(client)
    kv.update_metadata(path="hvac-meta/planned/api", max_versions=2, custom_metadata={"owner": "team-b"})
    kv.create_or_update_secret(path="hvac-meta/live", secret={"k": "v"})
    assert sorted(kv.list_secrets(path="hvac-meta")["data"]["keys"]) == ["live", "planned/"]
    assert kv.list_secrets(path="hvac-meta/planned")["data"]["keys"] == ["api"]
    assert kv.read_secret_metadata(path="hvac-meta/planned/api")["data"]["current_version"] == 0


def test_cas_mismatch_is_invalid_request(client: hvac.Client) -> None:
    kv = _kv(client)
    kv.create_or_update_secret(path="hvac/cas", secret={"v": "1"}, cas=0)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter did not match"):
        kv.create_or_update_secret(path="hvac/cas", secret={"v": "2"}, cas=0)


def test_patch_and_metadata(client: hvac.Client) -> None:
    kv = _kv(client)
    kv.create_or_update_secret(path="hvac/patched", secret={"a": "1", "b": "2"})
    kv.patch(path="hvac/patched", secret={"b": "3", "c": "4"})
    assert kv.read_secret_version(path="hvac/patched", raise_on_deleted_version=True)["data"]["data"] == {
        "a": "1", "b": "3", "c": "4"}
    kv.update_metadata(path="hvac/patched", max_versions=5, custom_metadata={"owner": "team-a"})
    meta = kv.read_secret_metadata(path="hvac/patched")["data"]
    assert meta["max_versions"] == 5 and meta["custom_metadata"] == {"owner": "team-a"}
    assert meta["current_version"] == 2 and set(meta["versions"]) == {"1", "2"}
    subkeys = client.adapter.get("/v1/secret/subkeys/hvac/patched")["data"]["subkeys"]  # hvac has no helper
    assert subkeys == {"a": None, "b": None, "c": None}


def test_delete_undelete_destroy_and_metadata_delete(client: hvac.Client) -> None:
    kv = _kv(client)
    for n in range(3):
        kv.create_or_update_secret(path="hvac/states", secret={"v": str(n)})
    kv.delete_latest_version_of_secret(path="hvac/states")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path="hvac/states", raise_on_deleted_version=True)
    deleted = kv.read_secret_version(path="hvac/states", raise_on_deleted_version=False)
    assert deleted["data"]["data"] is None and deleted["data"]["metadata"]["deletion_time"]
    kv.undelete_secret_versions(path="hvac/states", versions=[3])
    assert kv.read_secret_version(path="hvac/states", raise_on_deleted_version=True)["data"]["data"] == {"v": "2"}
    kv.destroy_secret_versions(path="hvac/states", versions=[1])
    assert kv.read_secret_metadata(path="hvac/states")["data"]["versions"]["1"]["destroyed"] is True
    kv.delete_secret_versions(path="hvac/states", versions=[2])
    assert kv.read_secret_metadata(path="hvac/states")["data"]["versions"]["2"]["deletion_time"]
    kv.delete_metadata_and_all_versions(path="hvac/states")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata(path="hvac/states")


def test_configuration_of_the_mount(client: hvac.Client) -> None:
    kv = _kv(client)
    kv.configure(max_versions=7, cas_required=False, delete_version_after="0s")
    config = kv.read_configuration()["data"]
    assert config["max_versions"] == 7 and config["cas_required"] is False
    kv.configure(max_versions=0)


def test_tokens_create_lookup_renew_revoke(client: hvac.Client, server: Server) -> None:
    created = client.auth.token.create(policies=["secrets-reader"], ttl="1h", meta={"team": "a"})["auth"]
    assert created["client_token"] and created["accessor"] and created["renewable"] is True
    assert "secrets-reader" in created["policies"] and created["lease_duration"] == 3600
    looked = client.auth.token.lookup(created["client_token"])["data"]
    assert looked["accessor"] == created["accessor"] and looked["meta"] == {"team": "a"}
    assert client.auth.token.lookup_accessor(created["accessor"])["data"]["accessor"] == created["accessor"]
    other = hvac.Client(url=server.addr, token=created["client_token"])
    try:
        assert other.is_authenticated()
        assert "secrets-reader" in other.auth.token.lookup_self()["data"]["policies"]
        renewed = other.auth.token.renew_self(increment="2h")["auth"]
        assert renewed["lease_duration"] > 3600
        client.auth.token.revoke_accessor(created["accessor"])
        assert not other.is_authenticated()
    finally:
        other.adapter.close()


def test_sys_health_seal_status_and_mounts(client: hvac.Client) -> None:
    health = client.sys.read_health_status(method="GET")
    assert health["initialized"] is True and health["sealed"] is False
    status = client.sys.read_seal_status()
    assert status["sealed"] is False and status["initialized"] is True
    assert client.sys.is_initialized() and not client.sys.is_sealed()
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    assert mounts["secret/"]["type"] == "kv" and mounts["secret/"]["options"]["version"] == "2"


def test_a_denied_token_gets_forbidden_and_the_denial_is_audited(client: hvac.Client, server: Server) -> None:
    _kv(client).create_or_update_secret(path="hvac/guarded", secret={"password": CANARY})
    token = client.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    denied = hvac.Client(url=server.addr, token=token)
    try:
        with pytest.raises(hvac.exceptions.Forbidden):
            _kv(denied).read_secret_version(path="hvac/guarded", raise_on_deleted_version=True)
        with pytest.raises(hvac.exceptions.Forbidden):
            _kv(denied).create_or_update_secret(path="hvac/guarded", secret={"password": "overwritten"})
    finally:
        denied.adapter.close()
    assert _kv(client).read_secret_version(path="hvac/guarded", raise_on_deleted_version=True)["data"]["data"] == {
        "password": CANARY}
    records = [json.loads(line) for line in _audit(server).read_text().splitlines()]
    denials = [r for r in records if r.get("outcome") == "denied" and r.get("path") == "hvac/guarded"]
    assert len(denials) >= 2
    assert CANARY not in _audit(server).read_text() and token not in _audit(server).read_text()
    assert CANARY not in server.stderr.read_text()


def test_a_bad_token_is_forbidden_and_a_missing_secret_is_invalid_path(client: hvac.Client, server: Server) -> None:
    with pytest.raises(hvac.exceptions.InvalidPath):
        _kv(client).read_secret_version(path="hvac/never-written", raise_on_deleted_version=True)
    bad = hvac.Client(url=server.addr, token="hvs.not-a-kinko-token")
    try:
        assert not bad.is_authenticated()
        with pytest.raises(hvac.exceptions.Forbidden):
            _kv(bad).read_secret_version(path="hvac-list/app/db", raise_on_deleted_version=True)
    finally:
        bad.adapter.close()


def _audit(server: Server) -> Path:
    return server.stderr.parent / "audit.log"
