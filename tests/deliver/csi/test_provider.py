"""The CSI provider through a real gRPC client on a real Unix socket, against a real kinko server (k8s auth)."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from kinko.client import RemoteVault
from kinko.core.model import Caller
from kinko.deliver.csi.params import TOKENS_ATTR, parse_request
from kinko.deliver.csi.proto import service_pb2 as pb
from kinko.deliver.csi.proto import service_pb2_grpc as pb_grpc
from kinko.deliver.csi.provider import Provider, serve, stop
from kinko.errors import InvalidInput, ServerUnreachable
from tests.api.conftest import KINKO, Server, keyfile_vault, start_server, stop_server

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUD = "kinko"
ROOT = Caller.local_operator()
CANARY = "csi-canary-7f3a9c"  # a value that must never show up in errors or logs
BINARY = bytes(range(256))
BIG = 1024 * 1024 - 64


@dataclass
class Env:
    server: Server
    root: RemoteVault
    key: rsa.RSAPrivateKey
    stub: pb_grpc.CSIDriverProviderStub
    socket: Path


def _mint(key: rsa.RSAPrivateKey, *, aud: str = AUD, ns: str = "prod", sa: str = "app-sa",
          ttl: int = 600) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": [aud], "sub": f"system:serviceaccount:{ns}:{sa}", "iat": now, "nbf": now,
              "exp": now + ttl, "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": sa, "uid": "u-1"},
                                                  "pod": {"name": "web-0", "uid": "p-1"}}}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def _configure(tmp: Path, key: rsa.RSAPrivateKey) -> str:
    """A key-file vault with Kubernetes auth, a role `app` and the secrets the tests read."""
    vault, token = keyfile_vault(tmp)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    vault.configure_kubernetes_auth(ROOT, issuer=ISSUER, jwks=json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    vault.write_policy(ROOT, {"name": "csi-app", "rules": [{"path": "app/*", "capabilities": ["read"]}]})
    vault.write_kubernetes_role(ROOT, "app", service_account_names=["app-sa"], namespaces=["prod"], audience=AUD,
                                policies=["csi-app"], ttl=600)
    vault.put(ROOT, "app/db", {"username": b"admin", "password": CANARY.encode()}, content_type="Opaque")
    vault.put(ROOT, "app/bin-b64", base64.b64encode(BINARY))
    vault.put(ROOT, "app/bin-hex", BINARY.hex().encode())
    vault.put(ROOT, "app/plain", b"plain-value")
    vault.put(ROOT, "app/big", b"x" * BIG)
    vault.put(ROOT, "other/secret", CANARY.encode())
    vault.close()
    return token


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("csi")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = _configure(work, key)
    srv = start_server(["--vault", str(work / "vault.db")], work, expect_token=False)
    sock_dir = Path(tempfile.mkdtemp(prefix="kcsi-"))  # Unix socket paths must stay under 108 bytes
    provider = Provider(srv.addr, timeout=5)
    grpc_server = serve(sock_dir / "kinko.sock", provider)
    # The driver dials with authority "localhost" (its e2e provider checks it); do the same.
    channel = grpc.insecure_channel(f"unix:{sock_dir / 'kinko.sock'}",
                                    options=[("grpc.default_authority", "localhost")])
    try:
        stub = pb_grpc.CSIDriverProviderStub(channel)  # type: ignore[no-untyped-call]
        yield Env(srv, RemoteVault.connect(srv.addr, token), key, stub, sock_dir / "kinko.sock")
    finally:
        channel.close()
        stop(grpc_server, grace=1)
        provider.close()
        stop_server(srv.proc)
        shutil.rmtree(sock_dir, ignore_errors=True)


def attributes(objects: Any, *, tokens: dict[str, str] | None = None, **extra: str) -> str:
    """What the driver puts in MountRequest.attributes: SPC parameters + pod info + the pod's tokens."""
    text = objects if isinstance(objects, str) else yaml.safe_dump(objects)
    attrs = {"roleName": "app", "objects": text, "csi.storage.k8s.io/pod.name": "web-0",
             "csi.storage.k8s.io/pod.namespace": "prod", "csi.storage.k8s.io/serviceAccount.name": "app-sa",
             "secretProviderClass": "kinko-app", **extra}
    if tokens is not None:
        attrs[TOKENS_ATTR] = json.dumps({aud: {"token": t, "expirationTimestamp": "2030-01-01T00:00:00Z"}
                                         for aud, t in tokens.items()})
    return json.dumps(attrs)


