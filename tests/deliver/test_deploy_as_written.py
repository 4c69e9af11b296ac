"""deploy/kinko-server.yaml as written: two servers started with the StatefulSet's own arguments, environment and
mounted files (the database URL with its password in the `kinko-config` file, mode 0440 as the kubelet makes it),
on a real PostgreSQL, then `kinko operator init` once and `unseal` on each pod exactly as docs/deploy.md says.
Only what a cluster provides is replaced: paths under /etc/kinko move to a temp dir, the pod's DNS name (its
KINKO_ADDR) becomes the address the server bound on 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from kinko.client import RemoteVault
from tests.api.conftest import KINKO, Server, start_server, stop_server
from tests.pg import PgCluster, database_of

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kinko-server.yaml"


def _container() -> dict[str, Any]:
    (server,) = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["kind"] == "StatefulSet"]
    (container,) = server["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _tls(directory: Path) -> None:
    """What cert-manager puts in kinko-tls: tls.crt, tls.key and ca.crt (here one self-signed CA certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kinko.kinko.svc")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("kinko.kinko.svc"), x509.DNSName("*.kinko-peers.kinko.svc"),
             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(names), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "tls.crt").write_bytes(pem)
    (directory / "ca.crt").write_bytes(pem)
    (directory / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))


def _pod(name: str, root: Path, config: Path, tls: Path) -> tuple[list[str], dict[str, str]]:
    """The container's args and env for pod `name`, /etc/kinko/{config,tls} mapped to the given directories."""
    container = _container()
    moved = {"/etc/kinko/config": str(config), "/etc/kinko/tls": str(tls)}

    def local(value: str) -> str:
        for where, here in moved.items():
            value = value.replace(where, here)
        return value

    env = {"POD_NAME": name, "HOME": str(root / name)}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = local(re.sub(r"\$\(POD_NAME\)", name, item["value"]))
    assert container["args"][0] == "server"
    return [local(a) for a in container["args"][1:]], env


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KINKO, *args], input=stdin, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_two_servers_as_the_manifest_starts_them_init_once_unseal_each(pg_cluster: PgCluster,
                                                                       tmp_path: Path) -> None:
    url = pg_cluster.url(database_of(pg_cluster.create_database("deploy")), with_passfile=False)
    with_password = url.replace("postgresql://kinko@", f"postgresql://kinko:{pg_cluster.password}@")
    config, tls = tmp_path / "config", tmp_path / "tls"
    config.mkdir()
    tls.mkdir()
    (config / "server.yaml").write_text(f"storage: {with_password}\n")
    _tls(tls)
    for file in [*config.iterdir(), *tls.iterdir()]:
        file.chmod(0o440)  # a Secret volume with defaultMode 0400 and fsGroup: group read added
    servers: list[Server] = []
    envs: list[dict[str, str]] = []
    try:
        for name in ("kinko-0", "kinko-1"):
            args, env = _pod(name, tmp_path, config, tls)
            (tmp_path / name).mkdir()
            assert env["KINKO_ADDR"] == f"https://{name}.kinko-peers.kinko.svc:8200"
            servers.append(start_server(args, tmp_path / name, env=env, expect_token=False))
            env["KINKO_ADDR"] = servers[-1].addr  # the pod's name, as resolved inside the cluster
            envs.append(env)
        ca = str(tls / "ca.crt")
        verify = ssl.create_default_context(cafile=ca)

        def ready(index: int) -> bool:  # the readinessProbe
            return httpx.get(servers[index].addr + "/v1/sys/health", verify=verify, timeout=5).status_code == 200

        assert not ready(0) and not ready(1)
        init = _run(envs[0], "operator", "init", "-o", "json")
        assert init.returncode == 0, init.stderr
        doc = json.loads(init.stdout)
        shares, root = doc["unseal_shares"], doc["root_token"]
        for index in (0, 1):
            assert not ready(index)
            unseal = _run(envs[index], "operator", "unseal", stdin="\n".join(shares[:doc["threshold"]]) + "\n")
            assert unseal.returncode == 0, unseal.stderr
            assert ready(index)
        both = f"{servers[0].addr},{servers[1].addr}"
        session = RemoteVault.connect(both, root, ca_file=ca)
        session.put("deploy/check", b"as-written")
        session.close()
        session = RemoteVault.connect(servers[1].addr, root, ca_file=ca)
        assert session.get("deploy/check").value == b"as-written"
        session.close()
        for srv, name in zip(servers, ("kinko-0", "kinko-1"), strict=True):
            log = srv.stderr.read_text()
            assert "listening on https://" in log and pg_cluster.password not in log
            assert not (tmp_path / name / ".kinko").exists()  # the root filesystem is read-only there
    finally:
        for srv in servers:
            stop_server(srv.proc)


def test_the_manifest_listens_where_the_services_point() -> None:
    env = {e["name"]: e.get("value") for e in _container()["env"]}
    assert env["KINKO_LISTEN"] == "0.0.0.0:8200" and _container()["ports"][0]["containerPort"] == 8200
