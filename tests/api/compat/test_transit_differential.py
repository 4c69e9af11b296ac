"""Differential test of the transit engine: one scripted sequence of raw HTTP requests against the real OpenBao dev
server (transit mounted at transit/) and against `kinko server --dev`, compared after normalising what differs by
nature: request ids and times, and every ciphertext, signature, HMAC, data key and public key (each server has its
own keys, so only their shape is compared: `vault:v<N>:` and the version). Statuses, shapes and error texts match.

Values one step answers and a later step sends (a ciphertext to decrypt, a signature to verify, the child token)
are captured per server under a placeholder.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.api.compat.test_vault_differential import normalise
from tests.api.compat.vaultpeer import openbao_dev
from tests.api.conftest import start_server, stop_server

HELLO = base64.b64encode(b"hello transit").decode()
OTHER = base64.b64encode(b"something else").decode()
AAD, WRONG_AAD = base64.b64encode(b"row-7").decode(), base64.b64encode(b"row-8").decode()


@dataclass(frozen=True)
class Step:
    name: str
    method: str
    path: str
    body: Any = None
    capture: tuple[str, str] | None = None  # (placeholder, dotted path in the answer)
    child: bool = False


K = "transit/keys/diff"
STEPS: list[Step] = [
    # -- keys ----------------------------------------------------------------------------------------------------
    Step("list keys while none", "LIST", "transit/keys"),
    Step("create key", "POST", K, {}),
    Step("create key again", "POST", K, {"type": "chacha20-poly1305"}),
    Step("read key", "GET", K),
    Step("create ed25519", "POST", "transit/keys/diff-ed", {"type": "ed25519"}),
    Step("read ed25519", "GET", "transit/keys/diff-ed"),
    Step("create ecdsa", "POST", "transit/keys/diff-ec", {"type": "ecdsa-p256"}),
    Step("create derived", "POST", "transit/keys/diff-derived", {"derived": True}),
    Step("create unknown type", "POST", "transit/keys/diff-bad", {"type": "nope"}),
    Step("list keys", "LIST", "transit/keys"),
    Step("list keys list=true", "GET", "transit/keys?list=true"),
    Step("read missing key", "GET", "transit/keys/missing"),
    Step("config unknown parameter", "POST", K + "/config", {"nonsense": 1}),
    Step("config not a number", "POST", K + "/config", {"min_decryption_version": "x"}),
    Step("config not a bool", "POST", K + "/config", {"deletion_allowed": "yes"}),
    Step("config auto rotate too short", "POST", K + "/config", {"auto_rotate_period": "1m"}),
    Step("config auto rotate", "POST", K + "/config", {"auto_rotate_period": "2h"}),
    Step("config missing key", "POST", "transit/keys/missing/config", {}),
    Step("rotate missing key", "POST", "transit/keys/missing/rotate", {}),
    Step("GET rotate (405)", "GET", K + "/rotate"),
    # -- encrypt / decrypt ---------------------------------------------------------------------------------------
    Step("encrypt", "POST", "transit/encrypt/diff", {"plaintext": HELLO}, ("<ct1>", "data.ciphertext")),
    Step("decrypt", "POST", "transit/decrypt/diff", {"ciphertext": "<ct1>"}),
    Step("encrypt empty plaintext", "POST", "transit/encrypt/diff", {"plaintext": ""}),
    Step("encrypt missing plaintext", "POST", "transit/encrypt/diff", {}),
    Step("encrypt bad base64", "POST", "transit/encrypt/diff", {"plaintext": "not base64!"}),
    Step("encrypt ignores context of a key not derived", "POST", "transit/encrypt/diff",
         {"plaintext": HELLO, "context": OTHER}),
    Step("encrypt batch with an error", "POST", "transit/encrypt/diff",
         {"batch_input": [{"plaintext": HELLO, "reference": "a"}, {"plaintext": "!!", "reference": "b"}]}),
    Step("encrypt batch", "POST", "transit/encrypt/diff", {"batch_input": [{"plaintext": HELLO}, {"plaintext": ""}]}),
    Step("decrypt batch with an error", "POST", "transit/decrypt/diff",
         {"batch_input": [{"ciphertext": "<ct1>"}, {"ciphertext": "vault:v1:AAAA", "reference": "r"}]}),
    Step("decrypt no prefix", "POST", "transit/decrypt/diff", {"ciphertext": "nope"}),
    Step("decrypt version too new", "POST", "transit/decrypt/diff", {"ciphertext": "vault:v9:AAAA"}),
    Step("decrypt bad version", "POST", "transit/decrypt/diff", {"ciphertext": "vault:vx:AAAA"}),
    Step("decrypt bad base64", "POST", "transit/decrypt/diff", {"ciphertext": "vault:v1:@@@"}),
    Step("decrypt tampered", "POST", "transit/decrypt/diff", {"ciphertext": "vault:v1:" + "A" * 40}),
    Step("decrypt missing ciphertext", "POST", "transit/decrypt/diff", {}),
    Step("decrypt missing key", "POST", "transit/decrypt/missing", {"ciphertext": "vault:v1:AAAA"}),
    Step("encrypt with associated data", "POST", "transit/encrypt/diff", {"plaintext": HELLO, "associated_data": AAD},
         ("<ct-aad>", "data.ciphertext")),
    Step("decrypt with wrong associated data", "POST", "transit/decrypt/diff",
         {"ciphertext": "<ct-aad>", "associated_data": WRONG_AAD}),
    Step("decrypt with associated data", "POST", "transit/decrypt/diff",
         {"ciphertext": "<ct-aad>", "associated_data": AAD}),
    Step("encrypt derived without context", "POST", "transit/encrypt/diff-derived", {"plaintext": HELLO}),
    Step("encrypt ed25519", "POST", "transit/encrypt/diff-ed", {"plaintext": HELLO}),
    # -- versions ------------------------------------------------------------------------------------------------
    Step("rotate", "POST", K + "/rotate", {}),
    Step("rotate again", "PUT", K + "/rotate", {}),
    Step("encrypt key_version 1", "POST", "transit/encrypt/diff", {"plaintext": HELLO, "key_version": 1}),
    Step("encrypt key_version too high", "POST", "transit/encrypt/diff", {"plaintext": HELLO, "key_version": 9}),
    Step("config min_decryption_version too high", "POST", K + "/config", {"min_decryption_version": 5}),
    Step("config min_encryption_version too high", "POST", K + "/config", {"min_encryption_version": 5}),
    Step("config min_decryption_version 2", "POST", K + "/config", {"min_decryption_version": 2}),
    Step("decrypt too old", "POST", "transit/decrypt/diff", {"ciphertext": "<ct1>"}),
    Step("rewrap too old", "POST", "transit/rewrap/diff", {"ciphertext": "<ct1>"}),
    Step("config min enc below min dec", "POST", K + "/config", {"min_encryption_version": 1}),
    Step("config min_decryption_version 1, min_encryption_version 2", "POST", K + "/config",
         {"min_decryption_version": 1, "min_encryption_version": 2}),
    Step("encrypt below min_encryption_version", "POST", "transit/encrypt/diff", {"plaintext": HELLO,
                                                                                  "key_version": 1}),
    Step("rewrap", "POST", "transit/rewrap/diff", {"ciphertext": "<ct1>"}, ("<ct3>", "data.ciphertext")),
    Step("decrypt rewrapped", "POST", "transit/decrypt/diff", {"ciphertext": "<ct3>"}),
    Step("read key after rotations", "GET", K),
    # -- datakey, hmac, sign, verify -----------------------------------------------------------------------------
    Step("datakey plaintext", "POST", "transit/datakey/plaintext/diff", {}),
    Step("datakey wrapped 512", "POST", "transit/datakey/wrapped/diff", {"bits": 512}),
    Step("datakey bad bits", "POST", "transit/datakey/wrapped/diff", {"bits": 100}),
    Step("datakey bad kind", "POST", "transit/datakey/other/diff", {}),
    Step("datakey missing key", "POST", "transit/datakey/plaintext/missing", {}),
    Step("hmac", "POST", "transit/hmac/diff", {"input": HELLO}, ("<hmac>", "data.hmac")),
    Step("hmac sha2-512", "POST", "transit/hmac/diff/sha2-512", {"input": HELLO}),
    Step("hmac missing input", "POST", "transit/hmac/diff", {}),
    Step("verify hmac", "POST", "transit/verify/diff", {"input": HELLO, "hmac": "<hmac>"}),
    Step("verify hmac other input", "POST", "transit/verify/diff", {"input": OTHER, "hmac": "<hmac>"}),
    Step("sign with aes", "POST", "transit/sign/diff", {"input": HELLO}),
    Step("sign missing key", "POST", "transit/sign/missing", {"input": HELLO}),
    Step("sign ed25519", "POST", "transit/sign/diff-ed", {"input": HELLO}, ("<sig>", "data.signature")),
    Step("verify ed25519", "POST", "transit/verify/diff-ed", {"input": HELLO, "signature": "<sig>"}),
    Step("verify ed25519 other input", "POST", "transit/verify/diff-ed", {"input": OTHER, "signature": "<sig>"}),
    Step("verify without signature", "POST", "transit/verify/diff-ed", {"input": HELLO}),
    Step("verify garbage signature", "POST", "transit/verify/diff-ed", {"input": HELLO,
                                                                        "signature": "vault:v1:AAAA"}),
    Step("sign ecdsa", "POST", "transit/sign/diff-ec/sha2-384", {"input": HELLO}, ("<ec-sig>", "data.signature")),
    Step("verify ecdsa", "POST", "transit/verify/diff-ec/sha2-384", {"input": HELLO, "signature": "<ec-sig>"}),
    # -- keyless -------------------------------------------------------------------------------------------------
    Step("random", "POST", "transit/random", {}),
    Step("random 16 hex", "POST", "transit/random/16", {"format": "hex"}),
    Step("random 0", "POST", "transit/random", {"bytes": 0}),
    Step("random too many", "POST", "transit/random", {"bytes": 200000}),
    Step("hash", "POST", "transit/hash", {"input": HELLO}),
    Step("hash sha2-512 base64", "POST", "transit/hash/sha2-512", {"input": HELLO, "format": "base64"}),
    Step("hash unknown algorithm", "POST", "transit/hash", {"input": HELLO, "algorithm": "md5"}),
    # -- a token granted encrypt only ----------------------------------------------------------------------------
    Step("token create", "POST", "auth/token/create", {"policies": ["transit-enc"], "ttl": "1h"},
         ("<child>", "auth.client_token")),
    Step("child encrypt", "POST", "transit/encrypt/diff", {"plaintext": HELLO}, child=True),
    Step("child decrypt (denied)", "POST", "transit/decrypt/diff", {"ciphertext": "<ct3>"}, child=True),
    Step("child read key (denied)", "GET", K, child=True),
    Step("child encrypt new key (denied)", "POST", "transit/encrypt/diff-new", {"plaintext": HELLO}, child=True),
    # -- deletion ------------------------------------------------------------------------------------------------
    Step("delete not allowed", "DELETE", K),
    Step("config deletion_allowed", "POST", K + "/config", {"deletion_allowed": True}),
    Step("delete", "DELETE", K),
    Step("delete again", "DELETE", K),
    Step("read deleted", "GET", K),
    Step("encrypt creates a missing key", "POST", "transit/encrypt/diff", {"plaintext": HELLO}),
    Step("read created key", "GET", K),
    Step("unknown path", "GET", "transit/nope"),
]

_VERSIONED = re.compile(r"vault:v(\d+):[A-Za-z0-9+/=]+")


def _opaque(doc: Any, key: str | None = None) -> Any:
    """Each server's own key material shows only through its shape."""
    if isinstance(doc, dict):
        if key == "keys" and all(k.isdigit() for k in doc):  # a key read: version -> time or public key
            return {k: "<time>" if isinstance(v, int) else _opaque(v, k) for k, v in doc.items()}
        return {k: _opaque(v, k) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_opaque(v) for v in doc]
    if isinstance(doc, str):
        if key == "public_key":
            return "<PEM public key>" if doc.startswith("-----BEGIN PUBLIC KEY-----") else f"<{len(doc)} chars>"
        if key == "random_bytes":
            return f"<{len(doc)} chars>"
        return _VERSIONED.sub(r"vault:v\1:<opaque>", doc)
    return doc


