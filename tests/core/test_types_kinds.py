"""Tests for kinko's single-value content kinds: text, api-key, certificate, private-key, ssh-private-key."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import NameOID

from kinko.core.types import validate_secret
from kinko.errors import InvalidSecretType

CANARY = b"CANARYs3cr3tVALUE"
NO_ENC = serialization.NoEncryption()


def _pkcs8(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, NO_ENC)


def _cert(subject_key: ec.EllipticCurvePrivateKey, issuer_key: ec.EllipticCurvePrivateKey, cn: str) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    start = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.UTC)
    sans = x509.SubjectAlternativeName(
        [x509.DNSName(cn), x509.IPAddress(ipaddress.ip_address("10.0.0.7")), x509.RFC822Name("ops@example.org")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(255)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365))
        .add_extension(sans, critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def chain() -> tuple[bytes, bytes, bytes]:
    """(leaf cert, CA cert, leaf key) as PEM."""
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    return _cert(leaf_key, ca_key, "api.example"), _cert(ca_key, ca_key, "Test CA"), _pkcs8(leaf_key)


def _errors(content_type: str, value: bytes, rule: str) -> str:
    with pytest.raises(InvalidSecretType) as err:
        validate_secret(content_type, value)
    assert rule in err.value.message, err.value.message
    assert err.value.message.startswith(content_type + ": ")
    return err.value.message


# ---------------------------------------------------------------------------------------------- text


def test_text_accepts_any_bytes() -> None:
    assert validate_secret("text", b"hello\nworld") == {"encoding": "utf-8", "content_type": "text"}
    assert validate_secret("text", b"\xff\x00")["encoding"] == "binary"
    assert validate_secret("text", b"")["content_type"] == "text"


# ---------------------------------------------------------------------------------------------- api-key


def test_api_key_valid() -> None:
    assert validate_secret("api-key", b"sk_live_" + b"a" * 40) == {"content_type": "api-key"}
    assert validate_secret("api-key", b"k" * 4096)["content_type"] == "api-key"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (b"", "must not be empty"),
        (b"k" * 4097, "no more than 4096 bytes"),
        (b"abc def", "must not contain whitespace or newlines; found some inside it"),
        (b"abcdef\n", "found some at its start or end (a trailing newline?)"),
        (b"ab\tc", "whitespace"),
        (b"ab\x07c", "control characters"),
        (b"\xff\xfe", "must be UTF-8"),
    ],
)
def test_api_key_rules(value: bytes, rule: str) -> None:
    _errors("api-key", value, rule)


# ---------------------------------------------------------------------------------------------- certificate


def test_certificate_chain_with_key(chain: tuple[bytes, bytes, bytes]) -> None:
    leaf, ca, key = chain
    meta = validate_secret("certificate", leaf + ca + key)
    assert meta["subject"] == "CN=api.example" and meta["issuer"] == "CN=Test CA"
    assert meta["sans"] == "api.example,10.0.0.7,ops@example.org"
    assert meta["not_before"] == "2025-06-01T12:00:00Z" and meta["not_after"] == "2026-06-01T12:00:00Z"
    assert meta["chain_length"] == "2" and meta["key_matches"] == "true" and meta["key_type"] == "ec"
    assert meta["serial"] == "ff" and len(meta["fingerprint_sha256"]) == 64


def test_certificate_without_key(chain: tuple[bytes, bytes, bytes]) -> None:
    leaf, _, _ = chain
    meta = validate_secret("certificate", leaf)
    assert meta["has_private_key"] == "false" and "key_matches" not in meta


def test_certificate_key_must_match_leaf(chain: tuple[bytes, bytes, bytes]) -> None:
    leaf, ca, _ = chain
    wrong = _pkcs8(ec.generate_private_key(ec.SECP256R1()))
    _errors("certificate", leaf + ca + wrong, "the private key does not match the (first) certificate")


def test_certificate_rejects_garbage(chain: tuple[bytes, bytes, bytes]) -> None:
    _errors("certificate", b"hello", "must contain a PEM certificate")
    leaf, _, _ = chain
    damaged = leaf[:60] + b"!!!!" + leaf[64:]
    _errors("certificate", damaged, "is not a valid PEM X.509 certificate chain")
    locked = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    _errors("certificate", leaf + locked, "password-protected")


# ---------------------------------------------------------------------------------------------- private-key


def test_private_key_kinds() -> None:
    ec_meta = validate_secret("private-key", _pkcs8(ec.generate_private_key(ec.SECP384R1())))
    assert ec_meta["key_type"] == "ec" and ec_meta["curve"] == "secp384r1" and ec_meta["key_size"] == "384"
    assert len(ec_meta["public_key_sha256"]) == 64 and ec_meta["encrypted"] == "false"
    ed = validate_secret("private-key", _pkcs8(ed25519.Ed25519PrivateKey.generate()))
    assert ed["key_type"] == "ed25519"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # small: speed only
    traditional = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, NO_ENC
    )
    assert validate_secret("private-key", traditional)["key_size"] == "1024"


def test_encrypted_private_key_is_accepted_but_marked() -> None:
    locked = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert validate_secret("private-key", locked) == {"encrypted": "true", "content_type": "private-key"}


def test_private_key_rejects(chain: tuple[bytes, bytes, bytes]) -> None:
    leaf, _, key = chain
    _errors("private-key", b"not a key", "must be a PEM private key")
    _errors("private-key", leaf + key, "use content type 'certificate'")
    _errors("private-key", key.replace(key[40:60], b"A" * 20), "is not a valid PEM private key")
    openssh = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, NO_ENC
    )
    _errors("private-key", openssh, "use content type 'ssh-private-key'")


# ---------------------------------------------------------------------------------------------- ssh-private-key


def _sshstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _encrypted_openssh() -> bytes:
    """An OpenSSH envelope saying aes256-ctr/bcrypt (built by hand: writing one needs the bcrypt module)."""
    pub = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    blob = (
        b"openssh-key-v1\x00"
        + _sshstr(b"aes256-ctr")
        + _sshstr(b"bcrypt")
        + _sshstr(_sshstr(b"s" * 16) + struct.pack(">I", 16))
        + struct.pack(">I", 1)
        + _sshstr(_sshstr(b"ssh-ed25519") + _sshstr(pub))
        + _sshstr(bytes(160))
    )
    body = base64.b64encode(blob)
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + b"\n".join(lines) + b"\n-----END OPENSSH PRIVATE KEY-----\n"


def test_ssh_private_key_openssh_and_pem() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    openssh = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, NO_ENC)
    meta = validate_secret("ssh-private-key", openssh)
    raw_pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    expected = base64.b64encode(hashlib.sha256(base64.b64decode(raw_pub.split()[1])).digest()).rstrip(b"=")
    assert meta == {
        "key_type": "ssh-ed25519",
        "fingerprint": "SHA256:" + expected.decode(),
        "encrypted": "false",
        "content_type": "ssh-private-key",
    }
    pem = validate_secret("ssh-private-key", _pkcs8(ec.generate_private_key(ec.SECP256R1())))
    assert pem["key_type"] == "ecdsa-sha2-nistp256"


def test_ssh_private_key_encrypted_is_marked() -> None:
    assert validate_secret("ssh-private-key", _encrypted_openssh())["encrypted"] == "true"


def test_ssh_private_key_rejects() -> None:
    _errors("ssh-private-key", b"ssh-ed25519 AAAA... user@host", "must be an SSH private key")
    broken = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    _errors("ssh-private-key", broken, "is not a valid OpenSSH private key")
    _errors("ssh-private-key", _pkcs8(x25519.X25519PrivateKey.generate()), "a key type ssh cannot use")


# ---------------------------------------------------------------------------------------------- secrecy


def test_errors_never_contain_the_value(chain: tuple[bytes, bytes, bytes]) -> None:
    leaf, _, _ = chain
    pem_canary = b"-----BEGIN PRIVATE KEY-----\n" + CANARY + b"\n-----END PRIVATE KEY-----\n"
    cases = [
        ("api-key", CANARY + b" x"),
        ("api-key", CANARY * 300),
        ("certificate", CANARY),
        ("certificate", leaf + pem_canary),
        ("private-key", pem_canary),
        ("ssh-private-key", CANARY),
        ("ssh-private-key", pem_canary),
        ("connection-string", b"postgres://u:" + CANARY + b"@:99999/db"),
    ]
    for content_type, value in cases:
        with pytest.raises(InvalidSecretType) as err:
            validate_secret(content_type, value)
        for text in (str(err.value), repr(err.value)):
            assert CANARY.decode() not in text, (content_type, text)
