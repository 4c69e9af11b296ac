"""The real `bao` CLI (OpenBao 2.7, from the dev lock) against a real `kinko server`: `status`, the `kv` commands,
`token lookup`/`create`, and `operator init`/`unseal`/`seal` against a non-dev server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.compat.vaultpeer import Bao
from tests.api.conftest import Server, start_server, stop_server

CANARY = "kinko-bao-cli-canary-5e1a"
CAS_MISMATCH = "check-and-set parameter did not match the current version"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Bao]]:
    work = tmp_path_factory.mktemp("bao-cli")
    server = start_server(["--dev"], work, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    try:
        yield server, Bao(server.addr, server.token, work)
    finally:
        stop_server(server.proc)


@pytest.fixture
def bao(dev: tuple[Server, Bao]) -> Bao:
    return dev[1]


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def test_status_on_a_dev_server(bao: Bao) -> None:
    rows = dict(line.split(None, 1) for line in bao.run("status").stdout.splitlines()[2:] if " " in line.strip())
    assert rows["Initialized"].strip() == "true" and rows["Sealed"].strip() == "false"
    doc = bao.json("status")
    assert doc["initialized"] is True and doc["sealed"] is False and doc["storage_type"] == "kinko"


def test_kv_put_get_versions_and_cas(bao: Bao) -> None:
    path = f"secret/{unique('cli')}/db"
    written = bao.json("kv", "put", path, "user=app", f"password={CANARY}")
    assert written["data"]["version"] == 1 and written["data"]["deletion_time"] == ""
    got = bao.json("kv", "get", path)
    assert got["data"]["data"] == {"user": "app", "password": CANARY}
    assert got["data"]["metadata"]["version"] == 1
    table = bao.run("kv", "get", "-field=user", path).stdout
    assert table.strip() == "app"
    assert bao.json("kv", "put", "-cas=1", path, "user=app2", "password=p2")["data"]["version"] == 2
    refused = bao.run("kv", "put", "-cas=1", path, "user=x", check=False)
    assert refused.returncode == 2 and CAS_MISMATCH in refused.stderr and "Code: 400" in refused.stderr
    assert CANARY not in refused.stderr
    assert bao.json("kv", "get", "-version=1", path)["data"]["data"]["password"] == CANARY
    assert bao.json("kv", "get", path)["data"]["data"] == {"user": "app2", "password": "p2"}
    patched = bao.json("kv", "patch", path, "password=p3")
    assert patched["data"]["version"] == 3
    assert bao.json("kv", "get", path)["data"]["data"] == {"user": "app2", "password": "p3"}
    missing = bao.run("kv", "get", f"secret/{unique('none')}", check=False)
    assert missing.returncode == 2 and "No value found" in missing.stderr


def write(server: Server, path: str, data: dict[str, str]) -> None:
    """A KV write over HTTP, for setup the CLI is not under test for (each bao run costs a process start)."""
    response = httpx.post(f"{server.addr}/v1/secret/data/{path}", json={"data": data},
                          headers={"X-Vault-Token": server.token}, timeout=10)
    assert response.status_code == 200, response.text


def test_kv_list_and_metadata(dev: tuple[Server, Bao]) -> None:
    server, bao = dev
    folder = unique("list")
    for name in ("a", "b", "deep/c"):
        write(server, f"{folder}/{name}", {"k": "v"})
    assert bao.json("kv", "list", f"secret/{folder}") == ["a", "b", "deep/"]
    assert f"{folder}/" in bao.json("kv", "list", "secret/")  # the mount's root
    assert "a" in bao.run("kv", "list", f"secret/{folder}/").stdout.split()
    path = f"secret/{folder}/a"
    bao.run("kv", "metadata", "put", "-max-versions=3", "-custom-metadata=owner=team-a",
            "-custom-metadata=tier=1", path)
    meta = bao.json("kv", "metadata", "get", path)["data"]
    assert meta["max_versions"] == 3 and meta["custom_metadata"] == {"owner": "team-a", "tier": "1"}
    assert meta["current_version"] == 1 and set(meta["versions"]) == {"1"}
    for n in range(4):
        write(server, f"{folder}/a", {"k": f"v{n}"})
    meta = bao.json("kv", "metadata", "get", path)["data"]
    assert meta["current_version"] == 5 and sorted(meta["versions"], key=int) == ["3", "4", "5"]
    assert bao.json("kv", "get", path)["data"]["metadata"]["custom_metadata"] == {"owner": "team-a", "tier": "1"}
    bao.run("kv", "metadata", "put", "-cas-required=true", path)
    refused = bao.run("kv", "put", path, "k=x", check=False)
    assert refused.returncode == 2 and "check-and-set parameter required" in refused.stderr
    assert bao.json("kv", "put", "-cas=5", path, "k=x")["data"]["version"] == 6
    bao.run("kv", "metadata", "delete", path)
    assert bao.run("kv", "metadata", "get", path, check=False).returncode == 2
    assert bao.run("kv", "get", path, check=False).returncode == 2
    assert bao.json("kv", "list", f"secret/{folder}") == ["b", "deep/"]


def test_kv_delete_undelete_destroy(bao: Bao) -> None:
    path = f"secret/{unique('versions')}"
    for n in (1, 2, 3):
        bao.run("kv", "put", path, f"n={n}")
    out = bao.run("kv", "delete", path).stdout
    assert "Success! Data deleted (if it existed) at:" in out
    deleted = bao.run("kv", "get", path)  # as against OpenBao: the deleted version's metadata, no data
    assert "deletion_time      20" in deleted.stdout and "Data" not in deleted.stdout
    bao.run("kv", "undelete", "-versions=3", path)
    assert bao.json("kv", "get", path)["data"]["data"] == {"n": "3"}
    bao.run("kv", "delete", "-versions=1", path)
    bao.run("kv", "destroy", "-versions=2", path)
    versions = bao.json("kv", "metadata", "get", path)["data"]["versions"]
    assert versions["1"]["deletion_time"] and not versions["1"]["destroyed"]
    assert versions["2"]["destroyed"] and versions["2"]["deletion_time"] == ""
    assert not versions["3"]["destroyed"] and versions["3"]["deletion_time"] == ""
    destroyed = bao.run("kv", "get", "-version=2", path).stdout  # as against OpenBao: metadata, no data
    assert "destroyed          true" in destroyed and "Data" not in destroyed
    bao.run("kv", "undelete", "-versions=1,2", path)
    assert bao.json("kv", "get", "-version=1", path)["data"]["data"] == {"n": "1"}
    assert "destroyed          true" in bao.run("kv", "get", "-version=2", path).stdout  # stays destroyed
    assert "Success!" in bao.run("kv", "delete", f"secret/{unique('never-written')}").stdout  # Vault: 204


def test_token_lookup_create_and_use(dev: tuple[Server, Bao]) -> None:
    server, bao = dev
    mine = bao.json("token", "lookup")["data"]
    assert mine["policies"] == ["root"] and mine["id"] == "" and mine["accessor"]
    folder = unique("tok")
    write(server, f"{folder}/app", {"pw": CANARY})
    write(server, unique("other"), {"pw": "x"})
    with httpx.Client(base_url=server.addr, headers={"X-Vault-Token": server.token}, timeout=10) as http:
        rules = [{"path": f"{folder}/*", "capabilities": ["read"]}]
        assert http.put(f"/v1/sys/policies/{folder}", json={"rules": rules}).status_code == 200
    created = bao.json("token", "create", f"-policy={folder}", "-ttl=1h", "-display-name=cli")["auth"]
    token = created["client_token"]
    assert token.startswith("kinko_s_") and created["policies"] == ["default", folder]
    assert created["lease_duration"] == 3600 and created["renewable"] is True
    looked = bao.json("token", "lookup", token=token)["data"]
    assert looked["accessor"] == created["accessor"] and looked["policies"] == ["default", folder]
    assert 3590 <= looked["ttl"] <= 3600 and token not in json.dumps(looked)
    by_accessor = bao.json("token", "lookup", "-accessor", created["accessor"])["data"]
    assert by_accessor["accessor"] == created["accessor"]
    assert bao.json("kv", "get", f"secret/{folder}/app", token=token)["data"]["data"] == {"pw": CANARY}
    denied = bao.run("kv", "put", f"secret/{folder}/app", "pw=y", token=token, check=False)
    assert denied.returncode == 2 and "Code: 403" in denied.stderr and "permission denied" in denied.stderr
    renewed = bao.json("token", "renew", "-increment=2h", token=token)["auth"]
    assert renewed["lease_duration"] > 3600
    bao.run("token", "revoke", "-accessor", created["accessor"])
    gone = bao.run("kv", "get", f"secret/{folder}/app", token=token, check=False)
    assert gone.returncode == 2 and "Code: 403" in gone.stderr and CANARY not in gone.stdout + gone.stderr


def test_operator_init_unseal_seal_on_a_new_server(tmp_path: Path) -> None:
    server = start_server(["--vault", str(tmp_path / "vault.db")], tmp_path, expect_token=False)
    try:
        bao = Bao(server.addr, "", tmp_path)
        fresh = bao.run("status", check=False)
        assert fresh.returncode == 2  # sealed (and uninitialised): bao's exit code for a sealed server
        assert bao.json_status()["initialized"] is False
        init = bao.json("operator", "init", "-key-shares=3", "-key-threshold=2")
        shares, root = init["unseal_keys_b64"], init["root_token"]
        assert len(shares) == 3 and init["unseal_threshold"] == 2 and root.startswith("kinko_root_")
        assert all(share.startswith("kinko-share:") for share in shares) and init["unseal_keys_hex"] == shares
        status = bao.json_status()
        assert status["initialized"] is True and status["sealed"] is True and (status["t"], status["n"]) == (2, 3)
        again = bao.run("operator", "init", check=False)  # as on Vault: 400, sealed or not, no token needed
        assert again.returncode == 2 and "Code: 400" in again.stderr and "already initialized" in again.stderr
        wrong = bao.run("operator", "unseal", "kinko-share:not-a-share", check=False)
        assert wrong.returncode == 2 and "Code: 400" in wrong.stderr
        first = bao.json("operator", "unseal", shares[0])
        assert first["sealed"] is True and first["progress"] == 1
        second = bao.json("operator", "unseal", shares[2])
        assert second["sealed"] is False and second["progress"] == 0
        assert bao.run("status").returncode == 0
        bao = Bao(server.addr, root, tmp_path)
        bao.run("kv", "put", "secret/after-init", f"v={CANARY}")
        assert "Success! Vault is sealed." in bao.run("operator", "seal").stdout
        assert bao.json_status()["sealed"] is True
        sealed = bao.run("kv", "get", "secret/after-init", check=False)
        assert sealed.returncode == 2 and "Code: 503" in sealed.stderr and "is sealed" in sealed.stderr.lower()
        assert CANARY not in sealed.stderr
        for share in shares[1:]:
            bao.run("operator", "unseal", share)
        assert bao.json("kv", "get", "secret/after-init")["data"]["data"] == {"v": CANARY}
    finally:
        stop_server(server.proc)


def test_transit_with_the_bao_cli(bao: Bao) -> None:
    """The README's transit lines: `bao write transit/...` and `bao list transit/keys`."""
    import base64

    key = unique("orders")
    bao.run("write", f"transit/keys/{key}", "type=aes256-gcm96")
    plaintext = base64.b64encode(CANARY.encode()).decode()
    sealed = bao.json("write", f"transit/encrypt/{key}", f"plaintext={plaintext}")["data"]["ciphertext"]
    assert sealed.startswith("vault:v1:")
    assert bao.json("write", f"transit/decrypt/{key}", f"ciphertext={sealed}")["data"]["plaintext"] == plaintext
    assert key in bao.json("list", "transit/keys")
    assert bao.json("read", f"transit/keys/{key}")["data"]["type"] == "aes256-gcm96"
    refused = bao.run("write", f"transit/decrypt/{key}", "ciphertext=vault:v1:AAAA", check=False)
    assert refused.returncode == 2 and "invalid ciphertext length" in refused.stderr
