"""Kubernetes auth: SA JWT verification (RS256/ES256, every way to be wrong -> 403), roles, config, Vault login."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kinko.access.identity import make_config, verify_service_account_jwt
from kinko.core.model import Caller
from kinko.crypto.seal import SealType
from kinko.errors import InvalidInput, NotFound, PermissionDenied, Sealed
from kinko.vault import Vault, open_vault
from tests.conftest import T0, FixedClock, first_bad_line

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "kinko"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Issuer:
    """A fake cluster issuer: fresh RSA and EC keys, their JWKS/PEMs, and service-account JWTs signed with them."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> str:
        keys = []
        for kid, key in (("rsa-1", self.rsa), ("ec-1", self.ec)):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()["RS256" if kid == "rsa-1" else "ES256"]
                             .to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return json.dumps({"keys": keys})

    def pem(self, kind: str = "rsa") -> str:
        return _pem(self.rsa if kind == "rsa" else self.ec)

    @staticmethod
    def claims(namespace: str = "shop", name: str = "web", *, now: float = T0, aud: Any = AUDIENCE,
               iss: str = ISSUER, ttl: float = 3600, **extra: Any) -> dict[str, Any]:
        doc = {"iss": iss, "aud": aud, "sub": f"system:serviceaccount:{namespace}:{name}",
               "iat": int(now), "nbf": int(now), "exp": int(now + ttl),
               "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "u-1"}}}
        doc.update(extra)
        return {k: v for k, v in doc.items() if v is not None}

    def mint(self, claims: dict[str, Any] | None = None, *, alg: str = "RS256", kid: str | None = None) -> str:
        key = self.rsa if alg == "RS256" else self.ec
        headers = {"kid": kid} if kid else None
        return jwt.encode(claims or self.claims(), key, algorithm=alg, headers=headers)


def unsigned(claims: dict[str, Any], alg: str = "none", secret: bytes = b"") -> str:
    """A token built by hand: `alg: none` with an empty signature, or HS256 keyed with `secret`."""
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode())
    if alg == "none":
        return head + "."
    return head + "." + _b64(hmac.new(secret, head.encode(), hashlib.sha256).digest())


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def setup(tmp_path: Path, clock: FixedClock, issuer: Issuer) -> Iterator[tuple[Vault, Caller]]:
    vault = open_vault(tmp_path / "v.db", create=True, clock=clock)
    result = vault.init(seal=SealType.KEY_FILE, key_file=tmp_path / "k")
    vault.unseal(key_file=tmp_path / "k")
    vault.enable_audit(tmp_path / "audit.log")
    root = vault.authenticate(result.root_token)
    vault.write_policy(root, {"name": "web", "rules": [{"path": "shop/web/*", "capabilities": ["read"]}]})
    vault.configure_kubernetes_auth(root, issuer=ISSUER, jwks=issuer.jwks(), pem_keys=[issuer.pem("ec")])
    vault.write_kubernetes_role(root, "web", service_account_names=["web"], namespaces=["shop"], audience=AUDIENCE,
                                policies=["web"], ttl=600)
    yield vault, root
    vault.close()


# -- the verifier on its own -----------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_valid_tokens_name_their_service_account(issuer: Issuer, alg: str) -> None:
    config = make_config(issuer=ISSUER, jwks=issuer.jwks())
    account = verify_service_account_jwt(issuer.mint(alg=alg), config, audience=AUDIENCE, now=T0 + 10)
    assert (account.namespace, account.name, account.uid) == ("shop", "web", "u-1")


def test_pem_keys_verify_and_sub_alone_is_an_identity(issuer: Issuer) -> None:
    config = make_config(issuer=None, jwks=None, pem_keys=[issuer.pem("rsa"), issuer.pem("ec")])
    legacy = issuer.claims("batch", "cron", aud=None, **{"kubernetes.io": None})
    account = verify_service_account_jwt(issuer.mint(legacy, alg="ES256"), config, audience=None, now=T0)
    assert account.subject == "system:serviceaccount:batch:cron"


def test_leeway_allows_small_skew_only(issuer: Issuer) -> None:
    config = make_config(issuer=ISSUER, jwks=issuer.jwks())
    token = issuer.mint(issuer.claims(ttl=60))
    verify_service_account_jwt(token, config, audience=AUDIENCE, now=T0 + 80)  # 20 s past exp: skew
    with pytest.raises(PermissionDenied):
        verify_service_account_jwt(token, config, audience=AUDIENCE, now=T0 + 120)


def test_a_key_that_is_rotated_out_no_longer_verifies(issuer: Issuer) -> None:
    other = Issuer()
    token = issuer.mint(kid="rsa-1")
    with pytest.raises(PermissionDenied):
        verify_service_account_jwt(token, make_config(issuer=ISSUER, jwks=other.jwks()), audience=AUDIENCE, now=T0)
    both = make_config(issuer=ISSUER, jwks=None, pem_keys=[other.pem(), issuer.pem()])
    assert verify_service_account_jwt(token, both, audience=AUDIENCE, now=T0).name == "web"


