"""Kubernetes service-account identities: auth config and roles, and offline verification of SA JWTs.

A pod's service-account token (a JWT signed by the cluster's issuer) is verified here without calling the
cluster: signature against configured JWKS or PEM public keys (RS256 and ES256 only, never `none` or HMAC),
issuer, audience, and exp/nbf/iat with a small leeway. The identity comes from the `kubernetes.io` claim
({namespace, serviceaccount{name, uid}}) or `sub` = `system:serviceaccount:<ns>:<name>`; when both are present
they must agree. Every failure raises the same PermissionDenied("permission denied"): a caller learns nothing
about which check failed.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kinko.errors import InvalidInput, PermissionDenied

LEEWAY = 30.0  # seconds of clock skew tolerated between the cluster and kinko
MAX_JWT_CHARS = 16 * 1024
MAX_KEYS = 64
MAX_TTL = 32 * 24 * 3600
MAX_BINDINGS = 256
#: The `aud` a role expects when it names none: tokens minted for other services are not replayable here.
DEFAULT_AUDIENCE = "kinko"
ALGORITHMS = ("RS256", "ES256")
_ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
# DNS-1123 label (namespaces) / subdomain (service-account names), or "*" for any.
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_SA_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
_SUB = re.compile(r"system:serviceaccount:([^:]+):([^:]+)\Z")

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class VerificationKey:
    key: PublicKey
    kid: str | None = None
    alg: str | None = None  # "alg" pinned by a JWK, if any


@dataclass(frozen=True)
class KubernetesAuthConfig:
    """Where trust comes from: the issuer to expect and the public keys tokens are signed with (public data)."""

    issuer: str | None
    jwks: str | None  # a JWKS document (JSON text), normalized
    pem_keys: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks": json.loads(self.jwks) if self.jwks else None,
                "pem_keys": list(self.pem_keys)}

    def to_json(self) -> bytes:
        return json.dumps({"issuer": self.issuer, "jwks": self.jwks, "pem_keys": list(self.pem_keys)}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> KubernetesAuthConfig:
        doc = json.loads(raw)
        return cls(doc["issuer"], doc["jwks"], tuple(doc["pem_keys"]))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> KubernetesAuthConfig:
        """The inverse of `to_dict` (a server's answer): the JWKS back to its normalised text."""
        jwks = doc.get("jwks")
        return cls(doc.get("issuer"), json.dumps(jwks, sort_keys=True) if jwks else None,
                   tuple(doc.get("pem_keys") or ()))

    def public_keys(self) -> tuple[VerificationKey, ...]:
        return _parse_keys(self.jwks, self.pem_keys)


@dataclass(frozen=True)
class KubernetesRole:
    """Binds service-account names and namespaces (and the audience tokens must carry) to policies and a TTL."""

    name: str
    service_account_names: tuple[str, ...]
    namespaces: tuple[str, ...]
    audience: str
    policies: tuple[str, ...]
    ttl: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "service_account_names": list(self.service_account_names),
                "namespaces": list(self.namespaces), "audience": self.audience, "policies": list(self.policies),
                "ttl": self.ttl}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> KubernetesRole:
        # Roles stored before the default existed have audience null: they get the default too, never "any".
        return cls(doc["name"], tuple(doc["service_account_names"]), tuple(doc["namespaces"]),
                   doc["audience"] or DEFAULT_AUDIENCE, tuple(doc["policies"]), int(doc["ttl"]))

    def binds(self, account: ServiceAccount) -> bool:
        return (_matches(self.namespaces, account.namespace)
                and _matches(self.service_account_names, account.name))


@dataclass(frozen=True)
class ServiceAccount:
    namespace: str
    name: str
    uid: str | None = None

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def _matches(allowed: Sequence[str], value: str) -> bool:
    return "*" in allowed or value in allowed


# -- validation of what an administrator writes ----------------------------------------------------------
def validate_role_name(name: object) -> str:
    if not isinstance(name, str) or not _ROLE_NAME.fullmatch(name):
        raise InvalidInput("role name must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-' "
                           "(starting alphanumeric)")
    return name


