"""One VaultSession, two transports: the same script gives the same answers and the same errors through a local
`Vault.session(caller)` and through `RemoteVault` talking to a real `kinko server` process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kinko.client import RemoteVault
from kinko.errors import (
    InvalidInput,
    InvalidPath,
    NotFound,
    PermissionDenied,
    SecretDisabled,
    VersionConflict,
)
from kinko.vault import KEEP, Caller, LocalSession, VaultSession
from tests.access.test_identity import ISSUER, Issuer
from tests.api.conftest import Server, keyfile_vault, start_server, stop_server

CANARY = "par-canary-7f3c9e"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("session-server")
    srv = start_server(["--dev"], work, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    yield srv
    stop_server(srv.proc)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalSession]:
    vault, _ = keyfile_vault(tmp_path)  # key-file sealed, 7-day retention: like the dev server
    yield vault.session(Caller.local_operator())
    vault.close()


@pytest.fixture
def remote(server: Server) -> Iterator[RemoteVault]:
    session = RemoteVault.connect(server.addr, server.token)
    yield session
    session.close()


def _secrets(s: VaultSession, base: str) -> list[Any]:
    out: list[Any] = []
    info = s.put(f"{base}/db", CANARY.encode(), tags={"owner": "payments"})
    out.append((info.path, info.version, info.attributes.content_type, dict(info.attributes.tags)))
    s.put(f"{base}/db", b"v2", cas=1)
    with pytest.raises(VersionConflict):
        s.put(f"{base}/db", b"v3", cas=1)
    out += [s.get(f"{base}/db").value, s.get(f"{base}/db", 1).value, s.get(f"{base}/db").info.version]
    out.append(s.list(base).keys)
    out.append([(v.version, v.attributes.enabled) for v in s.versions(f"{base}/db")])
    disabled = s.update_attributes(f"{base}/db", 1, enabled=False, expires=4102444800.0)
    out.append((disabled.attributes.enabled, disabled.attributes.expires, dict(disabled.attributes.tags)))
    with pytest.raises(SecretDisabled):
        s.get(f"{base}/db", 1)
    kept = s.update_attributes(f"{base}/db", 1, enabled=True, not_before=KEEP)  # KEEP leaves expires alone
    out.append((kept.attributes.enabled, kept.attributes.expires))
    s.put(f"{base}/kv", {"user": b"u", "bin": b"\xff\x00"}, content_type="Opaque")
    out.append(s.get(f"{base}/kv").value)
    blob = s.backup(f"{base}/kv")
    out.append(s.delete(f"{base}/kv").path)
    out.append([i.path for i in s.list_deleted(base)])
    s.purge(f"{base}/kv")
    restored = s.restore(blob)
    out.append((restored.path, restored.current_version))
    s.delete(f"{base}/db")
    out.append(s.recover(f"{base}/db").current_version)
    for bad, error in ((f"{base}/none", NotFound), (f"{base}/../x", InvalidPath)):
        with pytest.raises(error):
            s.get(bad)
    return out


def _access(s: VaultSession, base: str) -> list[Any]:
    out: list[Any] = []
    name = f"{base}-read"
    policy = s.write_policy({"name": name, "rules": [{"path": f"{base}/*", "capabilities": ["read"]}]})
    out += [policy.to_dict(), s.read_policy(name).to_dict(), name in s.list_policies()]
    token, info = s.create_token(policies=[name], ttl=3600, display_name="par", metadata={"team": "a"})
    out.append((info.policies, info.display_name, info.ttl, dict(info.metadata), info.renewable))
    looked = s.lookup_token(token)
    out.append((looked.accessor == info.accessor, looked.policies))
    renewed = s.renew_token(accessor=info.accessor, increment=60)
    out.append(renewed.ttl)
    out.append(info.accessor in [t.accessor for t in s.list_tokens()])
    out.append(s.revoke_accessor(info.accessor))
    with pytest.raises(PermissionDenied):
        s.lookup_token(token)  # revoked: answered exactly like a token the caller may not see
    s.delete_policy(name)
    with pytest.raises(NotFound):
        s.read_policy(name)
    with pytest.raises(InvalidInput):
        s.write_policy({"name": "root", "rules": []})
    out.append(s.audit_hash("value").startswith("hmac-sha256:"))
    return out


def _kubernetes(s: VaultSession, base: str) -> list[Any]:
    issuer = Issuer()
    config = s.configure_kubernetes_auth(issuer=ISSUER, jwks=issuer.jwks())
    role = s.write_kubernetes_role(f"{base}-web", service_account_names=["web"], namespaces=["shop"],
                                   audience=None, policies=["secrets-reader"], ttl=120)
    out: list[Any] = [config == s.read_kubernetes_auth_config(), config.issuer, role.to_dict(),
                      s.read_kubernetes_role(f"{base}-web") == role, f"{base}-web" in s.list_kubernetes_roles()]
    login = s.login_kubernetes(f"{base}-web", issuer.mint(issuer.claims(now=time.time())))
    out.append((login.policies, login.lease_duration, login.metadata["role"], login.token.startswith("kinko_s_")))
    with pytest.raises(PermissionDenied):
        s.login_kubernetes(f"{base}-web", issuer.mint(issuer.claims("elsewhere", now=time.time())))
    s.delete_kubernetes_role(f"{base}-web")
    with pytest.raises(NotFound):
        s.read_kubernetes_role(f"{base}-web")
    return out


def _lifecycle(s: VaultSession) -> list[Any]:
    status = s.status()
    term = s.rotate()
    return [(status.initialized, status.sealed, status.seal_type, status.retention_days), term == status.key_term + 1
            if status.key_term else None, s.rewrap() >= 1]


def _keys(s: VaultSession, base: str) -> list[Any]:
    """Named keys: lifecycle, encrypt/decrypt/rewrap/datakey, sign/verify and the errors, alike on both sides."""
    name = f"{base}-key"
    info = s.create_key(name)
    out: list[Any] = [(info.name, info.type, info.latest_version, sorted(info.versions)), name in s.list_keys()]
    sealed = s.encrypt(name, CANARY.encode(), associated_data=b"row-1")
    out.append(s.decrypt(name, sealed, associated_data=b"row-1"))
    with pytest.raises(InvalidInput, match="cipher: message authentication failed"):
        s.decrypt(name, sealed, associated_data=b"row-2")
    out.append(s.rotate_key(name).latest_version)
    rewrapped = s.rewrap_ciphertext(name, sealed, associated_data=b"row-1")
    out += [rewrapped.startswith("vault:v2:"), s.decrypt(name, rewrapped, associated_data=b"row-1")]
    out.append(s.configure_key(name, min_decryption_version=2, deletion_allowed=True).min_decryption_version)
    with pytest.raises(InvalidInput, match="too old"):
        s.decrypt(name, sealed, associated_data=b"row-1")
    wrapped, key = s.data_key(name, bits=128)
    out += [key is not None and len(key) == 16 and s.decrypt(name, wrapped) == key, s.data_key(name,
                                                                                            plaintext=False)[1]]
    s.create_key(f"{name}-ed", key_type="ed25519")
    signature = s.sign(f"{name}-ed", b"message")
    out += [s.verify(f"{name}-ed", b"message", signature), s.verify(f"{name}-ed", b"other", signature)]
    s.delete_key(name)
    with pytest.raises(NotFound):
        s.read_key(name)
    with pytest.raises(InvalidInput, match="deletion is not allowed"):
        s.delete_key(f"{name}-ed")
    return out


@pytest.mark.parametrize("part", [_secrets, _access, _kubernetes, _keys])
def test_local_and_remote_sessions_answer_alike(part: Any, local: LocalSession, remote: RemoteVault,
                                                request: pytest.FixtureRequest) -> None:
    base = f"par{request.node.callspec.id}"
    assert part(local, base) == part(remote, base)


def test_rotation_and_status_answer_alike(local: LocalSession, remote: RemoteVault) -> None:
    local.put("rot/a", b"x")
    remote.put("rot/a", b"x")
    assert _lifecycle(local) == _lifecycle(remote)


def test_only_a_local_session_knows_whether_an_operator_sealed_the_vault(local: LocalSession,
                                                                          remote: RemoteVault) -> None:
    assert local.status().operator_sealed is False
    assert remote.status().operator_sealed is None
    assert "operator_sealed" not in remote.status().to_dict()


def test_a_session_never_shows_its_token(server: Server, remote: RemoteVault) -> None:
    token, _ = remote.create_token(policies=["secrets-reader"])
    other = RemoteVault.connect(server.addr, token)
    try:
        assert token not in repr(other) and token not in repr(other.client)
        assert server.addr in repr(other)
    finally:
        other.close()


def test_a_remote_session_with_a_bad_token_gets_the_uniform_denial(server: Server) -> None:
    session = RemoteVault.connect(server.addr, "kinko_s_" + "A" * 43)
    try:
        with pytest.raises(PermissionDenied) as caught:
            session.get("any/path")
        assert caught.value.message == "permission denied"
    finally:
        session.close()
