"""/v1/auth/kubernetes: login and admin routes, in process and over real HTTP against a `kinko server`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinko.cli import cli
from kinko.client import RemoteVault
from kinko.errors import InvalidInput, NotFound, PermissionDenied
from tests.access.test_identity import AUDIENCE, ISSUER, Issuer, unsigned
from tests.api.conftest import KINKO, Local, Server, keyfile_vault

DENIED = {"error": {"code": "permission_denied", "message": "permission denied"}, "errors": ["permission denied"]}


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


def _configure(local: Local, issuer: Issuer) -> None:
    c = local.client
    assert c.put("/v1/sys/policies/web", headers=local.auth,
                 json={"rules": [{"path": "shop/web/*", "capabilities": ["read"]}]}).status_code == 200
    r = c.post("/v1/auth/kubernetes/config", headers=local.auth,
               json={"issuer": ISSUER, "jwks": issuer.jwks(), "pem_keys": [issuer.pem("ec")]})
    assert r.status_code == 200, r.text
    r = c.post("/v1/auth/kubernetes/role/web", headers=local.auth, json={
        "service_account_names": ["web"], "namespaces": ["shop"], "audience": AUDIENCE, "policies": ["web"],
        "ttl": 300})
    assert r.status_code == 200, r.text


def test_login_answers_in_vaults_shape_and_the_token_works(local: Local, issuer: Issuer) -> None:
    _configure(local, issuer)
    local.vault.put(local.vault.authenticate(local.token), "shop/web/db", b"pw")
    jwt = issuer.mint(issuer.claims(now=time.time()), alg="ES256")
    r = local.client.post("/v1/auth/kubernetes/login", json={"role": "web", "jwt": jwt})
    assert r.status_code == 200, r.text
    auth = r.json()["auth"]
    assert auth["policies"] == ["default", "web"] and auth["lease_duration"] == 300 and auth["accessor"]
    got = local.client.get("/v1/secrets/shop/web/db", headers={"X-Kinko-Token": auth["client_token"]})
    assert got.status_code == 200 and got.json()["value"] == "pw"
    assert local.client.get("/v1/auth/kubernetes/role", headers={"X-Kinko-Token": auth["client_token"]}
                            ).status_code == 403


def test_bad_logins_are_one_uniform_403(local: Local, issuer: Issuer) -> None:
    _configure(local, issuer)
    now = time.time()
    for role, jwt in (("web", issuer.mint(issuer.claims("other", "web", now=now))),
                      ("web", issuer.mint(issuer.claims(now=now, aud="other"))),
                      ("web", issuer.mint(issuer.claims(now=now - 7200))),
                      ("web", Issuer().mint(issuer.claims(now=now))),
                      ("web", unsigned(issuer.claims(now=now))),
                      ("web", unsigned(issuer.claims(now=now), "HS256", issuer.pem().encode())),
                      ("nope", issuer.mint(issuer.claims(now=now)))):
        r = local.client.post("/v1/auth/kubernetes/login", json={"role": role, "jwt": jwt})
        assert (r.status_code, r.json()) == (403, DENIED)
    r = local.client.post("/v1/auth/kubernetes/login", json={"role": "web"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"


def test_admin_routes(local: Local, issuer: Issuer) -> None:
    _configure(local, issuer)
    c, auth = local.client, local.auth
    assert c.get("/v1/auth/kubernetes/role", headers=auth).json() == {"roles": ["web"]}
    assert c.get("/v1/auth/kubernetes/role/web", headers=auth).json()["namespaces"] == ["shop"]
    config = c.get("/v1/auth/kubernetes/config", headers=auth).json()
    assert config["issuer"] == ISSUER and len(config["jwks"]["keys"]) == 2
    assert c.delete("/v1/auth/kubernetes/role/web", headers=auth).status_code == 204
    assert c.get("/v1/auth/kubernetes/role/web", headers=auth).status_code == 404
    bad = c.post("/v1/auth/kubernetes/role/x", headers=auth, json={
        "service_account_names": ["a"], "namespaces": ["b"], "policies": ["root"], "ttl": 60})
    assert bad.status_code == 400 and "root" in bad.json()["error"]["message"]
    assert c.post("/v1/auth/kubernetes/config", json={"pem_keys": [issuer.pem()]}).status_code == 403


def test_sealed_server_answers_503(local: Local, issuer: Issuer) -> None:
    _configure(local, issuer)
    local.vault._seal_state.seal()
    r = local.client.post("/v1/auth/kubernetes/login", json={"role": "web", "jwt": issuer.mint()})
    assert r.status_code == 503 and r.json()["error"]["code"] == "sealed"


def test_remote_session_administers_kubernetes_auth_and_logs_in_over_real_http(server: Server,
                                                                               issuer: Issuer) -> None:
    admin = RemoteVault.connect(server.addr, server.token)
    try:
        admin.write_policy({"name": "k8s-web", "rules": [{"path": "k8s/web/*", "capabilities": ["read"]}]})
        admin.put("k8s/web/db", b"pw")
        config = admin.configure_kubernetes_auth(issuer=ISSUER, jwks=issuer.jwks())
        assert config.issuer == ISSUER and len(config.public_keys()) == 2  # the issuer's RSA and EC keys
        role = admin.write_kubernetes_role("k8s-web", service_account_names=["web"], namespaces=["shop"],
                                           audience=AUDIENCE, policies=["k8s-web"], ttl=120)
        assert role.ttl == 120 and role.policies == ("k8s-web",)
        assert "k8s-web" in admin.list_kubernetes_roles()
        assert admin.read_kubernetes_role("k8s-web") == role
        assert admin.read_kubernetes_auth_config() == config
        with pytest.raises(InvalidInput):
            admin.read_kubernetes_role("../sys/seal")  # refused before any request is made
    finally:
        admin.close()
    pod = RemoteVault.connect(server.addr)
    try:
        with pytest.raises(PermissionDenied):
            pod.login_kubernetes("k8s-web", issuer.mint(issuer.claims("shop", "db", now=time.time())))
        login = pod.login_kubernetes("k8s-web", issuer.mint(issuer.claims(now=time.time())))
        assert login.token.startswith("kinko_s_") and login.policies == ("k8s-web",)
        assert 0 < login.lease_duration <= 120 and login.token not in repr(login)
        with pytest.raises(PermissionDenied):
            pod.get("k8s/web/db")  # a login does not change who a session is ...
        pod.use_token(login.token)
        assert pod.get("k8s/web/db").value == b"pw"  # ... until it is told to act with the new token
        with pytest.raises(PermissionDenied):
            pod.delete_kubernetes_role("k8s-web")
    finally:
        pod.close()
    admin = RemoteVault.connect(server.addr, server.token)
    try:
        admin.delete_kubernetes_role("k8s-web")
        with pytest.raises(NotFound):
            admin.read_kubernetes_role("k8s-web")
    finally:
        admin.close()
    assert "pw" not in server.stderr.read_text() and login.token not in server.stderr.read_text()


def test_cli_local_admin_and_remote_login(tmp_path: Path, server: Server, issuer: Issuer) -> None:
    vault, _ = keyfile_vault(tmp_path)
    vault.close()
    (tmp_path / "jwks.json").write_text(issuer.jwks())
    env = {"KINKO_VAULT": str(tmp_path / "vault.db"), "KINKO_ADDR": ""}
    runner = CliRunner()

    def kinko(*args: str) -> str:
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    kinko("auth", "kubernetes", "config", "--issuer", ISSUER, "--jwks-file", str(tmp_path / "jwks.json"))
    out = kinko("auth", "kubernetes", "role", "write", "web", "--sa", "web", "--namespace", "shop",
                "--audience", AUDIENCE, "--policy", "default", "--ttl", "15m")
    assert "token ttl 900s" in out
    assert json.loads(kinko("auth", "kubernetes", "role", "read", "web", "-o", "json"))["namespaces"] == ["shop"]
    assert kinko("auth", "kubernetes", "role", "list").split() == ["web"]
    assert "2 key(s)" in kinko("auth", "kubernetes", "config", "--show")
    bad = runner.invoke(cli, ["auth", "kubernetes", "role", "write", "x", "--sa", "a", "--namespace", "b",
                              "--ttl", "soon"], env=env)
    assert bad.exit_code == 2
    kinko("auth", "kubernetes", "role", "delete", "web")
    assert kinko("auth", "kubernetes", "role", "list").strip() == ""
    # Remote: configure the real server through the CLI, then log in with a JWT file in a real process.
    remote = {**os.environ, "KINKO_ADDR": server.addr, "KINKO_TOKEN": server.token, "HOME": str(tmp_path)}
    for args in (["config", "--issuer", ISSUER, "--jwks-file", str(tmp_path / "jwks.json")],
                 ["role", "write", "cli-web", "--sa", "web", "--namespace", "shop", "--audience", AUDIENCE]):
        done = subprocess.run([*KINKO, "auth", "kubernetes", *args], env=remote, capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
    (tmp_path / "sa").write_text(issuer.mint(issuer.claims(now=time.time())))
    pod_env = {k: v for k, v in remote.items() if k != "KINKO_TOKEN"}
    done = subprocess.run([*KINKO, "auth", "kubernetes", "login", "--role", "cli-web", "--jwt-file",
                           str(tmp_path / "sa")], env=pod_env, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / ".kinko" / "token").read_text())
    stored = doc["token"]
    assert doc["addr"] == server.addr and stored.startswith("kinko_s_")
    assert stored.encode() not in done.stderr + done.stdout
    assert (tmp_path / ".kinko" / "token").stat().st_mode & 0o777 == 0o600
    (tmp_path / "sa").write_text(Issuer().mint(issuer.claims(now=time.time())))
    done = subprocess.run([*KINKO, "auth", "kubernetes", "login", "--role", "cli-web", "--jwt-file",
                           str(tmp_path / "sa"), "--print"], env=pod_env, capture_output=True, timeout=30)
    assert done.returncode == 1 and b"permission_denied" in done.stderr and done.stdout == b""
