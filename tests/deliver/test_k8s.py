"""kinko.deliver.k8s*: SecretProviderClass/Secret rendering, import planning on real files, deploy/ manifests."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from kinko.core.model import Caller
from kinko.deliver.k8s import (
    CSI_DRIVER,
    SPC_API_VERSION,
    CsiObject,
    parse_object_ref,
    render_secret,
    render_spc,
    volume_snippet,
)
from kinko.deliver.k8s_import import SPC_FILE, plan_import, store_secrets, write_outputs
from kinko.deliver.k8s_patch import MOVED_ANNOTATION
from kinko.errors import AlreadyExists, InvalidInput, InvalidSecretType, NotFound, UsageError
from kinko.scan.detect import default_detector
from kinko.scan.interface import ScanResult, Severity
from kinko.scan.sources.dockerfile import DockerfileSource
from kinko.scan.sources.kubernetes import KubernetesSource
from tests.conftest import FixedClock, new_keyfile_vault
from tests.core.test_types import _cert, _pem_key

CANARY = "CANARY-pw-7f3a9c"
CANARY_USER = "CANARY-user-51de"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALLOWED_OBJECT_KEYS = {"objectName", "secretPath", "secretKey", "version", "filePermission", "encoding"}


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


# ---------------------------------------------------------------------------------------------- render


def test_parse_object_ref_defaults_and_errors() -> None:
    assert parse_object_ref("team/app/db#password") == CsiObject("password", "team/app/db", "password")
    assert parse_object_ref("team/app/api") == CsiObject("api", "team/app/api")
    assert parse_object_ref("team/app/db#user=db-user.txt").object_name == "db-user.txt"
    for bad in ("team/app/db#", "team/app/db=", "team/../db", "team/app/db=../escape", "team/app/db=/abs"):
        with pytest.raises((UsageError, InvalidInput)):
            parse_object_ref(bad)


def test_render_spc_shape_and_objects_as_the_provider_reads_them() -> None:
    objects = [parse_object_ref("team/app/db#password"), parse_object_ref("team/app/api=api.txt")]
    spc = render_spc("app-secrets", "shop", objects, role="shop-app", address="https://kinko:8200", audience="kinko")
    assert spc["apiVersion"] == SPC_API_VERSION and spc["kind"] == "SecretProviderClass"
    assert spc["spec"]["provider"] == "kinko"
    params = spc["spec"]["parameters"]
    assert {k: params[k] for k in ("kinkoAddress", "roleName", "audience")} == {
        "kinkoAddress": "https://kinko:8200", "roleName": "shop-app", "audience": "kinko"}
    parsed = spc_objects(spc)
    assert all(set(o) <= ALLOWED_OBJECT_KEYS for o in parsed)  # the provider rejects unknown keys
    assert parsed[0] == {"objectName": "password", "secretPath": "team/app/db", "secretKey": "password",
                         "filePermission": 0o400}  # YAML 0400 -> 256, as yaml.v3 and PyYAML both read it
    assert "filePermission: 0400" in params["objects"]
    assert parsed[1]["objectName"] == "api.txt" and "secretKey" not in parsed[1]
    # The whole SPC survives a YAML round trip unchanged (the objects string stays a string).
    from kinko.deliver.k8s import dump_yaml
    assert load_all(dump_yaml([spc])) == [spc]


def test_render_spc_rejects_duplicates_and_bad_names() -> None:
    dup = [parse_object_ref("a/b#k"), parse_object_ref("a/c#k")]
    with pytest.raises(UsageError, match="used twice"):
        render_spc("x", "ns", dup, role="r", address="https://k")
    with pytest.raises(UsageError, match="subdomain"):
        render_spc("Bad_Name", "ns", [parse_object_ref("a/b")], role="r", address="https://k")
    with pytest.raises(UsageError):
        render_spc("x", "ns", [], role="r", address="https://k")


def test_volume_snippet_is_read_only_csi() -> None:
    snippet = volume_snippet("app-secrets")
    volume = snippet["volumes"][0]
    assert volume["csi"] == {"driver": CSI_DRIVER, "readOnly": True,
                             "volumeAttributes": {"secretProviderClass": "app-secrets"}}
    assert snippet["volumeMounts"][0]["readOnly"] is True and snippet["volumeMounts"][0]["name"] == volume["name"]


def test_render_secret_typed_and_validated() -> None:
    doc = render_secret("db", "shop", {"password": CANARY.encode()}, secret_type="Opaque", single_key="x")
    assert doc["type"] == "Opaque" and base64.b64decode(doc["data"]["password"]) == CANARY.encode()
    single = render_secret("api", "shop", b"tok", single_key="api-key")
    assert single["data"] == {"api-key": b64("tok")}
    with pytest.raises(InvalidSecretType, match=r"tls\.key"):
        render_secret("t", "shop", {"tls.crt": b"x"}, secret_type="kubernetes.io/tls", single_key="x")
    with pytest.raises(InvalidInput, match="not one of"):
        render_secret("t", "shop", b"v", secret_type="text", single_key="x")


# ---------------------------------------------------------------------------------------------- import plan


def test_import_plan_round_trip_on_a_directory(tmp_path: Path) -> None:
    src = write_app(tmp_path / "src")
    plan = plan_import(src, "team/app", role="shop-app", address="https://kinko:8200")
    assert [(s.kinko_path, s.content_type, s.keys) for s in plan.secrets] == [
        ("team/app/shop/db", "Opaque", ("password", "username")),
        ("team/app/shop/web-tls", "kubernetes.io/tls", ("tls.crt", "tls.key")),
    ]
    diff = plan.diff()
    for shown in (diff, json.dumps(plan.summary()), repr(plan)):
        assert CANARY not in shown and CANARY_USER not in shown and b64(CANARY) not in shown
        assert "PRIVATE KEY" not in shown
    assert "-kind: Secret" in diff and "+        csi:" in diff and "secretKeyRef" in diff
    assert f"+++ b/{SPC_FILE}" in diff
    files = {c.rel: c for c in plan.files}
    assert files["secrets.yaml"].new_text is None  # only Secrets: the file goes away
    web = files["apps/web.yaml"].new_text
    assert web is not None and web.startswith(  # the ConfigMap document is kept byte for byte
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: shop}\ndata: {mode: fast}  # keep me\n")
    deployment = load_all(web)[1]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["env"] == [{"name": "PLAIN", "value": "hello"}] and "envFrom" not in container
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["certs"]["csi"]["volumeAttributes"] == {"secretProviderClass": "web-tls-kinko"}
    assert all(v["csi"]["driver"] == CSI_DRIVER and v["csi"]["readOnly"] is True for v in volumes.values())
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["certs"] == {"name": "certs", "mountPath": "/etc/tls", "readOnly": True}
    db_mount = next(m for m in mounts.values() if m["mountPath"] == "/var/run/secrets/kinko/db")
    assert volumes[db_mount["name"]]["csi"]["volumeAttributes"]["secretProviderClass"] == "db-kinko"
    moved = deployment["spec"]["template"]["metadata"]["annotations"][MOVED_ANNOTATION]
    assert "DB_PASSWORD -> /var/run/secrets/kinko/db/password" in moved
    assert "DB_username -> /var/run/secrets/kinko/db/username" in moved
    spcs = {s["metadata"]["name"]: s for s in load_all(files[SPC_FILE].new_text or "")}
    assert set(spcs) == {"db-kinko", "web-tls-kinko"}
    tls_objects = spc_objects(spcs["web-tls-kinko"])
    assert {(o["objectName"], o["secretPath"], o["secretKey"], o["filePermission"]) for o in tls_objects} == {
        ("tls.crt", "team/app/shop/web-tls", "tls.crt", 0o400), ("tls.key", "team/app/shop/web-tls", "tls.key", 0o400)}
    assert all(s["metadata"]["namespace"] == "shop" for s in spcs.values())
    every_output = "".join(c.new_text or "" for c in plan.files)
    assert "kind: Secret\n" not in every_output and CANARY not in every_output


def test_string_data_wins_and_json_lists(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api"},
         "data": {"token": b64("from-data"), "other": b64("o")}, "stringData": {"token": "from-stringdata"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}},
    ]}
    (tmp_path / "list.json").write_text(json.dumps(doc))
    plan = plan_import(tmp_path / "list.json", "team", role="r", address="https://k")
    (secret,) = plan.secrets
    assert secret.kinko_path == "team/default/api" and secret.data == {"token": b"from-stringdata", "other": b"o"}
    new = json.loads(plan.files[0].new_text or "")
    assert [i["kind"] for i in new["items"]] == ["Service"]


def test_items_volume_gets_its_own_spc(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        f"kind: Secret\napiVersion: v1\nmetadata: {{name: s}}\ndata: {{k: {b64('v')}}}\n---\n"
        "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n"
        "  volumes: [{name: vol, secret: {secretName: s, items: [{key: k, path: conf/key.txt}]}}]\n")
    plan = plan_import(tmp_path, "t", role="r", address="https://k")
    spcs = {s["metadata"]["name"]: s for s in load_all(plan.files[-1].new_text or "")}
    assert spc_objects(spcs["p-vol-kinko"]) == [
        {"objectName": "conf/key.txt", "secretPath": "t/default/s", "secretKey": "k", "filePermission": 0o400}]
    pod = load_all(plan.files[0].new_text or "")[0]
    assert pod["spec"]["volumes"][0]["csi"]["volumeAttributes"]["secretProviderClass"] == "p-vol-kinko"


def test_image_pull_secrets_are_left_alone(tmp_path: Path) -> None:
    cfg = b64(json.dumps({"auths": {"r.example": {"auth": b64("u:p")}}}))
    (tmp_path / "a.yaml").write_text(
        "kind: Secret\napiVersion: v1\nmetadata: {name: regcred}\ntype: kubernetes.io/dockerconfigjson\n"
        f"data: {{.dockerconfigjson: {cfg}}}\n---\n"
        "kind: Pod\napiVersion: v1\nmetadata: {name: p}\n"
        "spec: {imagePullSecrets: [{name: regcred}], containers: [{name: c, image: i}]}\n")
    plan = plan_import(tmp_path, "t", role="r", address="https://k")
    assert plan.secrets == [] and any("imagePullSecrets" in w for w in plan.warnings)
    assert plan.files[0].new_text == (tmp_path / "a.yaml").read_text()
    assert cfg not in plan.diff()


# ---------------------------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(("body", "error", "needles"), [
    ("metadata: {name: s}\ndata: {token: 'not*base64'}\n", InvalidInput, ["a.yaml document 2", "'token'", "base64"]),
    ("metadata: {name: s}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==}\n", InvalidSecretType,
     ["a.yaml document 2", "tls.key"]),
    ("metadata: {name: s}\ntype: kubernetes.io/basic-auth\ndata: {user: eA==}\n", InvalidSecretType,
     ["a.yaml document 2", "username"]),
    ("metadata: {name: s}\ndata: {'bad key!': eA==}\n", InvalidSecretType, ["'bad key!'"]),
    ("metadata: {name: s}\nstringData: {n: 5}\n", InvalidInput, ["stringData key 'n'"]),
    ("metadata: {name: Upper}\ndata: {}\n", InvalidSecretType, ["subdomain"]),
])
def test_invalid_secrets_name_document_and_key(tmp_path: Path, body: str, error: type[Exception],
                                               needles: list[str]) -> None:
    (tmp_path / "a.yaml").write_text(
        f"kind: Secret\napiVersion: v1\nmetadata: {{name: ok}}\ndata: {{k: {b64(CANARY)}}}\n---\n"
        f"kind: Secret\napiVersion: v1\n{body}")
    with pytest.raises(error) as info:
        plan_import(tmp_path, "t", role="r", address="https://k")
    message = str(info.value)
    assert all(n in message for n in needles), message
    assert CANARY not in message and b64(CANARY) not in message


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("kind: Secret\napiVersion: v1\nmetadata: {name: x}\n" + "\n".join(lines))
    with pytest.raises(InvalidInput, match=r"bomb\.yaml document 1: expands to more than"):
        plan_import(tmp_path, "t", role="r", address="https://k")


def test_duplicate_secret_and_bad_prefix(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: Secret\napiVersion: v1\nmetadata: {name: x}\n---\n"
                                     "kind: Secret\napiVersion: v1\nmetadata: {name: x, namespace: default}\n")
    with pytest.raises(InvalidInput, match="twice"):
        plan_import(tmp_path, "t", role="r", address="https://k")
    with pytest.raises((UsageError, InvalidInput)):
        plan_import(tmp_path, "../t", role="r", address="https://k")
    with pytest.raises(NotFound):
        plan_import(tmp_path / "missing", "t", role="r", address="https://k")


def test_non_secret_documents_are_untouched(tmp_path: Path) -> None:
    text = ("# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {x: '1'}\n---\n"
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n"
            "      containers: [{name: c, image: i,\n"
            "        env: [{name: T, valueFrom: {secretKeyRef: {name: other, key: k}}}]}]\n")
    (tmp_path / "a.yaml").write_text(text)
    plan = plan_import(tmp_path, "t", role="r", address="https://k")
    assert plan.secrets == [] and plan.diff() == "" and plan.files[0].new_text == text


# ---------------------------------------------------------------------------------------------- apply


def test_store_is_all_or_nothing_and_never_overwrites(tmp_path: Path) -> None:
    vault = new_keyfile_vault(tmp_path, FixedClock())
    caller = Caller.local_operator()
    plan = plan_import(write_app(tmp_path / "src"), "team/app", role="r", address="https://k")
    vault.put(caller, "team/app/shop/web-tls", b"already here", content_type="text")
    with pytest.raises(AlreadyExists, match="team/app/shop/web-tls"):
        store_secrets(vault.session(caller), plan.secrets)
    with pytest.raises(NotFound):
        vault.get(caller, "team/app/shop/db")  # checked before storing anything
    vault.delete(caller, "team/app/shop/web-tls")
    vault.purge(caller, "team/app/shop/web-tls")
    infos = store_secrets(vault.session(caller), plan.secrets)
    assert [i.path for i in infos] == ["team/app/shop/db", "team/app/shop/web-tls"]
    stored = vault.get(caller, "team/app/shop/db")
    assert stored.value == {"password": CANARY.encode(), "username": CANARY_USER.encode()}
    assert stored.info.attributes.content_type == "Opaque"
    assert vault.get(caller, "team/app/shop/web-tls").info.attributes.content_type == "kubernetes.io/tls"


def test_write_outputs_modes_and_no_overwrite(tmp_path: Path) -> None:
    plan = plan_import(write_app(tmp_path / "src"), "team/app", role="r", address="https://k")
    out = tmp_path / "out"
    written = write_outputs(plan, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "apps").stat().st_mode) == 0o700
    assert sorted(p.relative_to(out).as_posix() for p in written) == ["apps/web.yaml", SPC_FILE]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written)
    with pytest.raises(UsageError, match="empty"):
        write_outputs(plan, out)


# ---------------------------------------------------------------------------------------------- deploy/


def test_deploy_manifests_have_the_required_shape() -> None:
    docs = [d for f in sorted(DEPLOY.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name")
        by_kind.setdefault(doc["kind"], []).append(doc)
    assert {"Namespace", "ServiceAccount", "StatefulSet", "Service", "DaemonSet", "ClusterRole",
            "ClusterRoleBinding"} <= set(by_kind)
    assert "Secret" not in by_kind
    (server,) = by_kind["StatefulSet"]
    pod = server["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert server["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] in {
        m["name"] for m in container["volumeMounts"]}
    assert all("valueFrom" not in e for e in container.get("env", []))
    (provider,) = by_kind["DaemonSet"]
    ppod = provider["spec"]["template"]["spec"]
    host = {v["name"]: v for v in ppod["volumes"]}["providers"]["hostPath"]
    assert host["path"] == "/var/run/secrets-store-csi-providers"
    args = ppod["containers"][0]["args"]
    assert args[0] == "csi-provider" and "/var/run/secrets-store-csi-providers/kinko.sock" in args
    assert ppod["containers"][0]["securityContext"]["capabilities"]["drop"] == ["ALL"]
    role = next(r for r in by_kind["ClusterRole"] if r["metadata"]["name"] == "kinko-csi-provider")
    assert role["rules"] == []  # the driver passes pod tokens: the provider needs no API access
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "\nUSER 10001" in dockerfile and "ADD " not in dockerfile and dockerfile.count("FROM ") >= 2


def test_deploy_passes_kinkos_own_scanner() -> None:
    detector, result = default_detector(), ScanResult()
    findings = list(KubernetesSource([DEPLOY]).scan(detector, result))
    findings += list(DockerfileSource(DEPLOY / "Dockerfile").scan(detector, result))
    assert len(result.artifacts) == 3
    serious = [(f.rule_id, f.location.path, f.location.line) for f in findings if f.severity >= Severity.MEDIUM]
    assert serious == []


def test_rendered_objects_parse_in_the_csi_provider() -> None:
    """What `render spc` and `import` write is what the provider (kinko.deliver.csi_params) accepts."""
    from kinko.deliver.csi_params import parse_objects

    objects = [parse_object_ref("team/app/db#password"), parse_object_ref("team/app/api=conf/api.txt")]
    spc = render_spc("app", "shop", objects, role="r", address="https://k")
    parsed = parse_objects(spc["spec"]["parameters"]["objects"])
    assert [(o.object_name, o.secret_path, o.secret_key, o.file_permission) for o in parsed] == [
        ("password", "team/app/db", "password", 0o400), ("conf/api.txt", "team/app/api", None, 0o400)]