def comparable(step: Step, status: int, doc: Any) -> tuple[int, Any]:
    doc = _opaque(normalise(doc))
    if step.name.startswith("datakey plaintext") and isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        doc["data"]["plaintext"] = f"<{len(doc['data']['plaintext'])} chars>"
    if step.name == "token create" and isinstance(doc, dict):
        doc = {"auth.policies": (doc.get("auth") or {}).get("policies")}  # token answers: test_vault_differential
    if isinstance(doc, dict):
        doc.pop("error", None)  # kinko's own error object beside Vault's `errors` (off the Vault-only routes)
    return status, doc


@dataclass
class Target:
    base: str
    root: str
    setup: Any


def run_sequence(target: Target) -> dict[str, tuple[int, Any]]:
    captured: dict[str, str] = {}
    answers: dict[str, tuple[int, Any]] = {}
    with httpx.Client(base_url=target.base + "/v1/", timeout=30) as http:
        target.setup(http, target.root)
        for step in STEPS:
            token = captured.get("<child>", "unset") if step.child else target.root
            headers = {"X-Vault-Token": token}
            content = None
            if step.body is not None:
                text = json.dumps(step.body)
                for placeholder, value in captured.items():
                    text = text.replace(json.dumps(placeholder), json.dumps(value))
                content, headers["Content-Type"] = text, "application/json"
            response = http.request(step.method, step.path, content=content, headers=headers)
            doc: Any = response.json() if response.content.strip() else None
            if step.capture is not None and response.status_code == 200:
                value: Any = doc
                for part in step.capture[1].split("."):
                    value = value[part]
                captured[step.capture[0]] = value
            answers[step.name] = (response.status_code, doc)
    return answers


