"""Builds the scan benchmark's image: a multi-layer docker-archive of realistic filler with planted secrets.

Used by bench/scan.py. Secrets are generated at run time, so no key-shaped literal lives in the repository.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import random
import string
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scan.imagebuild import H, assemble_docker_archive, make_config  # noqa: E402

MiB = 1 << 20


@dataclass
class Planted:
    kind: str
    paths: set[str]  # any finding at one of these paths counts as finding it
    layer: int | None
    status: str  # "present" / "deleted" / "n/a"
    value: str = field(repr=False)


# -- secret material (generated at run time: no key-shaped literal lives in this file) -------------------------


def _crc32_token(rng: random.Random, prefix: str) -> str:
    """A GitHub/npm-format token: 30 random base62 characters and the base62 CRC32 tail real tokens carry."""
    import zlib

    from kinko.scan.detect.checksums import base62

    body = _rand(rng, string.ascii_letters + string.digits, 30)
    return prefix + body + base62(zlib.crc32(body.encode()), 6).decode()


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def make_secrets(rng: random.Random) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    alnum = string.ascii_letters + string.digits
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(b'{"sub":"svc-billing","role":"admin","iat":1767225600}').rstrip(b"=").decode()
    return {
        "github": _crc32_token(rng, "ghp_"),
        "stripe": "sk_live_" + _rand(rng, alnum, 32),
        "postgres": f"postgres://billing:{_rand(rng, alnum, 18)}@db.prod.internal:5432/billing",
        "slack": f"https://hooks.slack.com/services/T{_rand(rng, string.ascii_uppercase + string.digits, 8)}"
        f"/B{_rand(rng, string.ascii_uppercase + string.digits, 8)}/{_rand(rng, alnum, 24)}",
        "jwt": f"{header}.{claims}.{_rand(rng, alnum + '-_', 43)}",
        "npm": _crc32_token(rng, "npm_"),
        "aws_id": "AK" + "IA" + _rand(rng, string.ascii_uppercase + "234567", 16),
        "aws_secret": _rand(rng, alnum + "/+", 40),
        "openai": "sk-" + _rand(rng, alnum, 20) + "T3Blbk" + "FJ" + _rand(rng, alnum, 20),
        "pem": pem.decode(),
        "gitlab": "glpat-" + _rand(rng, alnum, 20),
        "anthropic": "sk-ant-api03-" + _rand(rng, alnum + "-_", 93) + "AA",
        "sendgrid": "SG." + _rand(rng, alnum, 22) + "." + _rand(rng, alnum, 43),
    }


# -- filler ----------------------------------------------------------------------------------------------------


class Filler:
    """Pools of realistic lines (code, logs, JSON, YAML) incl. near-misses, sampled fast into files."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = ["user", "order", "account", "config", "value", "items", "result", "client", "request", "cache"]
        hexd = "0123456789abcdef"
        self.code = [
            f"def {rng.choice(words)}_{i}(self, {rng.choice(words)}: int) -> dict:"
            if i % 7 == 0
            else f"    {rng.choice(words)} = self.{rng.choice(words)}.get('{rng.choice(words)}', {i})"
            if i % 7 < 4
            else "    password = os.environ.get('DB_PASSWORD')  # read at run time"
            if i % 50 == 1
            else "    token = settings.API_TOKEN or None"
            if i % 50 == 2
            else f"    # checksum sha256:{_rand(rng, hexd, 64)}"
            if i % 7 == 4
            else f"    return {{'id': '{_rand(rng, hexd, 8)}-{_rand(rng, hexd, 4)}-4{_rand(rng, hexd, 3)}', 'n': {i}}}"
            for i in range(4000)
        ]
        self.logs = [
            f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z INFO "
            f'10.{i % 256}.{(i * 3) % 256}.{(i * 7) % 256} "GET /api/v1/{rng.choice(words)}/{i} HTTP/1.1" 200 '
            f"{rng.randint(100, 99999)} req_id={_rand(rng, hexd, 32)}"
            for i in range(4000)
        ]
        self.json = [
            json.dumps(
                {
                    "id": i,
                    "name": rng.choice(words),
                    "hash": _rand(rng, hexd, 40),
                    "enabled": i % 2 == 0,
                    "password": "changeme" if i % 97 == 0 else None,
                }
            )
            for i in range(2000)
        ]
        self.yaml = [
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata:",
            "  name: web",
            "spec:",
            "  replicas: 3",
            "  template:",
            "    spec:",
            "      containers:",
            "      - name: web",
            "        image: registry.local/web:1.2.3",
            "        env:",
            "        - name: DB_PASSWORD",
            "          valueFrom: {secretKeyRef: {name: db, key: password}}",
        ]

    def text(self, pool: list[str], size: int) -> bytes:
        n = max(1, size // 70)
        return ("\n".join(self.rng.choices(pool, k=n)) + "\n").encode()

    def binary(self, size: int) -> bytes:
        return self.rng.randbytes(size)


class LayerWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed in close()
        self.size = 0

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 1_700_000_000
        self.tar.addfile(info, io.BytesIO(data))
        self.size += len(data)

    def whiteout(self, name: str) -> None:
        parent, base = os.path.split(name)
        self.add(os.path.join(parent, ".wh." + base), b"")

    def close(self) -> Path:
        self.tar.close()
        return self.path


def _fill(w: LayerWriter, f: Filler, prefix: str, budget: int, kind: str, avg: int) -> list[str]:
    names = []
    i = 0
    while w.size < budget:
        size = max(256, int(f.rng.expovariate(1 / avg)))
        name = (
            f"{prefix}/{kind}{i:05d}"
            + {"code": ".py", "log": ".log", "json": ".json", "bin": ".so", "yaml": ".yaml"}[kind]
        )
        pool = {"code": f.code, "log": f.logs, "json": f.json, "yaml": f.yaml}.get(kind)
        w.add(name, f.binary(size) if pool is None else f.text(pool, size))
        names.append(name)
        i += 1
    return names


def build_image(out_dir: Path, size_mb: int, seed: int = 7) -> tuple[Path, list[Planted]]:
    """The benchmark image: 8 layers, ~size_mb MiB, 12 planted secrets; returns (archive, planted)."""
    rng = random.Random(seed)
    s = make_secrets(rng)
    f = Filler(rng)
    total = int(size_mb * MiB / 0.85)  # the layer budgets below add up to 85% of `total`
    layers: list[Path] = []
    planted: list[Planted] = []

    def layer(i: int) -> LayerWriter:
        return LayerWriter(out_dir / f"layer{i}.tar")

    w = layer(0)  # base image: libraries, docs, a CI token left in /etc
    w.add("etc/ci/github.env", f"# ci\nGITHUB_TOKEN={s['github']}\n".encode())
    planted.append(Planted("github-pat (base layer)", {"etc/ci/github.env"}, 0, "present", s["github"]))
    _fill(w, f, "usr/lib/x86_64-linux-gnu", int(total * 0.17), "bin", 400_000)
    _fill(w, f, "usr/share/doc", int(total * 0.25), "log", 20_000)
    layers.append(w.close())

    w = layer(1)  # pip install: site-packages
    sp = "usr/lib/python3.11/site-packages"
    w.add(f"{sp}/payments_client/config.py", f"STRIPE_KEY = '{s['stripe']}'\n".encode())
    planted.append(
        Planted("stripe key in site-packages", {f"{sp}/payments_client/config.py"}, 1, "present", s["stripe"])
    )
    _fill(w, f, sp, int(total * 0.15), "code", 12_000)
    layers.append(w.close())

    w = layer(2)  # COPY app
    w.add("app/settings.py", f"import os\n\nDATABASE_URL = '{s['postgres']}'\nDEBUG = False\n".encode())
    w.add("app/config/notify.json", json.dumps({"slack": {"webhook": s["slack"]}}, indent=2).encode())
    w.add("app/config/auth.json", json.dumps({"service_token": s["jwt"]}, indent=2).encode())
    w.add("tmp/build/.npmrc", f"//registry.npmjs.org/:_authToken={s['npm']}\n".encode())
    planted += [
        Planted("postgres url", {"app/settings.py"}, 2, "present", s["postgres"]),
        Planted("slack webhook", {"app/config/notify.json"}, 2, "present", s["slack"]),
        Planted("jwt", {"app/config/auth.json"}, 2, "present", s["jwt"]),
        Planted("npm token (opaque dir)", {"tmp/build/.npmrc"}, 2, "deleted", s["npm"]),
    ]
    _fill(w, f, "app/src", int(total * 0.05), "code", 8_000)
    _fill(w, f, "app/data", int(total * 0.08), "json", 30_000)
    _fill(w, f, "tmp/build", int(total * 0.11), "bin", 200_000)
    layers.append(w.close())

    w = layer(3)  # RUN the app once: logs, one rotated and gzip'd with an AWS key pair in it
    leak = f"2026-11-02T10:00:00Z DEBUG boto3 aws_access_key_id={s['aws_id']} aws_secret_access_key={s['aws_secret']}\n"
    w.add("var/log/app/app.log.1.gz", gzip.compress(f.text(f.logs, 300_000) + leak.encode() + f.text(f.logs, 200_000)))
    planted.append(Planted("aws key pair in gzip'd log", {"var/log/app/app.log.1.gz"}, 3, "present", s["aws_id"]))
    logs = _fill(w, f, "var/log/app", int(total * 0.12), "log", 500_000)
    layers.append(w.close())

    w = layer(4)  # COPY data: binary blobs, one with an OpenAI key inside
    blob = f.binary(300_000) + b"\x00api_key\x00" + s["openai"].encode() + b"\x00" + f.binary(200_000)
    w.add("opt/data/model.bin", blob)
    planted.append(Planted("openai key in binary", {"opt/data/model.bin"}, 4, "present", s["openai"]))
    _fill(w, f, "opt/data", int(total * 0.2), "bin", 2_000_000)
    layers.append(w.close())

    w = layer(5)  # COPY id_rsa /root/.ssh/id_rsa
    w.add("root/.ssh/id_rsa", s["pem"].encode())
    planted.append(Planted("pem key (whiteout)", {"root/.ssh/id_rsa"}, 5, "deleted", s["pem"].splitlines()[1]))
    layers.append(w.close())

    w = layer(6)  # RUN rm -f /root/.ssh/id_rsa && rm -rf /tmp/build && rotate logs
    w.whiteout("root/.ssh/id_rsa")
    w.add("tmp/build/.wh..wh..opq", b"")
    for name in logs[:3]:
        w.whiteout(name)
    layers.append(w.close())

    w = layer(7)  # COPY deploy: manifests incl. a Secret (base64 data), and a .env
    secret_yaml = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gitlab\ntype: Opaque\ndata:\n"
        f"  token: {base64.b64encode(s['gitlab'].encode()).decode()}\n"
    )
    w.add("deploy/k8s/gitlab-secret.yaml", secret_yaml.encode())
    w.add("app/.env.production", f"LOG_LEVEL=info\nANTHROPIC_API_KEY={s['anthropic']}\n".encode())
    planted += [
        Planted("gitlab pat in k8s Secret base64", {"deploy/k8s/gitlab-secret.yaml"}, 7, "present", s["gitlab"]),
        Planted("anthropic key in .env", {"app/.env.production"}, 7, "present", s["anthropic"]),
    ]
    _fill(w, f, "deploy/k8s", int(total * 0.02), "yaml", 4_000)
    layers.append(w.close())

    history = [
        H("/bin/sh -c #(nop) ADD file:4b1c2a in / "),
        H('/bin/sh -c #(nop)  CMD ["bash"]', empty=True),  # where Trivy's heuristic says the base image ends
        H("RUN pip install -r requirements.txt # buildkit"),
        H("COPY . /app # buildkit"),
        H("RUN python /app/warmup.py # buildkit"),
        H("COPY data /opt/data # buildkit"),
        H("COPY id_rsa /root/.ssh/id_rsa # buildkit"),
        H("RUN rm -f /root/.ssh/id_rsa && rm -rf /tmp/build # buildkit"),
        H(f"ENV SENDGRID_API_KEY={s['sendgrid']}", empty=True),
        H("COPY deploy /deploy # buildkit"),
        H('CMD ["python", "/app/main.py"]', empty=True),
    ]
    planted.append(
        Planted(
            "sendgrid key in ENV (config)",
            {"config:Env[1]", "config:history[8].created_by"},
            None,
            "n/a",
            s["sendgrid"],
        )
    )
    diff_ids = [sha256_file(p) for p in layers]
    config = make_config(
        diff_ids, history, env=["PATH=/usr/local/bin:/usr/bin:/bin", f"SENDGRID_API_KEY={s['sendgrid']}"]
    )
    archive = assemble_docker_archive(out_dir / "image.tar", layers, config, form="legacy", tag="bench:latest")
    for p in layers:
        p.unlink()
    return archive, planted


def sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 * MiB):
            h.update(chunk)
    return "sha256:" + h.hexdigest()
