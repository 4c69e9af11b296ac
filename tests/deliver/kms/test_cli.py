"""`kinko kms-plugin` as a real process (token file, socket 0600, SIGTERM) and `kinko k8s render
encryption-config`."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import grpc
import yaml

from kinko.client import RemoteVault
from kinko.deliver.kms.proto import api_pb2 as pb
from kinko.deliver.kms.proto import api_pb2_grpc as pb_grpc
from tests.api.conftest import start_server, stop_server
from tests.cli.conftest import KINKO, run


def test_the_plugin_process_serves_until_sigterm(tmp_path: Path) -> None:
    server = start_server(["--dev"], tmp_path, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    try:
        admin = RemoteVault.connect(server.addr, server.token)
        admin.create_key("k8s-etcd")
        admin.close()
        token_file = tmp_path / "kms-token"
        token_file.write_text(server.token + "\n")
        socket_path = tmp_path / "run" / "kms.sock"
        env = {**os.environ, "KINKO_ADDR": server.addr, "KINKO_TOKEN": ""}
        proc = subprocess.Popen([KINKO, "kms-plugin", "--socket", str(socket_path), "--key", "k8s-etcd",
                                 "--token-file", str(token_file)], env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while not socket_path.exists() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
            with grpc.insecure_channel(f"unix:{socket_path}") as channel:
                stub = pb_grpc.KeyManagementServiceStub(channel)
                assert stub.Status(pb.StatusRequest()).key_id == "kinko:k8s-etcd:v1"
                sealed = stub.Encrypt(pb.EncryptRequest(plaintext=b"seed" * 8, uid="1"))
                assert stub.Decrypt(pb.DecryptRequest(ciphertext=sealed.ciphertext, key_id=sealed.key_id,
                                                      annotations=sealed.annotations)).plaintext == b"seed" * 8
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0 and b"kms-plugin stopped" in err and server.token.encode() not in err
    finally:
        stop_server(server.proc)


def test_render_encryption_config(tmp_path: Path) -> None:
    result = run({}, "k8s", "render", "encryption-config", "--socket", "/run/kinko/kms.sock")
    assert result.exit_code == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert doc["kind"] == "EncryptionConfiguration" and doc["apiVersion"] == "apiserver.config.k8s.io/v1"
    (entry,) = doc["resources"]
    assert entry["resources"] == ["secrets"]
    assert entry["providers"] == [{"kms": {"apiVersion": "v2", "name": "kinko", "timeout": "3s",
                                           "endpoint": "unix:///run/kinko/kms.sock"}}, {"identity": {}}]
    strict = yaml.safe_load(run({}, "k8s", "render", "encryption-config", "--no-identity",
                                "--resource", "secrets", "--resource", "configmaps").stdout)
    assert strict["resources"][0]["resources"] == ["secrets", "configmaps"]
    assert len(strict["resources"][0]["providers"]) == 1
    assert run({}, "k8s", "render", "encryption-config", "--socket", "relative.sock").exit_code == 2