# -- login through the Vault: every wrong token is the same 403, audited ------------------------------------------
def _bad_tokens(issuer: Issuer) -> dict[str, tuple[str, str]]:
    c = issuer.claims
    forger = Issuer()
    good = issuer.mint()
    head, _, sig = good.split(".")
    tampered_body = _b64(json.dumps(c("shop", "admin")).encode())
    return {
        "wrong namespace": (issuer.mint(c("other", "web")), "web"),
        "wrong service account": (issuer.mint(c("shop", "db")), "web"),
        "wrong audience": (issuer.mint(c(aud="vault")), "web"),
        "no audience": (issuer.mint(c(aud=None)), "web"),
        "wrong issuer": (issuer.mint(c(iss="https://evil.example")), "web"),
        "expired": (issuer.mint(c(now=T0 - 7200)), "web"),
        "not yet valid": (issuer.mint(c(nbf=int(T0 + 600))), "web"),
        "issued in the future": (issuer.mint(c(iat=int(T0 + 600))), "web"),
        "no exp": (issuer.mint(c(exp=None)), "web"),
        "forged signature (RS256)": (forger.mint(), "web"),
        "forged signature (ES256)": (forger.mint(alg="ES256"), "web"),
        "tampered payload": (f"{head}.{tampered_body}.{sig}", "web"),
        "alg none": (unsigned(c()), "web"),
        "HS256 keyed with the public key": (unsigned(c(), "HS256", issuer.pem().encode()), "web"),
        "sub and kubernetes.io disagree": (issuer.mint(c(sub="system:serviceaccount:shop:admin")), "web"),
        "no identity": (issuer.mint(c(sub=None, **{"kubernetes.io": None})), "web"),
        "unknown role": (good, "nope"),
        "garbage": ("not.a.jwt", "web"),
        "huge": ("a" * 20_000, "web"),
    }


_REASONS = {
    "wrong namespace": "wrong namespace", "wrong service account": "wrong service account",
    "wrong audience": "wrong audience", "no audience": "wrong audience", "wrong issuer": "wrong issuer",
    "expired": "expired", "not yet valid": "not yet valid", "issued in the future": "not yet valid",
    "no exp": "missing claim 'exp'", "forged signature (RS256)": "bad signature",
    "forged signature (ES256)": "bad signature", "tampered payload": "bad signature",
    "alg none": "algorithm not allowed", "HS256 keyed with the public key": "algorithm not allowed",
    "sub and kubernetes.io disagree": "sub and kubernetes.io disagree", "no identity": "no service-account identity",
    "unknown role": "unknown role", "garbage": "malformed token", "huge": "malformed token",
}


def test_every_bad_token_is_the_same_403_and_audited(setup: tuple[Vault, Caller], issuer: Issuer,
                                                     tmp_path: Path) -> None:
    vault, _ = setup
    for case, (token, role) in _bad_tokens(issuer).items():
        with pytest.raises(PermissionDenied) as caught:
            vault.login_kubernetes(role, token, remote_addr="10.0.0.9")
        assert caught.value.message == "permission denied", case
    records = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    denied = [r for r in records if r["operation"] == "auth.kubernetes.login"]
    assert len(denied) == len(_bad_tokens(issuer))
    # The client saw one uniform error; the audit record says why (review #9).
    assert dict(zip(_bad_tokens(issuer), (r["outcome"] for r in denied), strict=True)) == {
        case: f"denied: {reason}" for case, reason in _REASONS.items()}
    assert first_bad_line(tmp_path / "audit.log") is None  # the chain is intact
    vault.login_kubernetes("web", issuer.mint())  # the control: the unaltered token is accepted


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_login_mints_a_token_with_the_roles_policies_and_ttl(setup: tuple[Vault, Caller], issuer: Issuer,
                                                             alg: str, clock: FixedClock, tmp_path: Path) -> None:
    vault, root = setup
    vault.put(root, "shop/web/db", b"pw")
    vault.put(root, "shop/admin/db", b"pw2")
    login = vault.login_kubernetes("web", issuer.mint(alg=alg))
    assert login.policies == ("web",) and login.lease_duration == 600
    assert login.metadata["service_account_namespace"] == "shop" and login.metadata["role"] == "web"
    pod = vault.authenticate(login.token)
    assert vault.get(pod, "shop/web/db").value == b"pw"
    with pytest.raises(PermissionDenied):
        vault.get(pod, "shop/admin/db")
    clock.advance(601)
    with pytest.raises(PermissionDenied):
        vault.authenticate(login.token)
    log = (tmp_path / "audit.log").read_text()
    assert login.token not in log and "system:serviceaccount:shop:web" in log


