"""Example Secret-based apps and YAML helpers shared by the `kinko k8s` tests."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from tests.core.test_types import _cert, _pem_key

CANARY = "CANARY-pw-7f3a9c"
CANARY_USER = "CANARY-user-51de"


def tls_pair() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _cert(key), _pem_key(key)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def write_app(root: Path) -> Path:
    """A directory with an Opaque Secret, a TLS Secret, a ConfigMap and a Deployment using all three ways."""
    root.mkdir(parents=True, exist_ok=True)
    cert, key = tls_pair()
    (root / "secrets.yaml").write_text(
        "# credentials\n"
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\ntype: Opaque\n"
        f"data:\n  password: {b64(CANARY)}\nstringData:\n  username: {CANARY_USER}\n"
        "---\n"
        "apiVersion: v1\nkind: Secret\nmetadata: {name: web-tls, namespace: shop}\ntype: kubernetes.io/tls\n"
        f"data:\n  tls.crt: {b64(cert)}\n  tls.key: {b64(key)}\n"
    )
    (root / "apps").mkdir(exist_ok=True)
    (root / "apps" / "web.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: shop}\ndata: {mode: fast}  # keep me\n"
        "---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx\n"
        "        env:\n        - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}\n"
        "        - {name: PLAIN, value: hello}\n"
        "        envFrom:\n        - {secretRef: {name: db}, prefix: DB_}\n"
        "        volumeMounts:\n        - {name: certs, mountPath: /etc/tls}\n"
        "      volumes:\n      - {name: certs, secret: {secretName: web-tls, defaultMode: 0644}}\n"
    )
    return root


def spc_objects(spc: dict[str, Any]) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = yaml.safe_load(spc["spec"]["parameters"]["objects"])
    return objects


def load_all(text: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(text) if d is not None]
