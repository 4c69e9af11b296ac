"""Kubernetes auth authorization: role writes cannot escalate, login tokens end with the role's TTL, audience."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kinko.core.model import Caller
from kinko.errors import InvalidInput, PermissionDenied
from kinko.vault import Vault
from tests.access.test_identity import ISSUER, Issuer
from tests.conftest import FixedClock, new_keyfile_vault

WEB = {"name": "web", "rules": [{"path": "shop/web/*", "capabilities": ["read"]}]}


def _writer(capabilities: list[str]) -> dict[str, Any]:
    return {"name": "role-writer", "rules": [{"path": "sys/auth/kubernetes/role/*", "capabilities": capabilities}]}


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def env(tmp_path: Path, clock: FixedClock, issuer: Issuer) -> Iterator[tuple[Vault, Caller, Path]]:
    vault = new_keyfile_vault(tmp_path, clock)
    log = tmp_path / "audit.log"
    vault.enable_audit(log)
    root = Caller.local_operator()
    vault.write_policy(root, WEB)  # `admin` is built in
    vault.configure_kubernetes_auth(root, issuer=ISSUER, jwks=issuer.jwks())
    yield vault, root, log
    vault.close()


def _caller(vault: Vault, root: Caller, capabilities: list[str]) -> Caller:
    vault.write_policy(root, _writer(capabilities))
    token, _ = vault.create_token(root, policies=["role-writer", "web"])
    return vault.authenticate(token)


def _write(vault: Vault, caller: Caller, name: str, policies: list[str], **extra: Any) -> None:
    vault.write_kubernetes_role(caller, name, service_account_names=["web"], namespaces=["shop"],
                                **{"audience": None, "ttl": 600, **extra}, policies=policies)


def _records(log: Path, operation: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return [r for r in lines if r["operation"] == operation]


# -- finding 1: a role may only grant policies the writer holds, unless the writer has sudo ---------------------
def test_role_granting_a_policy_the_writer_lacks_is_refused_and_audited(
        env: tuple[Vault, Caller, Path], issuer: Issuer) -> None:
    vault, root, log = env
    writer = _caller(vault, root, ["create", "update"])
    with pytest.raises(PermissionDenied):
        _write(vault, writer, "escalate", ["admin"])
    with pytest.raises(PermissionDenied):  # mixing a held policy in does not help
        _write(vault, writer, "escalate", ["web", "admin"])
    denied = [r for r in _records(log, "k8s_auth.role.write") if r["outcome"] == "denied"]
    assert len(denied) == 2 and denied[0]["path"] == "sys/auth/kubernetes/role/escalate"
    assert vault.list_kubernetes_roles(root) == []
    with pytest.raises(PermissionDenied):  # and so there is no admin token to log in to
        vault.login_kubernetes("escalate", issuer.mint())


def test_role_with_a_subset_of_the_writers_policies_is_allowed(env: tuple[Vault, Caller, Path],
                                                               issuer: Issuer) -> None:
    vault, root, _ = env
    writer = _caller(vault, root, ["create", "update"])
    _write(vault, writer, "web", ["web"])
    _write(vault, writer, "web", ["web"], ttl=300)  # replacing it is an update, still a subset
    assert vault.login_kubernetes("web", issuer.mint()).policies == ("web",)


def test_sudo_on_the_role_path_or_root_may_grant_any_policy(env: tuple[Vault, Caller, Path]) -> None:
    vault, root, _ = env
    _write(vault, root, "by-root", ["admin"])
    writer = _caller(vault, root, ["create", "update", "sudo"])
    _write(vault, writer, "by-sudo", ["admin"])
    assert vault.read_kubernetes_role(root, "by-sudo").policies == ("admin",)


# -- finding 10: a login token cannot be renewed past the role's TTL --------------------------------------------
def test_login_token_is_not_renewable_past_the_role_ttl(env: tuple[Vault, Caller, Path], issuer: Issuer,
                                                        clock: FixedClock) -> None:
    vault, root, _ = env
    _write(vault, root, "web", ["web"], ttl=600)
    login = vault.login_kubernetes("web", issuer.mint())
    info = vault.lookup_token(root, accessor=login.accessor)
    assert info.max_expires is not None and info.max_expires - info.created == 600
    pod = vault.authenticate(login.token)
    clock.advance(500)
    renewed = vault.renew_token(pod)
    assert renewed.expires == info.created + 600  # capped at the role's ttl, not pushed to +600 from now
    clock.advance(101)
    with pytest.raises(PermissionDenied):
        vault.authenticate(login.token)


# -- finding 11: a role without an audience expects "kinko" ------------------------------------------------------
def test_role_audience_defaults_to_kinko(env: tuple[Vault, Caller, Path], issuer: Issuer) -> None:
    vault, root, _ = env
    _write(vault, root, "web", ["web"])
    assert vault.read_kubernetes_role(root, "web").audience == "kinko"
    vault.login_kubernetes("web", issuer.mint(issuer.claims(aud="kinko")))
    vault.login_kubernetes("web", issuer.mint(issuer.claims(aud=["other", "kinko"])))
    for aud in ("other-service", ["other", "another"], None):  # replayed from another service, or none at all
        with pytest.raises(PermissionDenied):
            vault.login_kubernetes("web", issuer.mint(issuer.claims(aud=aud)))


def test_explicit_audience_is_required_exactly(env: tuple[Vault, Caller, Path], issuer: Issuer) -> None:
    vault, root, _ = env
    _write(vault, root, "web", ["web"], audience="payments")
    vault.login_kubernetes("web", issuer.mint(issuer.claims(aud="payments")))
    with pytest.raises(PermissionDenied):
        vault.login_kubernetes("web", issuer.mint(issuer.claims(aud="kinko")))
    with pytest.raises(InvalidInput):
        _write(vault, root, "web", ["web"], audience="")


def test_a_stored_role_without_audience_is_read_as_kinko(env: tuple[Vault, Caller, Path], issuer: Issuer) -> None:
    vault, root, _ = env
    _write(vault, root, "web", ["web"])
    # A roles document written before the default existed (audience null) must not accept any audience.
    raw = vault._store.get_meta("k8s_auth/roles")
    assert raw is not None
    roles = json.loads(raw.partition(b"\n")[2])  # "<integrity tag>\n<json>"
    roles["web"]["audience"] = None
    vault._store.put_meta("k8s_auth/roles", vault._kubernetes._tagged("k8s_auth/roles", json.dumps(roles).encode()))
    assert vault.read_kubernetes_role(root, "web").audience == "kinko"
    with pytest.raises(PermissionDenied):
        vault.login_kubernetes("web", issuer.mint(issuer.claims(aud="other-service")))
