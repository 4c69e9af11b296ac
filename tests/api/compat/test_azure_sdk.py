"""The real azure-keyvault-secrets SDK (sync) against a real `kinko server` over TLS: every secrets operation."""

from __future__ import annotations

import datetime

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from kinko.api.compat.azure_http import API_VERSIONS
from tests.api.compat.conftest import KeyVault, unique

UTC = datetime.UTC


def test_set_get_update_and_versions(keyvault: KeyVault) -> None:
    client, name = keyvault.client(), unique("db")
    first = client.set_secret(name, "hunter2", content_type="password", tags={"team": "a"})
    assert first.value == "hunter2" and first.properties.version == "0" * 31 + "1"
    assert first.properties.content_type == "password" and first.properties.tags == {"team": "a"}
    nbf, exp = datetime.datetime(2020, 1, 1, tzinfo=UTC), datetime.datetime(2099, 1, 1, tzinfo=UTC)
    second = client.set_secret(name, "hunter3", not_before=nbf, expires_on=exp)
    assert second.properties.version == "0" * 31 + "2"
    latest = client.get_secret(name)
    assert latest.value == "hunter3" and latest.properties.not_before == nbf and latest.properties.expires_on == exp
    assert latest.properties.content_type is None and latest.properties.tags is None
    assert latest.properties.recovery_level == "CustomizedRecoverable+Purgeable"
    assert latest.properties.recoverable_days == 7 and latest.properties.enabled is True
    assert latest.properties.vault_url == keyvault.url and latest.name == name
    assert client.get_secret(name, first.properties.version).value == "hunter2"

    updated = client.update_secret_properties(name, first.properties.version, enabled=False, tags={"b": "c"})
    assert updated.enabled is False and updated.tags == {"b": "c"} and updated.content_type == "password"
    with pytest.raises(HttpResponseError) as disabled:
        client.get_secret(name, first.properties.version)
    assert disabled.value.status_code == 403 and disabled.value.error is not None
    assert disabled.value.error.code == "Forbidden"
    retyped = client.update_secret_properties(name, content_type="text/plain")  # the latest; tags kept
    assert retyped.version == second.properties.version and retyped.content_type == "text/plain"
    versions = {p.version: p for p in client.list_properties_of_secret_versions(name)}
    assert sorted(versions) == [first.properties.version, second.properties.version]
    assert versions[first.properties.version].enabled is False


def test_lists_page_with_next_links(keyvault: KeyVault) -> None:
    client, stem = keyvault.client(), unique("page")
    names = [f"{stem}-{i}" for i in range(7)]
    for name in names:
        client.set_secret(name, "v")
    pages = list(client.list_properties_of_secrets(max_page_size=3).by_page())
    listed = [p.name for page in pages for p in page]
    assert set(names) <= set(listed) and len(listed) == len(set(listed)) and len(pages) >= 3
    for i in range(4):
        client.set_secret(names[0], f"v{i}")
    version_pages = [list(page) for page in client.list_properties_of_secret_versions(names[0], max_page_size=2)
                     .by_page()]
    assert [len(page) for page in version_pages] == [2, 2, 1]
    for name in names[:5]:
        client.begin_delete_secret(name).wait()
    deleted_pages = list(client.list_deleted_secrets(max_page_size=2).by_page())
    deleted = [d.name for page in deleted_pages for d in page]
    assert set(names[:5]) <= set(deleted) and len(deleted_pages) >= 3


def test_next_link_carries_api_version_and_page_size(keyvault: KeyVault) -> None:
    client = keyvault.client()
    for i in range(3):
        client.set_secret(unique(f"link{i}"), "v")
    with keyvault.http() as http:
        auth = {"Authorization": f"Bearer {keyvault.token}"}
        first = http.get("/secrets", params={"api-version": "7.4", "maxresults": 1}, headers=auth).json()
        assert len(first["value"]) == 1 and first["nextLink"].startswith(keyvault.url + "/secrets?")
        assert "api-version=7.4" in first["nextLink"] and "maxresults=1" in first["nextLink"]
        second = http.get(first["nextLink"], headers=auth).json()
        assert second["value"][0]["id"] > first["value"][0]["id"]


