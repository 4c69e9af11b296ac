"""Fixtures: a test CA and server certificate, a real `kinko server --dev` over TLS, and Key Vault SDK clients."""

from __future__ import annotations

import datetime
import gc
import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.api.conftest import Server, start_server, stop_server


class KinkoCredential:
    """The two-line TokenCredential of docs/compat.md: a kinko token is the bearer token Key Vault asks for."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, 2**31 - 1)


class AsyncKinkoCredential(KinkoCredential):
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        return AccessToken(self.token, 2**31 - 1)

    async def close(self) -> None:
        return None


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_tls(where: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signed for 127.0.0.1/localhost: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("kinko test CA")).issuer_name(_name("kinko test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    sans = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    leaf = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(sans, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = where / "ca.pem", where / "cert.pem", where / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class KeyVault:
    server: Server
    ca: Path
    audit: Path
    #: closed before the server stops: an idle TLS keep-alive connection holds a graceful stop for its full 10 s
    clients: list[SecretClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.addr

    @property
    def token(self) -> str:
        return self.server.token

    def client(self, token: str | None = None, **options: Any) -> SecretClient:
        client = SecretClient(self.url, KinkoCredential(token or self.token), verify_challenge_resource=False,
                              connection_verify=str(self.ca), **options)
        self.clients.append(client)
        return client

    def aio_client(self, token: str | None = None, **options: Any) -> AsyncSecretClient:
        return AsyncSecretClient(self.url, AsyncKinkoCredential(token or self.token),  # type: ignore[arg-type]
                                 verify_challenge_resource=False, connection_verify=str(self.ca), **options)

    def http(self) -> httpx.Client:
        """A plain HTTPS client trusting the test CA (for raw requests and the native /v1 API)."""
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(self.ca)), timeout=30)


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def keyvault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyVault]:
    work = tmp_path_factory.mktemp("keyvault")
    ca, cert, key = make_tls(work)
    audit = work / "audit.log"
    args = ["--dev", "--tls-cert", str(cert), "--tls-key", str(key), "--audit-file", str(audit)]
    server = start_server(args, work, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    keyvault = KeyVault(server, ca, audit)
    yield keyvault
    gc.collect()  # responses kept by the SDK's exceptions hold their connections until collected
    for client in keyvault.clients:
        client.close()
    stop_server(server.proc)
