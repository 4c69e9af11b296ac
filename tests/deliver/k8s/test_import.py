"""kinko.deliver.k8s.importer: import planning on real files, hostile input, storing and writing the outputs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from kinko.core.model import Caller
from kinko.deliver.k8s.importer import SPC_FILE, plan_import, store_secrets, write_outputs
from kinko.deliver.k8s.patch import MOVED_ANNOTATION
from kinko.deliver.k8s.render import CSI_DRIVER
from kinko.errors import AlreadyExists, InvalidInput, InvalidSecretType, NotFound, UsageError
from tests.conftest import FixedClock, new_keyfile_vault
from tests.deliver.k8s.apps import CANARY, CANARY_USER, b64, load_all, spc_objects, write_app


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