def _bao_setup(http: httpx.Client, root: str) -> None:
    headers = {"X-Vault-Token": root}
    assert http.post("sys/mounts/transit", json={"type": "transit"}, headers=headers).status_code == 204
    policy = 'path "transit/encrypt/diff" { capabilities = ["update"] }'
    assert http.put("sys/policies/acl/transit-enc", json={"policy": policy}, headers=headers).status_code == 204


def _kinko_setup(http: httpx.Client, root: str) -> None:
    rules = [{"path": "transit/encrypt/diff", "capabilities": ["update"]}]
    r = http.put("sys/policies/transit-enc", json={"rules": rules}, headers={"X-Vault-Token": root})
    assert r.status_code == 200, r.text


def test_kinko_transit_answers_as_openbao(tmp_path: Path) -> None:
    assert len({s.name for s in STEPS}) == len(STEPS), "step names must be unique"
    root = f"diff-root-{uuid.uuid4().hex}"
    kinko = start_server(["--dev"], tmp_path, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    try:
        with openbao_dev(tmp_path, root) as peer:
            bao = run_sequence(Target(peer.addr, root, _bao_setup))
        ours = run_sequence(Target(kinko.addr, kinko.token, _kinko_setup))
    finally:
        stop_server(kinko.proc)
    differ = []
    for step in STEPS:
        expected, got = comparable(step, *bao[step.name]), comparable(step, *ours[step.name])
        if expected != got:
            differ.append(f"{step.name}:\n  kinko   {json.dumps(got)[:1200]}\n  OpenBao {json.dumps(expected)[:1200]}")
    assert not differ, f"{len(differ)} answers differ from OpenBao's:\n" + "\n".join(differ)
    assert bao["decrypt"][1]["data"]["plaintext"] == ours["decrypt"][1]["data"]["plaintext"] == HELLO
