"""kinko's single-value kinds: text, json, api-key, connection-string, certificate, private-key, ssh-private-key.

Each validator takes the raw bytes and returns non-sensitive metadata; PEM and SSH material is parsed by
`cryptography` only. Also holds the certificate/key helpers `kubernetes.io/tls` reuses.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from kinko.core.connection_strings import parse_connection_string
from kinko.errors import InvalidSecretType

MAX_API_KEY_LENGTH = 4 * 1024
_PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm)

#: Built in two parts so a repository grep for committed key material does not flag the detector itself.
OPENSSH_HEADER = b"-----BEGIN OPENSSH PRIVATE KEY" + b"-----"


def _text(value: bytes) -> dict[str, str]:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return {"encoding": "binary"}
    return {"encoding": "utf-8"}


def _json(value: bytes) -> dict[str, str]:
    """A JSON object (what a Vault KV v2 write holds when its values are not all strings under plain keys)."""
    import json

    try:
        doc = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidSecretType("json: value must be a UTF-8 JSON object") from None
    if not isinstance(doc, dict):
        raise InvalidSecretType("json: value must be a JSON object")
    return {}


def _api_key(value: bytes) -> dict[str, str]:
    kind = "api-key"
    if not value:
        raise InvalidSecretType(f"{kind}: value must not be empty")
    if len(value) > MAX_API_KEY_LENGTH:
        raise InvalidSecretType(f"{kind}: value must be no more than {MAX_API_KEY_LENGTH} bytes")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSecretType(f"{kind}: value must be UTF-8 text") from None
    if any(ch.isspace() for ch in text):
        where = "at its start or end (a trailing newline?)" if text != text.strip() else "inside it"
        raise InvalidSecretType(f"{kind}: value must not contain whitespace or newlines; found some {where}")
    if not text.isprintable():
        raise InvalidSecretType(f"{kind}: value must not contain control characters")
    return {}


def _connection_string(value: bytes) -> dict[str, str]:
    kind = "connection-string"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSecretType(f"{kind}: value must be UTF-8 text") from None
    return parse_connection_string(text)


# ---------------------------------------------------------------------------------------------------------
# Certificates and PEM private keys


def _utc(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _san_values(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    values: list[str] = []
    for general_name in ext:
        if isinstance(general_name, x509.DNSName | x509.RFC822Name | x509.UniformResourceIdentifier):
            values.append(general_name.value)
        elif isinstance(general_name, x509.IPAddress):
            values.append(str(general_name.value))
    return values


def certificate_metadata(cert: x509.Certificate) -> dict[str, str]:
    """Public facts about one certificate: subject, issuer, SANs, validity, serial, fingerprint."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sans": ",".join(_san_values(cert)),
        "not_before": _utc(cert.not_valid_before_utc),
        "not_after": _utc(cert.not_valid_after_utc),
        "serial": format(cert.serial_number, "x"),
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }


