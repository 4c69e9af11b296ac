"""The cryptography of named keys, per key type, with pyca/cryptography only (no hand-rolled primitives).

Symmetric keys: AES-256-GCM or ChaCha20-Poly1305, random 96-bit nonce, output `nonce | ciphertext | tag` (Vault's
layout). RSA keys encrypt with OAEP (SHA-256) and sign with PSS (default) or PKCS#1 v1.5; ECDSA signatures are
ASN.1 DER (default) or JWS `r | s`; Ed25519 signs the input itself. HMACs use each version's own HMAC key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kinko.vault.transit import AUTH_FAILED, SYMMETRIC, TransitError

NONCE = 12
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha2-224": hashes.SHA224, "sha2-256": hashes.SHA256, "sha2-384": hashes.SHA384,
    "sha2-512": hashes.SHA512, "sha3-224": hashes.SHA3_224, "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384, "sha3-512": hashes.SHA3_512,
}
_CURVES: dict[str, ec.EllipticCurve] = {"ecdsa-p256": ec.SECP256R1(), "ecdsa-p384": ec.SECP384R1()}
_CURVE_NAMES = {"ecdsa-p256": "P-256", "ecdsa-p384": "P-384"}
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def hash_algorithm(name: object) -> hashes.HashAlgorithm:
    if name not in HASHES:
        raise TransitError(f"unsupported hash algorithm {str(name)[:32]}")
    return HASHES[str(name)]()


def new_material(key_type: str) -> bytes:
    """Fresh key material: 32 random bytes, or a new private key as PKCS#8 DER."""
    if key_type in SYMMETRIC:
        return secrets.token_bytes(32)
    private: Any
    if key_type.startswith("rsa-"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    elif key_type in _CURVES:
        private = ec.generate_private_key(_CURVES[key_type])
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return bytes(private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


@functools.lru_cache(maxsize=512)
def _private(material: bytes) -> Any:
    return serialization.load_der_private_key(material, password=None)


def forget() -> None:
    """Drop the loaded private keys (the vault was sealed)."""
    _private.cache_clear()


def public_key(key_type: str, material: bytes) -> tuple[str, str]:
    """(name, public key) as a key read shows them: PEM, or raw base64 for Ed25519; ("", "") for symmetric keys."""
    if key_type in SYMMETRIC:
        return "", ""
    public = _private(material).public_key()
    if key_type == "ed25519":
        import base64

        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "ed25519", base64.b64encode(raw).decode()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return _CURVE_NAMES.get(key_type, key_type), pem


def derive(material: bytes, context: bytes) -> bytes:
    """The per-context key of a derived key (HKDF-SHA256, the context as info)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(material)


def _aead(key_type: str, key: bytes) -> AESGCM | ChaCha20Poly1305:
    return AESGCM(key) if key_type == "aes256-gcm96" else ChaCha20Poly1305(key)


def encrypt(key_type: str, material: bytes, plaintext: bytes, aad: bytes) -> bytes:
    if key_type in SYMMETRIC:
        nonce = secrets.token_bytes(NONCE)
        return nonce + _aead(key_type, material).encrypt(nonce, plaintext, aad or None)
    if aad:
        raise TransitError(f"associated data is not supported for key type {key_type}")
    private: rsa.RSAPrivateKey = _private(material)
    try:
        return bytes(private.public_key().encrypt(plaintext, _OAEP))
    except ValueError:
        raise TransitError("plaintext is too long for this RSA key") from None


def decrypt(key_type: str, material: bytes, blob: bytes, aad: bytes) -> bytes:
    if key_type in SYMMETRIC:
        if len(blob) < NONCE + 16:
            raise TransitError("invalid ciphertext length")
        try:
            return _aead(key_type, material).decrypt(blob[:NONCE], blob[NONCE:], aad or None)
        except InvalidTag:
            raise TransitError(AUTH_FAILED) from None
    private: rsa.RSAPrivateKey = _private(material)
    try:
        return bytes(private.decrypt(blob, _OAEP))
    except ValueError:
        raise TransitError("failed to RSA decrypt the ciphertext") from None


def sign(key_type: str, material: bytes, data: bytes, *, hash_name: str, prehashed: bool,
         signature_algorithm: str, marshaling: str) -> bytes:
    private = _private(material)
    if key_type == "ed25519":
        return bytes(private.sign(data))
    algorithm = hash_algorithm(hash_name)
    chosen: Any = utils.Prehashed(algorithm) if prehashed else algorithm
    if prehashed and len(data) != algorithm.digest_size:
        raise TransitError(f"input must be a {hash_name} digest of {algorithm.digest_size} bytes when prehashed")
    if key_type in _CURVES:
        der = bytes(private.sign(data, ec.ECDSA(chosen)))
        return der if marshaling == "asn1" else _jws(key_type, der)
    return bytes(private.sign(data, _rsa_padding(signature_algorithm, algorithm, signing=True), chosen))


def verify(key_type: str, material: bytes, data: bytes, signature: bytes, *, hash_name: str, prehashed: bool,
           signature_algorithm: str, marshaling: str) -> bool:
    public = _private(material).public_key()
    try:
        if key_type == "ed25519":
            public.verify(signature, data)
            return True
        algorithm = hash_algorithm(hash_name)
        chosen: Any = utils.Prehashed(algorithm) if prehashed else algorithm
        if key_type in _CURVES:
            der = signature if marshaling == "asn1" else _der(signature)
            public.verify(der, data, ec.ECDSA(chosen))
        else:
            public.verify(signature, data, _rsa_padding(signature_algorithm, algorithm, signing=False), chosen)
    except (InvalidSignature, ValueError):
        return False
    return True


def _rsa_padding(name: str, algorithm: hashes.HashAlgorithm, *, signing: bool) -> padding.AsymmetricPadding:
    if name == "pkcs1v15":
        return padding.PKCS1v15()
    if name != "pss":
        raise TransitError(f"unsupported rsa signature algorithm {name[:32]}")
    return padding.PSS(mgf=padding.MGF1(algorithm),  # MGF1 over the signing hash, as Go's crypto/rsa does
                       salt_length=padding.PSS.MAX_LENGTH if signing else padding.PSS.AUTO)


def _jws(key_type: str, der: bytes) -> bytes:
    size = (_CURVES[key_type].key_size + 7) // 8
    r, s = utils.decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _der(raw: bytes) -> bytes:
    half = len(raw) // 2
    if not raw or len(raw) % 2:
        raise ValueError("bad JWS signature")
    return bytes(utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")))


def mac(hmac_key: bytes, data: bytes, hash_name: str) -> bytes:
    if hash_name not in HASHES:
        raise TransitError(f"unsupported algorithm {hash_name[:32]}")
    return hmac.new(hmac_key, data, hash_name.replace("sha2-", "sha").replace("sha3-", "sha3_")).digest()


def mac_equal(hmac_key: bytes, data: bytes, hash_name: str, given: bytes) -> bool:
    """Constant-time comparison of a given HMAC with the one computed."""
    return hmac.compare_digest(mac(hmac_key, data, hash_name), given)


def digest(data: bytes, hash_name: str) -> bytes:
    if hash_name not in HASHES:
        raise TransitError(f"unsupported hash algorithm {hash_name[:32]}")
    return hashlib.new(hash_name.replace("sha2-", "sha").replace("sha3-", "sha3_"), data).digest()
