"""The KMS v2 plugin driven through stubs generated from the proto, over a real gRPC channel on a Unix socket,
against a real `kinko server --dev`: Status -> Encrypt -> rotate -> Status shows the new key_id -> Decrypt old and
new; hostile inputs refused; a least-privilege token; an outage gives UNAVAILABLE and a failing healthz."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from kinko.client import RemoteVault
from kinko.deliver.kms.plugin import KmsPlugin, serve
from kinko.deliver.kms.proto import api_pb2 as pb
from kinko.deliver.kms.proto import api_pb2_grpc as pb_grpc
from kinko.deliver.unix_grpc import stop
from tests.api.conftest import Server, start_server, stop_server

KEY = "etcd"
POLICY = {"name": "kms-plugin", "rules": [{"path": f"transit/keys/{KEY}", "capabilities": ["read"]},
                                          {"path": f"transit/encrypt/{KEY}", "capabilities": ["update"]},
                                          {"path": f"transit/decrypt/{KEY}", "capabilities": ["update"]}]}


@dataclass
class Kms:
    stub: pb_grpc.KeyManagementServiceStub
    admin: RemoteVault
    socket: Path
    server: Server
    token: str


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[Kms]:
    server = start_server(["--dev"], tmp_path, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    admin = RemoteVault.connect(server.addr, server.token)
    admin.create_key(KEY)
    admin.write_policy(POLICY)
    token, _ = admin.create_token(policies=["kms-plugin"])
    session = RemoteVault.connect(server.addr, token, timeout=2)
    socket_path = tmp_path / "kms.sock"
    grpc_server = serve(socket_path, KmsPlugin(session, KEY))
    channel = grpc.insecure_channel(f"unix:{socket_path}")
    try:
        yield Kms(pb_grpc.KeyManagementServiceStub(channel), admin, socket_path, server, token)
    finally:
        channel.close()
        stop(grpc_server)
        session.close()
        admin.close()
        if server.proc.poll() is None:
            stop_server(server.proc)


def test_status_encrypt_rotate_decrypt(kms: Kms) -> None:
    assert stat.S_IMODE(os.stat(kms.socket).st_mode) == 0o600
    status = kms.stub.Status(pb.StatusRequest())
    assert (status.version, status.healthz, status.key_id) == ("v2", "ok", f"kinko:{KEY}:v1")
    seed = secrets.token_bytes(32)
    first = kms.stub.Encrypt(pb.EncryptRequest(plaintext=seed, uid="u1"))
    assert first.key_id == f"kinko:{KEY}:v1" and dict(first.annotations) == {"version.kms.kinko.dev": b"1"}
    assert seed not in first.ciphertext and len(first.ciphertext) <= 1024
    kms.admin.rotate_key(KEY)
    assert kms.stub.Status(pb.StatusRequest()).key_id == f"kinko:{KEY}:v2"
    second = kms.stub.Encrypt(pb.EncryptRequest(plaintext=seed, uid="u2"))
    assert second.key_id == f"kinko:{KEY}:v2"
    for sealed in (first, second):
        opened = kms.stub.Decrypt(pb.DecryptRequest(ciphertext=sealed.ciphertext, uid="u3", key_id=sealed.key_id,
                                                    annotations=sealed.annotations))
        assert opened.plaintext == seed
    kms.admin.configure_key(KEY, min_decryption_version=2)
    with pytest.raises(grpc.RpcError) as refused:
        kms.stub.Decrypt(pb.DecryptRequest(ciphertext=first.ciphertext, uid="u4", key_id=first.key_id,
                                           annotations=first.annotations))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "too old" in str(refused.value.details())


def test_hostile_inputs_are_refused_cleanly(kms: Kms) -> None:
    sealed = kms.stub.Encrypt(pb.EncryptRequest(plaintext=b"s" * 32, uid="u"))
    good = {"ciphertext": sealed.ciphertext, "key_id": sealed.key_id, "annotations": dict(sealed.annotations)}
    raw = bytearray(sealed.ciphertext)
    raw[-3] = ord("A") if raw[-3] != ord("A") else ord("B")
    hostile = {
        "oversized": {**good, "ciphertext": b"vault:v1:" + b"A" * 2000},
        "truncated": {**good, "ciphertext": sealed.ciphertext[:20]},
        "tampered": {**good, "ciphertext": bytes(raw)},
        "empty": {**good, "ciphertext": b""},
        "wrong key_id": {**good, "key_id": "kinko:other:v1"},
        "wrong version in key_id": {**good, "key_id": f"kinko:{KEY}:v2"},
        "huge key_id": {**good, "key_id": "k" * 2000},
        "unknown annotation": {**good, "annotations": {**good["annotations"], "other.example.com": b"x"}},
        "no annotation": {**good, "annotations": {}},
    }
    for name, fields in hostile.items():
        with pytest.raises(grpc.RpcError) as refused:
            kms.stub.Decrypt(pb.DecryptRequest(uid="u", **fields))  # type: ignore[arg-type]
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert b"s" * 32 not in str(refused.value.details()).encode(), name
    for plaintext in (b"", b"x" * 5000):
        with pytest.raises(grpc.RpcError) as refused:
            kms.stub.Encrypt(pb.EncryptRequest(plaintext=plaintext, uid="u"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert kms.stub.Decrypt(pb.DecryptRequest(uid="u", **good)).plaintext == b"s" * 32  # type: ignore[arg-type]


def test_the_plugin_token_reaches_its_key_only(kms: Kms) -> None:
    from kinko.errors import PermissionDenied

    kms.admin.create_key("other")
    session = RemoteVault.connect(kms.server.addr, kms.token)
    try:
        other = KmsPlugin(session, "other")
        assert other.status().healthz == "kinko: permission_denied"
        with pytest.raises(PermissionDenied):
            other.encrypt(b"s" * 32)
        with pytest.raises(PermissionDenied):
            session.rotate_key(KEY)  # the plugin may use its key, not manage it
    finally:
        session.close()
    assert kms.stub.Status(pb.StatusRequest()).healthz == "ok"


def test_a_vault_outage_is_unavailable_and_not_healthy(kms: Kms) -> None:
    stop_server(kms.server.proc)
    status = kms.stub.Status(pb.StatusRequest())
    assert status.version == "v2" and status.healthz != "ok"
    with pytest.raises(grpc.RpcError) as refused:
        kms.stub.Encrypt(pb.EncryptRequest(plaintext=b"s" * 32, uid="u"))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_refused_token_is_replaced_by_the_token_files_new_one(kms: Kms) -> None:
    from kinko.errors import PermissionDenied

    first, _ = kms.admin.create_token(policies=["kms-plugin"])
    second, _ = kms.admin.create_token(policies=["kms-plugin"])
    offered: list[str | None] = [None]
    session = RemoteVault.connect(kms.server.addr, first)
    try:
        plugin = KmsPlugin(session, KEY, new_token=lambda: offered[0], use_token=session.use_token)
        sealed = plugin.encrypt(b"s" * 32)
        kms.admin.revoke_token(first)
        with pytest.raises(PermissionDenied):  # the file still holds nothing new
            plugin.encrypt(b"s" * 32)
        assert plugin.status().healthz == "kinko: permission_denied"
        offered[0] = second  # the operator rewrote the token file
        assert plugin.status().healthz == "ok"
        request = pb.DecryptRequest(ciphertext=sealed.ciphertext, key_id=sealed.key_id,
                                    annotations=sealed.annotations)
        assert plugin.decrypt(request).plaintext == b"s" * 32
    finally:
        session.close()
