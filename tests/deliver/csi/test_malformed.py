"""Malformed Mount requests over a real gRPC server on a Unix socket: INVALID_ARGUMENT, one line, no traceback."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from kinko.deliver.csi.params import MAX_OBJECTS_YAML, TOKENS_ATTR
from kinko.deliver.csi.proto import service_pb2 as pb
from kinko.deliver.csi.proto import service_pb2_grpc as pb_grpc
from kinko.deliver.csi.provider import Provider, serve, stop

GOOD = [{"objectName": "p", "secretPath": "app/plain"}]
TOKENS = json.dumps({"kinko": {"token": "eyJhbGciOiJSUzI1NiJ9.e30.sig"}})
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8))


@dataclass
class Socket:
    stub: pb_grpc.CSIDriverProviderStub
    provider: Provider


@pytest.fixture(scope="module")
def sock() -> Iterator[Socket]:
    # No kinko server: every request here must be refused before the provider talks to one.
    directory = Path(tempfile.mkdtemp(prefix="kcsi-"))
    provider = Provider("http://127.0.0.1:9", timeout=2)
    server = serve(directory / "kinko.sock", provider)
    channel = grpc.insecure_channel(f"unix:{directory / 'kinko.sock'}",
                                    options=[("grpc.default_authority", "localhost"),
                                             ("grpc.max_send_message_length", 16 * 1024 * 1024)])
    try:
        yield Socket(pb_grpc.CSIDriverProviderStub(channel), provider)  # type: ignore[no-untyped-call]
    finally:
        channel.close()
        stop(server, grace=1)
        provider.close()
        shutil.rmtree(directory, ignore_errors=True)


def attrs(objects: Any = GOOD, **extra: Any) -> str:
    text = objects if isinstance(objects, str) else yaml.safe_dump(objects)
    return json.dumps({"roleName": "app", "objects": text, TOKENS_ATTR: TOKENS, **extra})


def refused(sock: Socket, caplog: pytest.LogCaptureFixture, *, attributes: str, secrets: str = "null",
            permission: str = "420", status: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> str:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(grpc.RpcError) as info:
        sock.stub.Mount(pb.MountRequest(attributes=attributes, secrets=secrets, permission=permission), timeout=30)
    error: grpc.RpcError = info.value
    details: str = error.details()
    assert error.code() == status, details
    assert details.startswith("kinko: ") and "\n" not in details and len(details) < 2100
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
    assert "mount failed" in caplog.text
    return details


@pytest.mark.parametrize(("objects", "needle"), [
    ("[" * 20000 + "]" * 20000, "nests deeper"),
    ("- " * 5000 + "x", "nests deeper"),
    ("[" * 40 + "]" * 40, "nests deeper"),
    ("x: " + "{a: " * 5000 + "b" + "}" * 5000, "nests deeper"),
    ("&a [*a]", "nests deeper"),
    (BOMB, "nodes"),
    ("- {objectName: p, secretPath: a}\n#" + "x" * MAX_OBJECTS_YAML, "larger than"),
    ("[" + "0," * 30000 + "0]", "nodes"),
    ([{"objectName": f"o{i}", "secretPath": "app/plain"} for i in range(257)], "at most 256"),
    ("- a\n---\n- b", "not valid YAML at line 2"),
    ("- 2001-13-45", "cannot build (ValueError)"),
    ("- !!int abc", "cannot build"),
    ("- !!timestamp x", "cannot build (AttributeError)"),
    ("- !!int ''", "cannot build (IndexError)"),
    ("- !!bool x", "cannot build (KeyError)"),
    ('- "\\U0011FFFF"', "cannot build (ValueError)"),
    ("- !!binary '###'", "must be a mapping"),
    ("- !!binary '\u00e9'", "not valid YAML"),
    ("- !!python/object/apply:os.system [id]", "not valid YAML"),
    ("- !!float [1]", "not valid YAML"),
    ("- " + "9" * 5000, "cannot build (ValueError)"),
    ("? [a]\n: b", "not valid YAML"),
    ("\x00", "not valid YAML"),
    ("\ud800", "not valid YAML"),
    ("- {objectName: p, secretPath: a, <<: 1}", "not valid YAML"),
    ({"objectName": "p"}, "YAML list"),
    ("42", "YAML list"),
    ([42], "mapping"),
    ([{"objectName": 7, "secretPath": "app/plain"}], "objectName must be a string"),
    ([{"objectName": ["p"], "secretPath": "app/plain"}], "objectName must be a string"),
    ([{"objectName": "p", "secretPath": {"a": 1}}], "secretPath must be a string"),
    ([{"objectName": "p", "secretPath": "app/plain", "secretKey": 1.5}], "secretKey must be a string"),
    ([{"objectName": "p", "secretPath": "app/plain", "encoding": 1}], "encoding must be a string"),
    ([{"objectName": "p", "secretPath": "app/plain", "version": {"v": 1}}], "version"),
    ([{"objectName": "p", "secretPath": "app/plain", "version": "²"}], "version"),
    ([{"objectName": "p", "secretPath": "app/plain", "version": "9" * 30}], "version"),
    ([{"objectName": "p", "secretPath": "app/plain", "filePermission": [1]}], "filePermission"),
    ([{"objectName": "p", "secretPath": "app/plain", "filePermission": "0777"}], "execute bit"),
    ([{"objectName": "p", "secretPath": "app/plain", "filePermission": 0o664}], "write"),
    ([{"objectName": "a\nb", "secretPath": "app/plain"}], "control or invisible"),
    ([{"objectName": "d/\x1b[31m", "secretPath": "app/plain"}], "control or invisible"),
    ([{"objectName": "\u202etxt.exe", "secretPath": "app/plain"}], "control or invisible"),
    ([{"objectName": "é" * 128, "secretPath": "app/plain"}], "longer than 255"),
    ([{"objectName": "a/./b", "secretPath": "app/plain"}], "not a clean relative path"),
    ([{"objectName": "a/b/", "secretPath": "app/plain"}], "not a clean relative path"),
    ([{"objectName": "/".join(["d" * 200] * 21), "secretPath": "app/plain"}], "longer than 4096"),
    ([{1: "p", "secretPath": "app/plain"}], "unknown key(s) '1'"),
])
def test_malformed_objects(sock: Socket, caplog: pytest.LogCaptureFixture, objects: Any, needle: str) -> None:
    assert needle in refused(sock, caplog, attributes=attrs(objects))


@pytest.mark.parametrize(("attributes", "needle"), [
    ("{not json", "attributes is not valid JSON"),
    ("[" * 100000 + "]" * 100000, "attributes is not valid JSON"),
    ('{"a": ' * 5000 + "1" + "}" * 5000, "attributes is not valid JSON"),
    ("[]", "attributes must be a JSON object of strings"),
    ('"x"', "attributes must be a JSON object of strings"),
    ('{"roleName": 1}', "attributes must be a JSON object of strings"),
    ('{"roleName": null}', "attributes must be a JSON object of strings"),
    ("null", "roleName is required"),
    (json.dumps({"roleName": "app", "objects": "- x"}), "serviceAccount.tokens is missing"),
    (attrs(**{TOKENS_ATTR: "{"}), "is not valid JSON"),
    (attrs(**{TOKENS_ATTR: "[" * 100000}), "is not valid JSON"),
    (attrs(**{TOKENS_ATTR: "[1]"}), "non-empty JSON object"),
    (attrs(**{TOKENS_ATTR: '{"kinko": "eyJ"}'}), "has no token"),
    (attrs(**{TOKENS_ATTR: '{"kinko": {"token": 5}}'}), "has no token"),
    (attrs(objects=""), "objects is required"),
    (attrs(objects="   \n"), "objects is required"),
])
def test_malformed_attributes(sock: Socket, caplog: pytest.LogCaptureFixture, attributes: str,
                              needle: str) -> None:
    assert needle in refused(sock, caplog, attributes=attributes)


@pytest.mark.parametrize(("secrets", "needle"), [
    ("{", "secrets is not valid JSON"), ("[" * 100000, "secrets is not valid JSON"),
    ('{"a": 1}', "secrets must be a JSON object of strings"), ("[1]", "secrets must be a JSON object of strings"),
])
def test_malformed_secrets(sock: Socket, caplog: pytest.LogCaptureFixture, secrets: str, needle: str) -> None:
    assert needle in refused(sock, caplog, attributes=attrs(), secrets=secrets)


@pytest.mark.parametrize("permission", ["rw", "[" * 100000, "1e999", "NaN", "-1", "512", '"420"', "4.2e2", "true",
                                        "9" * 5000])
def test_malformed_permission(sock: Socket, caplog: pytest.LogCaptureFixture, permission: str) -> None:
    assert "permission" in refused(sock, caplog, attributes=attrs(), permission=permission)


def test_a_bug_is_internal_without_traceback_or_message(sock: Socket, caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(plan: object) -> None:
        raise ValueError("value-canary-31c")  # a message that could quote a secret

    monkeypatch.setattr(sock.provider, "mount", broken)
    details = refused(sock, caplog, attributes=attrs(), status=grpc.StatusCode.INTERNAL)
    assert details == "kinko: internal error (ValueError)"
    assert "value-canary-31c" not in caplog.text and "in broken" in caplog.text
