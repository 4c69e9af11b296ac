"""Key material generated at test time (never committed): PEM keys, certificates, PKCS#12, GCP JSON."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import os
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

_PEM = serialization.Encoding.PEM
_NOENC = serialization.NoEncryption()


@functools.cache
def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _pem(key: object, fmt: serialization.PrivateFormat, enc: object = _NOENC) -> str:
    return key.private_bytes(_PEM, fmt, enc).decode()  # type: ignore[attr-defined,no-any-return]


@functools.cache
def certificate() -> x509.Certificate:
    key = rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kinko-test.internal")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _der_b64(key: object, fmt: serialization.PrivateFormat) -> str:
    """A private key as one line of base64 DER, the way it is pasted into an env var (no PEM lines)."""
    der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())  # type: ignore[attr-defined]
    return base64.b64encode(der).decode()


def _cert_pem() -> str:
    return certificate().public_bytes(_PEM).decode()


def _pgp_block() -> str:
    # Armor shape only; the body is random bytes (no PGP implementation is needed to test detection).
    body = base64.b64encode(os.urandom(600)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{lines}\n=AbCd\n-----END PGP PRIVATE KEY BLOCK-----\n"


def _gcp_service_account() -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "kinko-demo-123",
            "private_key_id": os.urandom(20).hex(),
            "private_key": _pem(rsa_key(), serialization.PrivateFormat.PKCS8),
            "client_email": "deployer@kinko-demo-123.iam.gserviceaccount.com",
        },
        indent=2,
    )


def _p12() -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"kinko", rsa_key(), certificate(), None, serialization.BestAvailableEncryption(b"pw-for-tests")
    )


def generate(name: str) -> str | bytes:
    """The material named by an `@gen:NAME` example entry."""
    trad = serialization.PrivateFormat.TraditionalOpenSSL
    pkcs8 = serialization.PrivateFormat.PKCS8
    makers: dict[str, Callable[[], str | bytes]] = {
        "rsa": lambda: _pem(rsa_key(), trad),
        "rsa4096": lambda: _pem(rsa_key(4096), trad),
        "ec": lambda: _pem(ec.generate_private_key(ec.SECP256R1()), trad),
        "pkcs8": lambda: _pem(rsa_key(), pkcs8),
        "pkcs8-json": lambda: json.dumps({"key": _pem(ec.generate_private_key(ec.SECP384R1()), pkcs8)}),
        "encrypted": lambda: _pem(rsa_key(), pkcs8, serialization.BestAvailableEncryption(b"pw-for-tests")),
        "openssh": lambda: _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH),
        "dsa": lambda: _pem(dsa.generate_private_key(key_size=1024), trad),
        "truncated": lambda: "\n".join(_pem(rsa_key(), pkcs8).splitlines()[:4]) + "\n",
        "pgp": _pgp_block,
        "gcp-sa": _gcp_service_account,
        "p12": _p12,
        "der-cert": lambda: certificate().public_bytes(serialization.Encoding.DER),
        "rsa-der-b64": lambda: "RSA_KEY=" + _der_b64(rsa_key(), trad) + "\n",
        "pkcs8-der-b64": lambda: json.dumps({"private_key": _der_b64(rsa_key(), pkcs8)}),
        "cert-der-b64": lambda: "CERT=" + base64.b64encode(certificate().public_bytes(serialization.Encoding.DER)).decode(),  # noqa: E501
        "cert": _cert_pem,
        "cert+key": lambda: _cert_pem() + _pem(rsa_key(), pkcs8),
        "key+cert": lambda: _pem(rsa_key(), trad) + _cert_pem(),
    }
    return makers[name]()