def test_delete_recover_purge_with_pollers(keyvault: KeyVault) -> None:
    client, name = keyvault.client(), unique("gone")
    client.set_secret(name, "v", tags={"k": "v"})
    poller = client.begin_delete_secret(name)
    poller.wait()
    deleted = poller.result()
    assert poller.done() and deleted.name == name and deleted.recovery_id == f"{keyvault.url}/deletedsecrets/{name}"
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == datetime.timedelta(days=7)
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)
    assert client.get_deleted_secret(name).recovery_id == deleted.recovery_id
    with pytest.raises(ResourceExistsError):  # the name is taken until recovered or purged
        client.set_secret(name, "again")
    recovering = client.begin_recover_deleted_secret(name)
    recovering.wait()
    assert recovering.done() and recovering.result().tags == {"k": "v"}
    assert client.get_secret(name).value == "v"
    client.begin_delete_secret(name).wait()
    client.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        client.begin_recover_deleted_secret(name)


def test_backup_and_restore_carry_kinkos_blob(keyvault: KeyVault) -> None:
    client, name = keyvault.client(), unique("kept")
    client.set_secret(name, "one")
    client.set_secret(name, "two", content_type="api-key")
    blob = client.backup_secret(name)
    assert blob.startswith(b"kinko-backup")
    with pytest.raises(ResourceExistsError):
        client.restore_secret_backup(blob)
    client.begin_delete_secret(name).wait()
    client.purge_deleted_secret(name)
    restored = client.restore_secret_backup(blob)
    assert restored.name == name and restored.version == "0" * 31 + "2" and restored.content_type == "api-key"
    assert client.get_secret(name, "0" * 31 + "1").value == "one"
    with pytest.raises(HttpResponseError) as garbage:
        client.restore_secret_backup(b"not a backup")
    assert garbage.value.status_code == 400


@pytest.mark.parametrize("name", ["under_score", "dot.ted", "a" * 128, "sp ace", "slash/ed", "ü"])
def test_names_the_rule_refuses(keyvault: KeyVault, name: str) -> None:
    client = keyvault.client()
    with pytest.raises(HttpResponseError) as refused:
        client.set_secret(name, "v")
    assert refused.value.status_code == 400 and refused.value.error is not None
    assert refused.value.error.code == "BadParameter"
    with pytest.raises(HttpResponseError) as read:
        client.get_secret(name)
    assert read.value.status_code == 400


def test_error_types(keyvault: KeyVault) -> None:
    client = keyvault.client()
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret(unique("missing"))
    assert missing.value.error is not None and missing.value.error.code == "SecretNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(unique("missing"), "f" * 32)
    with pytest.raises(ResourceNotFoundError):
        client.purge_deleted_secret(unique("missing"))
    with pytest.raises(HttpResponseError) as bad_version:
        client.get_secret(unique("any"), "not-hex")
    assert bad_version.value.status_code == 400
    with pytest.raises(HttpResponseError) as window:
        client.set_secret(unique("win"), "v", not_before=datetime.datetime(2030, 1, 1, tzinfo=UTC),
                          expires_on=datetime.datetime(2029, 1, 1, tzinfo=UTC))
    assert window.value.status_code == 400
    with pytest.raises(HttpResponseError) as reserved:
        client.set_secret(unique("tag"), "v", tags={"kinko:content-type": "x"})
    assert reserved.value.status_code == 400


def test_tokens_are_kinko_tokens_with_kinko_policies(keyvault: KeyVault) -> None:
    mine, other = unique("mine"), unique("other")
    keyvault.client().set_secret(other, "theirs")
    with keyvault.http() as http:
        root = {"X-Kinko-Token": keyvault.token}
        rules = [{"path": f"azure/{mine}", "capabilities": ["read", "create", "update", "list"]}]
        assert http.put(f"/v1/sys/policies/{mine}", json={"rules": rules}, headers=root).status_code < 300
        token = http.post("/v1/auth/token/create", json={"policies": [mine]}, headers=root).json()["token"]
    limited = keyvault.client(token)
    assert limited.set_secret(mine, "v").value == "v" and limited.get_secret(mine).value == "v"
    for call in (lambda: limited.get_secret(other), lambda: limited.begin_delete_secret(mine),
                 lambda: limited.set_secret(other, "x")):
        with pytest.raises(HttpResponseError) as denied:
            call()
        assert denied.value.status_code == 403 and denied.value.error is not None
        assert denied.value.error.code == "Forbidden"
    with pytest.raises(HttpResponseError) as wrong:
        keyvault.client("kinko_s_" + "x" * 43).get_secret(mine)
    assert wrong.value.status_code == 403  # the same answer as a token that may not: no validity oracle


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_every_api_version_the_sdk_knows(keyvault: KeyVault, api_version: str) -> None:
    client: SecretClient = keyvault.client(api_version=api_version)
    name = unique("ver")
    assert client.set_secret(name, api_version).value == api_version
    assert client.get_secret(name).value == api_version
    assert name in {p.name for p in client.list_properties_of_secrets()}