def mount(env: Env, objects: Any, *, tokens: dict[str, str] | None = None, secrets: str = "null",
          permission: str = "420", **extra: str) -> pb.MountResponse:
    if tokens is None:
        tokens = {AUD: _mint(env.key)}
    request = pb.MountRequest(attributes=attributes(objects, tokens=tokens, **extra), secrets=secrets,
                              target_path="/var/lib/kubelet/pods/p-1/volumes/kubernetes.io~csi/v/mount",
                              permission=permission)
    response: pb.MountResponse = env.stub.Mount(request, timeout=20)
    return response


def failure(env: Env, objects: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        mount(env, objects, **kwargs)
    error: grpc.RpcError = info.value
    assert CANARY not in error.details()
    return error


def files(response: pb.MountResponse) -> dict[str, tuple[bytes, int]]:
    return {f.path: (f.contents, f.mode) for f in response.files}


def versions(response: pb.MountResponse) -> dict[str, str]:
    return {v.id: v.version for v in response.object_version}


# -- happy paths --------------------------------------------------------------------------------------------
def test_version(env: Env) -> None:
    answer = env.stub.Version(pb.VersionRequest(version="v1alpha1"), timeout=5)
    assert (answer.version, answer.runtime_name) == ("v1alpha1", "kinko")
    assert answer.runtime_version.count(".") >= 2


def test_mount_several_objects_keys_encodings_and_modes(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    objects = [
        {"objectName": "db-user", "secretPath": "app/db", "secretKey": "username", "filePermission": 0o400},
        {"objectName": "db-pass", "secretPath": "/app/db", "secretKey": "password", "filePermission": "0440"},
        {"objectName": "db.json", "secretPath": "app/db"},
        {"objectName": "bin/from-b64", "secretPath": "app/bin-b64", "encoding": "base64"},
        {"objectName": "bin/from-hex", "secretPath": "app/bin-hex", "encoding": "hex"},
        {"objectName": "plain", "secretPath": "app/plain", "encoding": "utf-8"},
    ]
    response = mount(env, objects)
    assert files(response) == {
        "db-user": (b"admin", 0o400),
        "db-pass": (CANARY.encode(), 0o440),
        "db.json": (json.dumps({"password": CANARY, "username": "admin"}, sort_keys=True).encode(), 0o400),
        "bin/from-b64": (BINARY, 0o400),
        "bin/from-hex": (BINARY, 0o400),
        "plain": (b"plain-value", 0o400),
    }
    assert versions(response) == dict.fromkeys(files(response), "1")
    assert not response.error.code
    assert CANARY not in caplog.text and "eyJ" not in caplog.text  # no value, no JWT in the provider's logs


@pytest.mark.parametrize("permission", ["420", "256", "511", ""])
def test_default_mode_is_0400_whatever_the_request_permission(env: Env, permission: str) -> None:
    # The driver's request permission is usually 0644; only an object's own filePermission widens the file.
    response = mount(env, [{"objectName": "p", "secretPath": "app/plain"},
                           {"objectName": "wide", "secretPath": "app/plain", "filePermission": "0644"}],
                     permission=permission)
    assert files(response)["p"][1] == 0o400 and files(response)["wide"][1] == 0o644


def test_readable_modes_are_logged_once_per_object(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    # The kubelet writes the file and nobody reads a prompt: the provider's log says it, once, not every poll.
    caplog.set_level(logging.INFO, logger="kinko.csi")
    objects = [{"objectName": "wide-once", "secretPath": "app/plain", "filePermission": "0644"},
               {"objectName": "narrow", "secretPath": "app/plain", "filePermission": "0400"}]
    for _ in range(3):
        assert files(mount(env, objects, secretProviderClass="spc-modes"))["wide-once"][1] == 0o644
    warned = [r.getMessage() for r in caplog.records if "readable by group/other" in r.getMessage()]
    assert warned == ["SecretProviderClass 'spc-modes' in namespace 'prod': object 'wide-once': filePermission "
                      "0644 makes the secret file readable by group/other (the default is 0400)"]


def test_rotation_new_version_new_object_version(env: Env) -> None:
    objects = [{"objectName": "rot", "secretPath": "app/rotating"}, {"objectName": "p", "secretPath": "app/plain"},
               {"objectName": "rot-v1", "secretPath": "app/rotating", "version": 1}]
    env.root.put("app/rotating", b"first")
    before = mount(env, objects)
    env.root.put("app/rotating", b"second")
    # Drivers before v1.6 send what is mounted now; the answer must not depend on it.
    request = pb.MountRequest(attributes=attributes(objects, tokens={AUD: _mint(env.key)}), secrets="null",
                              permission="420", current_object_version=list(before.object_version))
    after = env.stub.Mount(request, timeout=20)
    assert files(before)["rot"][0] == b"first" and files(after)["rot"][0] == b"second"
    assert int(versions(after)["rot"]) == int(versions(before)["rot"]) + 1
    assert versions(after)["p"] == versions(before)["p"]  # an unchanged secret keeps its object_version
    assert files(after)["rot-v1"][0] == b"first" and versions(after)["rot-v1"] == "1"  # pinned version


def test_tokens_in_secrets_field_and_null_secrets(env: Env) -> None:
    obj = [{"objectName": "p", "secretPath": "app/plain"}]
    # serviceAccountTokenInSecrets (K8s 1.35+): the tokens travel in `secrets`, not in the attributes
    in_secrets = json.dumps({TOKENS_ATTR: json.dumps({AUD: {"token": _mint(env.key)}})})
    assert files(mount(env, obj, tokens={}, secrets=in_secrets))["p"][0] == b"plain-value"
    for secrets in ("null", "", "{}"):
        assert files(mount(env, obj, secrets=secrets))["p"][0] == b"plain-value"


def test_audience_parameter_picks_the_token(env: Env) -> None:
    tokens = {"vault": _mint(env.key, aud="vault"), AUD: _mint(env.key)}
    obj = [{"objectName": "p", "secretPath": "app/plain"}]
    assert files(mount(env, obj, tokens=tokens, audience=AUD))["p"][0] == b"plain-value"
    error = failure(env, obj, tokens=tokens)  # two tokens and no audience: which one is a guess
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "audience" in error.details()


def test_parallel_mounts(env: Env) -> None:
    obj = [{"objectName": "p", "secretPath": "app/plain"}, {"objectName": "u", "secretPath": "app/db",
                                                            "secretKey": "username"}]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: mount(env, obj), range(8)))
    assert all(files(r)["u"][0] == b"admin" for r in results)


# -- hostile parameters: refused before any fetch, with a message naming the problem --------------------------
@pytest.mark.parametrize(("objects", "needle"), [
    ([{"objectName": "../x", "secretPath": "app/plain"}], "'..'"),
    ([{"objectName": "a/../../x", "secretPath": "app/plain"}], "'..'"),
    ([{"objectName": "/etc/passwd", "secretPath": "app/plain"}], "relative"),
    ([{"objectName": "..data", "secretPath": "app/plain"}], "'..'"),
    ([{"objectName": "a//b", "secretPath": "app/plain"}], "not a clean"),
    ([{"objectName": "", "secretPath": "app/plain"}], "objectName is required"),
    ([{"objectName": "x" * 300, "secretPath": "app/plain"}], "longer than 255"),
    ([{"objectName": "p", "secretPath": "app/plain", "method": "GET"}], "unknown key(s) 'method'"),
    ([{"objectName": "p"}], "secretPath is required"),
    ([{"objectName": "p", "secretPath": "app/plain"}, {"objectName": "p", "secretPath": "app/db"}], "more than once"),
    ([{"objectName": "a", "secretPath": "app/plain"}, {"objectName": "a/b", "secretPath": "app/db"}], "inside 'a'"),
    ([{"objectName": "p", "secretPath": "app/plain", "encoding": "rot13"}], "encoding"),
    ([{"objectName": "p", "secretPath": "app/plain", "filePermission": 0o4755}], "filePermission"),
    ([{"objectName": "p", "secretPath": "app/plain", "filePermission": "0777"}], "execute bit"),
    ([{"objectName": "p", "secretPath": "app/plain", "filePermission": "0666"}], "group/other write"),
    ([{"objectName": "a\nb", "secretPath": "app/plain"}], "control or invisible character (U+000A)"),
    ([{"objectName": "p", "secretPath": "app/plain", "version": "-1"}], "version"),
    ({"objectName": "p", "secretPath": "app/plain"}, "YAML list"),
    ("- [unclosed", "not valid YAML"),
    ("", "objects is required"),
    ([{"objectName": f"o{i}", "secretPath": "app/plain"} for i in range(300)], "at most 256"),
])
def test_hostile_objects_are_refused(env: Env, objects: Any, needle: str) -> None:
    error = failure(env, objects)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # too many or too large objects too: a bad argument
    assert needle in error.details()


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"permission": "\"rw\""}, "permission"),
    ({"permission": "4096"}, "permission"),
    ({"secrets": "[1]"}, "secrets"),
    ({"roleName": ""}, "roleName is required"),
])
def test_hostile_request_fields_are_refused(env: Env, kwargs: dict[str, str], needle: str) -> None:
    error = failure(env, [{"objectName": "p", "secretPath": "app/plain"}], **kwargs)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in error.details()