def load_certificates(label: str, data: bytes) -> list[x509.Certificate]:
    """Every CERTIFICATE block in `data`, leaf first; `label` ("certificate", "kubernetes.io/tls: key ...")
    names the value in errors."""
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise InvalidSecretType(f"{label} must contain a PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        return x509.load_pem_x509_certificates(data)
    except _PARSE_ERRORS:
        raise InvalidSecretType(f"{label} is not a valid PEM X.509 certificate chain") from None


def has_private_key_block(data: bytes) -> bool:
    """Whether PEM text carries a private-key block (PKCS#8, traditional RSA/EC/DSA or OpenSSH)."""
    return b"-----BEGIN " in data and b"PRIVATE KEY-----" in data


def load_pem_key(label: str, data: bytes) -> PrivateKeyTypes | None:
    """The first PEM private key in `data`; None when it is password-protected (cannot be checked)."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        return None  # cryptography's signal for "encrypted and no password given"
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidSecretType(f"{label} is not a valid PEM private key") from None


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches_certificate(key: PrivateKeyTypes, cert: x509.Certificate) -> bool:
    """True when the certificate's public key is the private key's public half (SPKI DER equality)."""
    return _spki(key.public_key()) == _spki(cert.public_key())


def key_metadata(key: PrivateKeyTypes) -> dict[str, str]:
    """Algorithm, size and public-key fingerprint of a private key (nothing about the private part)."""
    meta: dict[str, str] = {"encrypted": "false"}
    if isinstance(key, rsa.RSAPrivateKey):
        meta.update(key_type="rsa", key_size=str(key.key_size))
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        meta.update(key_type="ec", key_size=str(key.key_size), curve=key.curve.name)
    elif isinstance(key, dsa.DSAPrivateKey):
        meta.update(key_type="dsa", key_size=str(key.key_size))
    else:
        names = {
            ed25519.Ed25519PrivateKey: "ed25519",
            ed448.Ed448PrivateKey: "ed448",
            x25519.X25519PrivateKey: "x25519",
            x448.X448PrivateKey: "x448",
        }
        meta["key_type"] = next((n for cls, n in names.items() if isinstance(key, cls)), "other")
    meta["public_key_sha256"] = hashlib.sha256(_spki(key.public_key())).hexdigest()
    return meta


def _certificate(value: bytes) -> dict[str, str]:
    """A PEM chain, leaf first, optionally with the leaf's unencrypted private key anywhere in the text."""
    certs = load_certificates("certificate: value", value)
    meta = certificate_metadata(certs[0])
    meta["chain_length"] = str(len(certs))
    if not has_private_key_block(value):
        meta["has_private_key"] = "false"
        return meta
    key = load_pem_key("certificate: value's private key", value)
    if key is None:
        raise InvalidSecretType("certificate: the private key is password-protected; it cannot be matched")
    if not key_matches_certificate(key, certs[0]):
        raise InvalidSecretType("certificate: the private key does not match the (first) certificate")
    meta.update(has_private_key="true", key_matches="true", key_type=key_metadata(key)["key_type"])
    return meta


def _private_key(value: bytes) -> dict[str, str]:
    if b"-----BEGIN CERTIFICATE-----" in value:
        raise InvalidSecretType("private-key: value contains a certificate; use content type 'certificate'")
    if OPENSSH_HEADER in value:
        raise InvalidSecretType("private-key: value is an OpenSSH key; use content type 'ssh-private-key'")
    if not has_private_key_block(value):
        raise InvalidSecretType("private-key: value must be a PEM private key (-----BEGIN ... PRIVATE KEY-----)")
    key = load_pem_key("private-key: value", value)
    return {"encrypted": "true"} if key is None else key_metadata(key)


# ---------------------------------------------------------------------------------------------------------
# SSH private keys


def _openssh_cipher(value: bytes) -> str | None:
    """The cipher name from an OpenSSH key envelope ("none" = unencrypted); None if unreadable.

    Only the envelope header is read (magic, then one length-prefixed string); the key itself is left to
    `cryptography`."""
    lines = value.strip().splitlines()
    body = b"".join(line.strip() for line in lines[1:-1])
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
    magic = b"openssh-key-v1\x00"
    if not raw.startswith(magic) or len(raw) < len(magic) + 4:
        return None
    size = int.from_bytes(raw[len(magic) : len(magic) + 4], "big")
    name = raw[len(magic) + 4 : len(magic) + 4 + size]
    return name.decode("ascii", "replace") if len(name) == size else None


def ssh_key_metadata(key: PrivateKeyTypes | serialization.SSHPrivateKeyTypes) -> dict[str, str] | None:
    """ssh-keygen style facts (type, SHA256 fingerprint); None if the key type has no SSH form."""
    try:
        line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except _PARSE_ERRORS:
        return None
    key_type, blob = line.split(b" ")[:2]
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    fingerprint = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    return {"key_type": key_type.decode(), "fingerprint": fingerprint, "encrypted": "false"}


def parse_ssh_private_key(label: str, value: bytes) -> dict[str, str]:
    """Validate an OpenSSH-format or PEM private key usable by ssh; metadata as `ssh_key_metadata`."""
    if OPENSSH_HEADER in value:
        try:
            # SSHPrivateKeyTypes grows with cryptography (51 added ML-DSA hybrids): keep the annotation open to it.
            key: PrivateKeyTypes | serialization.SSHPrivateKeyTypes | None = serialization.load_ssh_private_key(
                value, password=None)
        except TypeError:
            key = None  # password-protected
        except UnsupportedAlgorithm:
            # Without the optional bcrypt module even reading an encrypted key fails this way.
            if _openssh_cipher(value) in (None, "none"):
                raise InvalidSecretType(f"{label} uses an SSH key type kinko cannot read") from None
            key = None
        except ValueError:
            raise InvalidSecretType(f"{label} is not a valid OpenSSH private key") from None
    elif has_private_key_block(value):
        key = load_pem_key(label, value)
    else:
        raise InvalidSecretType(f"{label} must be an SSH private key (OpenSSH or PEM format)")
    if key is None:
        return {"encrypted": "true"}
    meta = ssh_key_metadata(key)
    if meta is None:
        raise InvalidSecretType(f"{label} is a key type ssh cannot use")
    return meta


def _ssh_private_key(value: bytes) -> dict[str, str]:
    return parse_ssh_private_key("ssh-private-key: value", value)


VALIDATORS: dict[str, Callable[[bytes], dict[str, str]]] = {
    "text": _text,
    "json": _json,
    "api-key": _api_key,
    "connection-string": _connection_string,
    "certificate": _certificate,
    "private-key": _private_key,
    "ssh-private-key": _ssh_private_key,
}