def _bindings(what: str, values: object, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise InvalidInput(f"{what} must be a non-empty list (use '*' for any)")
    if len(values) > MAX_BINDINGS:
        raise InvalidInput(f"{what} may list at most {MAX_BINDINGS} entries")
    for value in values:
        if not isinstance(value, str) or (value != "*" and not pattern.fullmatch(value)):
            raise InvalidInput(f"{what}: {str(value)[:80]!r} is not a valid Kubernetes name or '*'")
    return tuple(sorted(set(values)))


def make_role(name: str, *, service_account_names: Sequence[str], namespaces: Sequence[str],
              audience: str | None, policies: Sequence[str], ttl: int) -> KubernetesRole:
    """A validated role. `root` may not be granted through a service account (a pod is not an operator).

    `audience` None means DEFAULT_AUDIENCE ("kinko"): every role checks `aud`.
    """
    from kinko.access.policy import ROOT, validate_name

    validate_role_name(name)
    accounts = _bindings("service_account_names", service_account_names, _SA_NAME)
    namespaces_ = _bindings("namespaces", namespaces, _NAMESPACE)
    if namespaces_ == ("*",) and accounts == ("*",):
        raise InvalidInput("a role must bind specific service accounts or namespaces, not '*' for both")
    if audience is None:
        audience = DEFAULT_AUDIENCE
    if not isinstance(audience, str) or not 0 < len(audience) <= 256:
        raise InvalidInput("audience must be 1-256 characters")
    if isinstance(policies, str) or not isinstance(policies, Sequence) or len(policies) > 64:
        raise InvalidInput("policies must be a list of at most 64 policy names")
    for policy in policies:
        validate_name(policy)
        if policy == ROOT:
            raise InvalidInput("a Kubernetes role cannot grant the root policy")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL:
        raise InvalidInput(f"ttl must be a whole number of seconds between 1 and {MAX_TTL}")
    return KubernetesRole(name, accounts, namespaces_, audience, tuple(sorted(set(policies))), ttl)


def make_config(*, issuer: str | None, jwks: str | Mapping[str, Any] | None,
                pem_keys: Sequence[str] = ()) -> KubernetesAuthConfig:
    """A validated config: every key parses and is an RSA (>= 2048 bits) or EC P-256 public key."""
    if issuer is not None and (not isinstance(issuer, str) or not 0 < len(issuer) <= 1024):
        raise InvalidInput("issuer must be 1-1024 characters")
    if isinstance(jwks, Mapping):
        jwks = json.dumps(jwks)
    if jwks is not None:
        try:
            jwks = json.dumps(json.loads(jwks), sort_keys=True)
        except (TypeError, ValueError, RecursionError):
            raise InvalidInput("jwks is not a JSON document (or is nested too deeply)") from None
    if isinstance(pem_keys, str) or not all(isinstance(p, str) for p in pem_keys):
        raise InvalidInput("pem_keys must be a list of PEM texts")
    config = KubernetesAuthConfig(issuer, jwks, tuple(p.strip() + "\n" for p in pem_keys))
    if not config.public_keys():
        raise InvalidInput("give at least one public key (jwks or pem_keys)")
    return config


@functools.lru_cache(maxsize=8)
def _parse_keys(jwks: str | None, pem_keys: tuple[str, ...]) -> tuple[VerificationKey, ...]:
    keys: list[VerificationKey] = []
    for number, pem in enumerate(pem_keys, 1):
        try:
            loaded = serialization.load_pem_public_key(pem.encode())
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise InvalidInput(f"pem_keys[{number}] is not a PEM public key") from None
        keys.append(VerificationKey(_usable(loaded, f"pem_keys[{number}]")))
    if jwks is not None:
        keys.extend(_jwks_keys(jwks))
    if len(keys) > MAX_KEYS:
        raise InvalidInput(f"at most {MAX_KEYS} public keys")
    return tuple(keys)


def _jwks_keys(jwks: str) -> list[VerificationKey]:
    import jwt  # lazy: PyJWT is only needed for Kubernetes logins
    doc = json.loads(jwks)
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise InvalidInput("jwks must be an object with a 'keys' list")
    keys = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise InvalidInput(f"jwks key {number} is not an object")
        if entry.get("use", "sig") != "sig":
            continue  # encryption keys never verify signatures
        if any(private in entry for private in ("d", "p", "q")):
            raise InvalidInput(f"jwks key {number} contains private key material; give public keys only")
        try:
            parsed = jwt.PyJWK(entry).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError, UnsupportedAlgorithm):
            raise InvalidInput(f"jwks key {number} is not a usable RSA or EC public key") from None
        kid, alg = entry.get("kid"), entry.get("alg")
        if alg is not None and alg not in ALGORITHMS:
            raise InvalidInput(f"jwks key {number}: algorithm {str(alg)[:20]!r} is not RS256 or ES256")
        keys.append(VerificationKey(_usable(parsed, f"jwks key {number}"), str(kid) if kid else None, alg))
    return keys