def test_attributes_that_are_not_json_are_refused(env: Env) -> None:
    with pytest.raises(grpc.RpcError) as info:
        env.stub.Mount(pb.MountRequest(attributes="{not json", permission="420"), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "attributes" in info.value.details()


def test_huge_objects_exceed_the_driver_message_limit(env: Env) -> None:
    objects = [{"objectName": f"big{i}", "secretPath": "app/big"} for i in range(5)]  # ~5 MiB > 4 MiB
    error = failure(env, objects)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "big3" in error.details() and "message limit" in error.details()
    assert len(files(mount(env, objects[:3]))) == 3  # under the limit it is fine


def test_undecodable_value_names_the_object(env: Env) -> None:
    error = failure(env, [{"objectName": "p", "secretPath": "app/plain", "encoding": "base64"}])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "'p'" in error.details()
    assert "base64" in error.details() and "plain-value" not in error.details()


# -- failures from the server: all or nothing, the object named, never a value ------------------------------
def test_denied_policy_names_the_object(env: Env) -> None:
    error = failure(env, [{"objectName": "ok", "secretPath": "app/plain"},
                          {"objectName": "stolen", "secretPath": "other/secret"}])
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'stolen'" in error.details() and "other/secret" in error.details()


def test_missing_secret_and_key(env: Env) -> None:
    error = failure(env, [{"objectName": "gone", "secretPath": "app/does-not-exist"}])
    assert error.code() == grpc.StatusCode.NOT_FOUND and "'gone'" in error.details()
    error = failure(env, [{"objectName": "k", "secretPath": "app/db", "secretKey": "nope"}])
    assert error.code() == grpc.StatusCode.NOT_FOUND and "'nope'" in error.details()
    error = failure(env, [{"objectName": "k", "secretPath": "app/plain", "secretKey": "nope"}])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "single value" in error.details()


def test_sealed_server_is_unavailable(env: Env) -> None:
    token = _mint(env.key)
    env.root.seal()
    try:
        error = failure(env, [{"objectName": "p", "secretPath": "app/plain"}], tokens={AUD: token})
        assert error.code() == grpc.StatusCode.UNAVAILABLE and "sealed" in error.details()
    finally:
        env.root.unseal(key_file=Path("unseal.key"))
    assert files(mount(env, [{"objectName": "p", "secretPath": "app/plain"}]))["p"][0] == b"plain-value"


def test_unreachable_server_is_unavailable(env: Env) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    error = failure(env, [{"objectName": "p", "secretPath": "app/plain"}], kinkoAddress=dead)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "is not allowed" in error.details()
    provider = Provider(dead, timeout=5)
    try:
        plan = parse_request(attributes([{"objectName": "p", "secretPath": "app/plain"}],
                                        tokens={AUD: _mint(env.key)}), "null", "420")
        with pytest.raises(ServerUnreachable, match="cannot reach"):
            provider.mount(plan)
    finally:
        provider.close()
    # --addr naming several servers: the mount moves past the dead one to the live one.
    provider = Provider(f"{dead},{env.server.addr}", timeout=5)
    try:
        assert provider.mount(plan).files[0].contents == b"plain-value"
    finally:
        provider.close()


def test_kinko_address_is_not_followed_by_default(env: Env) -> None:
    provider = Provider(env.server.addr)
    try:
        plan = parse_request(attributes([{"objectName": "p", "secretPath": "app/plain"}],
                                        tokens={AUD: _mint(env.key)}, kinkoAddress="http://attacker.example"),
                             "null", "420")
        with pytest.raises(InvalidInput, match=re.escape("kinkoAddress 'http://attacker.example' is not allowed")):
            provider.mount(plan)
        same = dataclasses.replace(plan, address=env.server.addr + "/")
        assert provider.mount(same).files[0].contents == b"plain-value"
    finally:
        provider.close()


def test_kinko_address_override_is_opt_in(env: Env) -> None:
    provider = Provider(None, address_override=True)  # --allow-address-override without --addr
    try:
        plan = parse_request(attributes([{"objectName": "p", "secretPath": "app/plain"}],
                                        tokens={AUD: _mint(env.key)}, kinkoAddress=env.server.addr), "null", "420")
        assert provider.mount(plan).files[0].contents == b"plain-value"
    finally:
        provider.close()


@pytest.mark.parametrize("case", ["wrong-audience-key", "token-for-other-audience", "wrong-namespace",
                                  "expired", "forged", "no-tokens"])
def test_bad_pod_tokens_fail_clearly_without_leaking_them(env: Env, case: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if case == "forged" else env.key
    token = _mint(other_key, aud="other" if case == "token-for-other-audience" else AUD,
                  ns="dev" if case == "wrong-namespace" else "prod", ttl=-3600 if case == "expired" else 600)
    tokens = {} if case == "no-tokens" else {"other" if case == "wrong-audience-key" else AUD: token}
    error = failure(env, [{"objectName": "p", "secretPath": "app/plain"}], tokens=tokens, audience=AUD)
    assert token not in error.details() and token.split(".")[1] not in error.details()
    assert "mount failed" in caplog.text and token.split(".")[1] not in caplog.text
    if case in ("wrong-audience-key", "no-tokens"):
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "token" in error.details()
    else:
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "login with role 'app' failed" in error.details()


# -- the command ----------------------------------------------------------------------------------------------
def test_cli_serves_replaces_stale_socket_and_stops_on_sigterm(env: Env) -> None:
    sock_dir = Path(tempfile.mkdtemp(prefix="kcsi-"))
    path = sock_dir / "kinko.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a dead provider's socket file: nobody listens on it
    proc = subprocess.Popen([*KINKO, "csi-provider", "--socket", str(path), "--addr", env.server.addr],
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        channel = grpc.insecure_channel(f"unix:{path}")
        stub = pb_grpc.CSIDriverProviderStub(channel)  # type: ignore[no-untyped-call]
        while True:
            try:
                answer = stub.Version(pb.VersionRequest(version="v1alpha1"), timeout=1)
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline and proc.poll() is None, "provider did not start"
                time.sleep(0.1)
        assert answer.runtime_name == "kinko"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        request = pb.MountRequest(attributes=attributes([{"objectName": "p", "secretPath": "app/plain"}],
                                                        tokens={AUD: _mint(env.key)}), secrets="null",
                                  permission="420")
        assert stub.Mount(request, timeout=20).files[0].contents == b"plain-value"
        channel.close()
        # A second provider on the same live socket is refused (usage error), the first keeps serving.
        second = subprocess.run([*KINKO, "csi-provider", "--socket", str(path), "--addr", env.server.addr],
                                capture_output=True, timeout=30)
        assert second.returncode == 2 and b"already listening" in second.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            stop_server(proc)
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_cli_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "kinko.sock"
    target.write_text("not a socket")
    result = subprocess.run([*KINKO, "csi-provider", "--socket", str(target), "--addr", "http://127.0.0.1:1"],
                            capture_output=True, timeout=30)
    assert result.returncode == 2 and b"not a socket" in result.stderr
    assert target.read_text() == "not a socket"


def test_cli_needs_addr_unless_override_is_allowed(tmp_path: Path) -> None:
    target = tmp_path / "kinko.sock"
    target.write_text("not a socket")  # so a run that gets past the options stops at once (exit 2)
    env = {k: v for k, v in os.environ.items() if k != "KINKO_ADDR"}
    base = [*KINKO, "csi-provider", "--socket", str(target)]
    missing = subprocess.run(base, capture_output=True, timeout=30, env=env)
    assert missing.returncode == 2 and b"--allow-address-override" in missing.stderr
    for extra in (["--allow-address-override"], ["--no-address-override", "--addr", "http://127.0.0.1:1"]):
        result = subprocess.run([*base, *extra], capture_output=True, timeout=30, env=env)
        assert result.returncode == 2 and b"not a socket" in result.stderr, (extra, result.stderr)
