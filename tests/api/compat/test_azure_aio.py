"""The real azure-keyvault-secrets `aio` client (aiohttp) against a real `kinko server` over TLS."""

from __future__ import annotations

import asyncio

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.api.compat.conftest import KeyVault, unique


async def _every_operation(keyvault: KeyVault) -> None:
    stem = unique("aio")
    async with keyvault.aio_client() as client:
        first = await client.set_secret(stem, "one", tags={"t": "1"})
        await client.set_secret(stem, "two")
        assert (await client.get_secret(stem)).value == "two"
        assert (await client.get_secret(stem, first.properties.version)).value == "one"
        props = await client.update_secret_properties(stem, first.properties.version, content_type="note")
        assert props.content_type == "note" and props.tags == {"t": "1"}
        versions = [p.version async for p in client.list_properties_of_secret_versions(stem, max_page_size=1)]
        assert versions == ["0" * 31 + "1", "0" * 31 + "2"]
        for i in range(4):
            await client.set_secret(f"{stem}-{i}", "v")
        pages = 0
        async for page in client.list_properties_of_secrets(max_page_size=2).by_page():
            pages += 1
            _ = [p async for p in page]
        assert pages >= 3
        blob = await client.backup_secret(stem)

        deleted = await client.delete_secret(stem)  # aio waits for the deletion itself
        assert deleted.recovery_id is not None and deleted.scheduled_purge_date is not None
        assert stem in [d.name async for d in client.list_deleted_secrets(max_page_size=1)]
        assert (await client.get_deleted_secret(stem)).name == stem
        with pytest.raises(ResourceNotFoundError):
            await client.get_secret(stem)
        recovered = await client.recover_deleted_secret(stem)
        assert recovered.name == stem and (await client.get_secret(stem)).value == "two"

        await client.delete_secret(stem)
        await client.purge_deleted_secret(stem)
        with pytest.raises(ResourceNotFoundError):
            await client.get_deleted_secret(stem)
        restored = await client.restore_secret_backup(blob)
        assert restored.version == "0" * 31 + "2"
        with pytest.raises(ResourceExistsError):
            await client.restore_secret_backup(blob)
        with pytest.raises(HttpResponseError) as refused:
            await client.set_secret("no_underscores", "v")
        assert refused.value.status_code == 400


def test_aio_client_every_operation(keyvault: KeyVault) -> None:
    asyncio.run(_every_operation(keyvault))


async def _concurrent(keyvault: KeyVault) -> list[str]:
    names = [unique("many") for _ in range(8)]
    async with keyvault.aio_client() as client:
        await asyncio.gather(*(client.set_secret(name, name) for name in names))
        got = await asyncio.gather(*(client.get_secret(name) for name in names))
    return [secret.value or "" for secret in got]


def test_aio_concurrent_requests_share_one_challenge(keyvault: KeyVault) -> None:
    values = asyncio.run(_concurrent(keyvault))
    assert len(values) == 8 and all(v.startswith("many-") for v in values)