def _usable(key: object, where: str) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise InvalidInput(f"{where}: RSA keys must be at least 2048 bits")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise InvalidInput(f"{where}: EC keys must be on P-256 (ES256)")
        return key
    raise InvalidInput(f"{where}: only RSA (RS256) and EC P-256 (ES256) public keys are supported")


# -- verification -------------------------------------------------------------------------------------------
def verify_service_account_jwt(token: object, config: KubernetesAuthConfig, *, audience: str | None,
                               now: float, leeway: float = LEEWAY) -> ServiceAccount:
    """The service account a token proves, or PermissionDenied (for every kind of failure)."""
    import jwt  # lazy: PyJWT is only needed for Kubernetes logins
    try:
        claims = _verified_claims(token, config, audience)
        _check_times(claims, now, leeway)
        return _account(claims)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError, InvalidInput):
        raise PermissionDenied() from None


def _verified_claims(token: object, config: KubernetesAuthConfig, audience: str | None) -> dict[str, Any]:
    import jwt  # lazy: PyJWT is only needed for Kubernetes logins
    if not isinstance(token, str) or not 0 < len(token) <= MAX_JWT_CHARS or not token.isascii():
        raise ValueError("malformed token")
    header = jwt.get_unverified_header(token)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:  # never `none`, never HMAC (a public key used as an HMAC secret)
        raise ValueError("algorithm not allowed")
    wanted = rsa.RSAPublicKey if alg == "RS256" else ec.EllipticCurvePublicKey
    options: Any = {"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                               "verify_aud": audience is not None, "require": ["exp"]}
    for candidate in config.public_keys():
        if not isinstance(candidate.key, wanted) or candidate.alg not in (None, alg):
            continue
        if kid is not None and candidate.kid is not None and candidate.kid != kid:
            continue
        try:
            claims: dict[str, Any] = jwt.decode(token, candidate.key, algorithms=[alg], audience=audience,
                                                issuer=config.issuer, options=options)
        except jwt.InvalidSignatureError:
            continue  # another configured key may have signed it (key rotation)
        return claims
    raise ValueError("no configured key verifies the signature")


def _check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    def number(name: str) -> float | None:
        value = claims.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} is not a number")
        return float(value)

    exp, nbf, iat = number("exp"), number("nbf"), number("iat")
    if exp is None or now >= exp + leeway:
        raise ValueError("expired")
    if nbf is not None and now < nbf - leeway:
        raise ValueError("not yet valid")
    if iat is not None and iat > now + leeway:
        raise ValueError("issued in the future")


def _account(claims: Mapping[str, Any]) -> ServiceAccount:
    from_sub = None
    sub = claims.get("sub")
    if isinstance(sub, str) and (match := _SUB.fullmatch(sub)):
        from_sub = (match.group(1), match.group(2))
    from_k8s, uid = None, None
    k8s = claims.get("kubernetes.io")
    if isinstance(k8s, dict):
        account = k8s.get("serviceaccount")
        namespace = k8s.get("namespace")
        if isinstance(account, dict) and isinstance(namespace, str) and isinstance(account.get("name"), str):
            from_k8s = (namespace, account["name"])
            uid = account.get("uid") if isinstance(account.get("uid"), str) else None
    if from_sub is None and from_k8s is None:
        raise ValueError("no service-account identity in the token")
    if from_sub is not None and from_k8s is not None and from_sub != from_k8s:
        raise ValueError("sub and kubernetes.io disagree")
    namespace, name = from_k8s or from_sub  # type: ignore[misc]
    if not _NAMESPACE.fullmatch(namespace) or not _SA_NAME.fullmatch(name):
        raise ValueError("not a Kubernetes name")
    return ServiceAccount(namespace, name, uid)
