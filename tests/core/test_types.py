"""Tests for kinko.core.types: dispatch, key-name rule, 1 MiB limit and the eight Kubernetes Secret types."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from kinko.core.types import CONTENT_TYPES, K8S_TYPES, KINKO_KINDS, MAX_SECRET_SIZE, validate_secret
from kinko.errors import InvalidInput, InvalidSecretType, TooLarge

CANARY = b"CANARYs3cr3tVALUE"
TLS = "kubernetes.io/tls"
BOOT = "bootstrap.kubernetes.io/token"


def _pem_key(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _cert(key: ec.EllipticCurvePrivateKey, cn: str = "web.example") -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x1234)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn), x509.DNSName("www." + cn)]), False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_pair() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _cert(key), _pem_key(key)


def _bootstrap(**overrides: bytes | None) -> dict[str, bytes]:
    data: dict[str, bytes | None] = {
        "token-id": b"abcdef",
        "token-secret": b"0123456789abcdef",
        "usage-bootstrap-authentication": b"true",
        "usage-bootstrap-signing": b"true",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# ---------------------------------------------------------------------------------------------- dispatch


def test_content_type_sets() -> None:
    assert len(K8S_TYPES) == 8 and "Opaque" in K8S_TYPES and BOOT in K8S_TYPES
    assert sorted(KINKO_KINDS) == [
        "api-key",
        "certificate",
        "connection-string",
        "json",
        "private-key",
        "ssh-private-key",
        "text",
    ]
    assert CONTENT_TYPES == K8S_TYPES | KINKO_KINDS


def test_unknown_type_lists_known_ones() -> None:
    with pytest.raises(InvalidSecretType) as err:
        validate_secret("kubernetes.io/bogus", {"a": b"b"})
    assert "unknown content type 'kubernetes.io/bogus'" in err.value.message
    assert "kubernetes.io/tls" in err.value.message and "connection-string" in err.value.message


def test_k8s_type_rejects_single_value() -> None:
    with pytest.raises(InvalidSecretType, match=re.escape("takes a key -> value map")):
        validate_secret("Opaque", b"just one value")


def test_kinko_kind_rejects_map() -> None:
    with pytest.raises(InvalidSecretType, match=re.escape("takes a single value, not a key -> value map")):
        validate_secret("text", {"a": b"b"})


def test_values_must_be_bytes() -> None:
    with pytest.raises(InvalidSecretType, match=re.escape("value of key 'a' must be bytes")):
        validate_secret("Opaque", {"a": "text"})  # type: ignore[dict-item]


def test_errors_are_invalid_input() -> None:
    assert issubclass(InvalidSecretType, InvalidInput) and issubclass(TooLarge, InvalidInput)


# ---------------------------------------------------------------------------------------------- key names


@pytest.mark.parametrize("key", ["a", "A-b_c.d", ".dotfile", "x" * 253, "tls.crt", "a..b", "_"])
def test_valid_key_names(key: str) -> None:
    assert validate_secret("Opaque", {key: b"v"})["keys"] == key


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        (".", "must not be '.'"),
        ("..", "must not be '..'"),
        ("..a", "must not start with '..'"),
        ("...", "must not start with '..'"),
        ("x" * 254, "must be no more than 253 characters"),
        ("", "alphanumeric characters, '-', '_' or '.'"),
        ("a b", "alphanumeric characters"),
        ("a/b", "alphanumeric characters"),
        ("a\n", "alphanumeric characters"),  # Python's `$` would accept this; fullmatch must not
        ("ключ", "alphanumeric characters"),
    ],
)
def test_invalid_key_names(key: str, rule: str) -> None:
    with pytest.raises(InvalidSecretType) as err:
        validate_secret("Opaque", {"ok": b"v", key: b"v"})
    assert rule in err.value.message
    assert "key " in err.value.message


def test_long_key_name_is_shortened_in_message() -> None:
    with pytest.raises(InvalidSecretType) as err:
        validate_secret("Opaque", {"k" * 300: b"v"})
    assert "k" * 65 not in err.value.message


# ---------------------------------------------------------------------------------------------- size


def test_exactly_one_mib_total_is_allowed() -> None:
    half = MAX_SECRET_SIZE // 2
    meta = validate_secret("Opaque", {"a": b"x" * half, "b": b"y" * (MAX_SECRET_SIZE - half)})
    assert meta["keys"] == "a,b"


def test_one_byte_over_one_mib_total_is_too_large() -> None:
    half = MAX_SECRET_SIZE // 2
    with pytest.raises(TooLarge, match=re.escape("1 MiB")):
        validate_secret("Opaque", {"a": b"x" * half, "b": b"y" * (MAX_SECRET_SIZE - half + 1)})


def test_key_names_do_not_count_towards_size() -> None:
    assert validate_secret("Opaque", {"k" * 253: b"x" * MAX_SECRET_SIZE})["content_type"] == "Opaque"


def test_single_value_limit() -> None:
    assert validate_secret("text", b"x" * MAX_SECRET_SIZE)["encoding"] == "utf-8"
    with pytest.raises(TooLarge):
        validate_secret("text", b"x" * (MAX_SECRET_SIZE + 1))


# ---------------------------------------------------------------------------------------------- names


def test_name_must_be_dns_subdomain() -> None:
    assert validate_secret("Opaque", {"a": b"b"}, name="my-app.db-creds")["content_type"] == "Opaque"
    for bad in ("My-App", "-app", "app-", "a_b", "a" * 254):
        with pytest.raises(InvalidSecretType, match=re.escape("name")):
            validate_secret("Opaque", {"a": b"b"}, name=bad)


# ---------------------------------------------------------------------------------------------- per type


def test_opaque_accepts_anything_including_empty() -> None:
    assert validate_secret("Opaque", {})["keys"] == ""
    assert validate_secret("Opaque", {"bin": bytes(range(256))})["keys"] == "bin"


def test_service_account_token_annotation() -> None:
    sa = "kubernetes.io/service-account-token"
    meta = validate_secret(sa, {"token": b"t"}, annotations={"kubernetes.io/service-account.name": "build"})
    assert meta["service_account"] == "build"
    assert validate_secret(sa, {})["keys"] == ""  # annotations unknown -> rule skipped
    for given in ({}, {"kubernetes.io/service-account.name": ""}):
        with pytest.raises(
            InvalidSecretType, match=re.escape("annotation 'kubernetes.io/service-account.name' is required")
        ):
            validate_secret(sa, {"token": b"t"}, annotations=given)


@pytest.mark.parametrize(
    ("content_type", "key"),
    [("kubernetes.io/dockercfg", ".dockercfg"), ("kubernetes.io/dockerconfigjson", ".dockerconfigjson")],
)
def test_docker_config_types(content_type: str, key: str) -> None:
    auths = {"ghcr.io": {"auth": "dTpw"}, "registry.example:5000": {"auth": "dTpw"}}
    body = {"auths": auths} if key == ".dockerconfigjson" else auths
    meta = validate_secret(content_type, {key: json.dumps(body).encode()})
    assert meta["registries"] == "ghcr.io,registry.example:5000"
    assert validate_secret(content_type, {key: b"null"})["registries"] == ""  # Go's Unmarshal accepts null
    with pytest.raises(InvalidSecretType, match=re.escape(f"key '{key}' is required")):
        validate_secret(content_type, {"other": b"{}"})
    for bad in (
        b"",
        b"{",
        b"{}x",
        b"\xef\xbb\xbf{}",
        b'{"a": NaN}',
        b'{"a": 1e999}',
        b'{"a": 1' + b"0" * 400 + b"}",
        b"[" * 5000,
    ):
        with pytest.raises(InvalidSecretType, match=re.escape(f"key '{key}' must be valid JSON")):
            validate_secret(content_type, {key: bad})
    for not_object in (b"[]", b'"s"', b"1", b"true"):
        with pytest.raises(InvalidSecretType, match=re.escape(f"key '{key}' must be a JSON object")):
            validate_secret(content_type, {key: not_object})


def test_basic_auth_needs_username_or_password_key() -> None:
    ba = "kubernetes.io/basic-auth"
    assert validate_secret(ba, {"username": b""})["keys"] == "username"
    assert validate_secret(ba, {"password": b"p"})["keys"] == "password"
    with pytest.raises(InvalidSecretType, match=re.escape("key 'username' or key 'password' is required")):
        validate_secret(ba, {"user": b"u"})


def test_ssh_auth_requires_non_empty_key() -> None:
    ssh = "kubernetes.io/ssh-auth"
    key = ed25519.Ed25519PrivateKey.generate()
    openssh = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    meta = validate_secret(ssh, {"ssh-privatekey": openssh, "known_hosts": b"h"})
    assert meta["key_type"] == "ssh-ed25519" and meta["fingerprint"].startswith("SHA256:")
    # The API server only needs it non-empty, so an unreadable key is accepted and described as unknown.
    assert validate_secret(ssh, {"ssh-privatekey": b"opaque"})["key_type"] == "unknown"
    for data in ({}, {"ssh-privatekey": b""}):
        with pytest.raises(
            InvalidSecretType, match=re.escape("key 'ssh-privatekey' is required and must not be empty")
        ):
            validate_secret(ssh, data)


def test_tls_valid_pair(tls_pair: tuple[bytes, bytes]) -> None:
    crt, key = tls_pair
    meta = validate_secret(TLS, {"tls.crt": crt, "tls.key": key})
    assert meta["subject"] == "CN=web.example" and meta["issuer"] == "CN=web.example"
    assert meta["sans"] == "web.example,www.web.example"
    assert meta["not_after"] == "2030-04-01T00:00:00Z"
    assert meta["key_matches"] == "true" and meta["keys"] == "tls.crt,tls.key"
    assert "BEGIN" not in "".join(meta.values())


def test_tls_missing_keys(tls_pair: tuple[bytes, bytes]) -> None:
    crt, key = tls_pair
    with pytest.raises(InvalidSecretType, match=re.escape("kubernetes.io/tls: key 'tls.key' is required")):
        validate_secret(TLS, {"tls.crt": crt})
    with pytest.raises(InvalidSecretType, match=re.escape("kubernetes.io/tls: key 'tls.crt' is required")):
        validate_secret(TLS, {"tls.key": key})


def test_tls_key_must_match_certificate(tls_pair: tuple[bytes, bytes]) -> None:
    crt, _ = tls_pair
    other = _pem_key(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(InvalidSecretType) as err:
        validate_secret(TLS, {"tls.crt": crt, "tls.key": other})
    assert err.value.message == "kubernetes.io/tls: key 'tls.key' does not match the certificate in 'tls.crt'"


def test_tls_bad_contents(tls_pair: tuple[bytes, bytes]) -> None:
    crt, key = tls_pair
    with pytest.raises(InvalidSecretType, match=re.escape("key 'tls.crt' must contain a PEM certificate")):
        validate_secret(TLS, {"tls.crt": b"", "tls.key": key})
    broken = crt.replace(crt[80:120], b"A" * 40)
    with pytest.raises(InvalidSecretType, match=re.escape("key 'tls.crt' is not a valid PEM X.509")):
        validate_secret(TLS, {"tls.crt": broken, "tls.key": key})
    with pytest.raises(InvalidSecretType, match=re.escape("key 'tls.key' must be a PEM private key")):
        validate_secret(TLS, {"tls.crt": crt, "tls.key": crt})
    locked = _pem_key(ec.generate_private_key(ec.SECP256R1()), password=b"pw")
    with pytest.raises(InvalidSecretType, match=re.escape("key 'tls.key' is password-protected")):
        validate_secret(TLS, {"tls.crt": crt, "tls.key": locked})
    with pytest.raises(InvalidSecretType, match=re.escape("key 'ca.crt'")):
        validate_secret(TLS, {"tls.crt": crt, "tls.key": key, "ca.crt": b"not a cert"})
    assert validate_secret(TLS, {"tls.crt": crt, "tls.key": key, "ca.crt": crt})["ca_chain_length"] == "1"


def test_bootstrap_token_valid() -> None:
    meta = validate_secret(
        BOOT,
        _bootstrap(expiration=b"2030-01-02T03:04:05+01:00", **{"auth-extra-groups": b"system:bootstrappers:a:b"}),
        name="bootstrap-token-abcdef",
        namespace="kube-system",
    )
    assert meta["token_id"] == "abcdef" and meta["usages"] == "authentication,signing"
    assert meta["expiration"] == "2030-01-02T02:04:05Z"
    assert meta["auth_extra_groups"] == "system:bootstrappers:a:b"
    assert "0123456789abcdef" not in json.dumps(meta)


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (_bootstrap(**{"token-id": None}), "key 'token-id' is required"),
        (_bootstrap(**{"token-id": b"ABCDEF"}), "key 'token-id' must be 6 characters from [a-z0-9]"),
        (_bootstrap(**{"token-id": b"abcdefg"}), "key 'token-id' must be 6 characters"),
        (_bootstrap(**{"token-secret": None}), "key 'token-secret' is required"),
        (_bootstrap(**{"token-secret": b"0123456789abcde"}), "key 'token-secret' must be 16 characters"),
        (_bootstrap(**{"token-secret": b"0123456789abcdef\n"}), "key 'token-secret' must be 16 characters"),
        (_bootstrap(expiration=b"2030-01-02"), "key 'expiration' must be an RFC 3339 time"),
        (_bootstrap(expiration=b"2030-13-02T00:00:00Z"), "key 'expiration' must be an RFC 3339 time"),
        (_bootstrap(**{"usage-bootstrap-typo": b"true"}), "key 'usage-bootstrap-typo' is not a known usage"),
        (_bootstrap(**{"auth-extra-groups": b"system:masters"}), "key 'auth-extra-groups' must be"),
        (_bootstrap(**{"auth-extra-groups": b"system:bootstrappers:a,"}), "key 'auth-extra-groups' must be"),
    ],
)
def test_bootstrap_token_rules(data: dict[str, bytes], rule: str) -> None:
    with pytest.raises(InvalidSecretType) as err:
        validate_secret(BOOT, data)
    assert err.value.message.startswith(BOOT + ": ")
    assert rule in err.value.message


def test_bootstrap_usage_other_than_true_means_false() -> None:
    meta = validate_secret(BOOT, _bootstrap(**{"usage-bootstrap-signing": b"yes"}))
    assert meta["usages"] == "authentication"


def test_bootstrap_name_and_namespace() -> None:
    with pytest.raises(InvalidSecretType, match=re.escape("name must be 'bootstrap-token-<token-id>'")):
        validate_secret(BOOT, _bootstrap(), name="bootstrap-token-zzzzzz")
    with pytest.raises(InvalidSecretType, match=re.escape("namespace must be 'kube-system'")):
        validate_secret(BOOT, _bootstrap(), namespace="default")


# ---------------------------------------------------------------------------------------------- secrecy


def _invalid_maps(tls_pair: tuple[bytes, bytes]) -> list[tuple[str, dict[str, bytes]]]:
    crt, _ = tls_pair
    return [
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b'{"auths": ' + CANARY}),
        ("kubernetes.io/dockercfg", {".dockercfg": b"[" + CANARY + b"]"}),
        (TLS, {"tls.crt": crt, "tls.key": CANARY}),
        (TLS, {"tls.crt": CANARY, "tls.key": CANARY}),
        (BOOT, _bootstrap(**{"token-secret": CANARY})),
        (BOOT, _bootstrap(**{"token-id": CANARY})),
        (BOOT, _bootstrap(expiration=CANARY)),
        (BOOT, _bootstrap(**{"auth-extra-groups": CANARY})),
        ("kubernetes.io/basic-auth", {"pass": CANARY}),
        ("Opaque", {"bad key": CANARY}),
    ]


def test_errors_never_contain_the_value(tls_pair: tuple[bytes, bytes]) -> None:
    canary = CANARY.decode()
    for content_type, data in _invalid_maps(tls_pair):
        with pytest.raises(InvalidSecretType) as err:
            validate_secret(content_type, data)
        for text in (str(err.value), repr(err.value), err.value.message):
            assert canary not in text, (content_type, text)