def test_wildcard_namespace_and_changed_role(setup: tuple[Vault, Caller], issuer: Issuer) -> None:
    vault, root = setup
    vault.write_kubernetes_role(root, "any-ns", service_account_names=["web"], namespaces=["*"], audience=None,
                                policies=["web"], ttl=60)
    vault.login_kubernetes("any-ns", issuer.mint(issuer.claims("elsewhere", "web")))
    vault.write_kubernetes_role(root, "any-ns", service_account_names=["web"], namespaces=["shop"], audience=None,
                                policies=["web"], ttl=60)
    with pytest.raises(PermissionDenied):
        vault.login_kubernetes("any-ns", issuer.mint(issuer.claims("elsewhere", "web")))
    vault.delete_kubernetes_role(root, "any-ns")
    with pytest.raises(PermissionDenied):
        vault.login_kubernetes("any-ns", issuer.mint())


def test_sealed_vault_refuses_login(setup: tuple[Vault, Caller], issuer: Issuer) -> None:
    vault, root = setup
    vault.seal(root)
    with pytest.raises(Sealed):
        vault.login_kubernetes("web", issuer.mint())


def test_unconfigured_auth_denies(tmp_path: Path, clock: FixedClock, issuer: Issuer) -> None:
    vault = open_vault(tmp_path / "u.db", create=True, clock=clock)
    vault.init(seal=SealType.KEY_FILE, key_file=tmp_path / "uk")
    vault.unseal(key_file=tmp_path / "uk")
    try:
        with pytest.raises(PermissionDenied):
            vault.login_kubernetes("web", issuer.mint())
        with pytest.raises(NotFound):
            vault.read_kubernetes_auth_config(Caller.local_operator())
    finally:
        vault.close()


# -- administration --------------------------------------------------------------------------------------------
def test_role_crud_and_authorization(setup: tuple[Vault, Caller]) -> None:
    vault, root = setup
    assert vault.list_kubernetes_roles(root) == ["web"]
    role = vault.read_kubernetes_role(root, "web")
    assert role.to_dict() == {"name": "web", "service_account_names": ["web"], "namespaces": ["shop"],
                              "audience": AUDIENCE, "policies": ["web"], "ttl": 600}
    assert vault.read_kubernetes_auth_config(root).issuer == ISSUER
    token, _ = vault.create_token(root, policies=["web"])
    app = vault.authenticate(token)
    for action in (lambda: vault.list_kubernetes_roles(app), lambda: vault.read_kubernetes_role(app, "web"),
                   lambda: vault.delete_kubernetes_role(app, "web"),
                   lambda: vault.configure_kubernetes_auth(app, issuer=None, jwks=None,
                                                           pem_keys=[Issuer().pem()]),
                   lambda: vault.write_kubernetes_role(app, "x", service_account_names=["a"], namespaces=["b"],
                                                       audience=None, policies=["web"], ttl=60)):
        with pytest.raises(PermissionDenied):
            action()
    vault.delete_kubernetes_role(root, "web")
    with pytest.raises(NotFound):
        vault.read_kubernetes_role(root, "web")
    with pytest.raises(NotFound):
        vault.delete_kubernetes_role(root, "web")


@pytest.mark.parametrize("changes", [
    {"policies": ["root"]}, {"service_account_names": []}, {"namespaces": "shop"}, {"namespaces": ["Bad_NS"]},
    {"ttl": 0}, {"ttl": True}, {"service_account_names": ["*"], "namespaces": ["*"]}, {"policies": ["no such!"]},
])
def test_bad_roles_are_refused(setup: tuple[Vault, Caller], changes: dict[str, Any]) -> None:
    vault, root = setup
    args: dict[str, Any] = {"service_account_names": ["web"], "namespaces": ["shop"], "audience": None,
                            "policies": ["web"], "ttl": 60, **changes}
    with pytest.raises(InvalidInput):
        vault.write_kubernetes_role(root, "bad", **args)
    with pytest.raises(InvalidInput):
        vault.write_kubernetes_role(root, "../x", **{**args, **{"policies": ["web"], "ttl": 60}})


def test_bad_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    private_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(Issuer().rsa))
    for kwargs in ({"jwks": None, "pem_keys": []}, {"jwks": "{not json", "pem_keys": []},
                   {"jwks": None, "pem_keys": ["-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"]},
                   {"jwks": None, "pem_keys": [_pem(small)]}, {"jwks": None, "pem_keys": [_pem(p384)]},
                   {"jwks": json.dumps({"keys": [private_jwk]}), "pem_keys": []},
                   {"jwks": json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), "pem_keys": []},
                   {"jwks": "[" * 100_000 + "]" * 100_000, "pem_keys": []}):
        with pytest.raises(InvalidInput) as caught:
            make_config(issuer=ISSUER, **kwargs)
        assert "c2VjcmV0" not in caught.value.message
