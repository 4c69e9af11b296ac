"""`kinko k8s render|import` through click's CliRunner against a real key-file vault on disk."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml

from kinko.deliver.k8s.patch import MOVED_ANNOTATION
from tests.cli.test_cli_operator import one_error_line, run
from tests.deliver.k8s.apps import CANARY, CANARY_USER, b64, load_all, spc_objects, write_app


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {"KINKO_VAULT": str(tmp_path / "v.db")}
    result = run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k"))
    assert result.exit_code == 0, result.stderr
    return env


def no_canary(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text and CANARY_USER not in text and b64(CANARY) not in text
        assert "PRIVATE KEY" not in text


def test_render_spc_prints_spc_and_volume_snippet(env: dict[str, str]) -> None:
    result = run(env, "k8s", "render", "spc", "--name", "app", "--namespace", "shop", "--role", "shop-app",
                 "--address", "https://kinko:8200", "--audience", "kinko", "team/app/db#password",
                 "team/app/api=api.txt")
    assert result.exit_code == 0, result.stderr
    (spc,) = load_all(result.stdout)  # the snippet is printed as YAML comments
    assert spc["kind"] == "SecretProviderClass" and spc["spec"]["parameters"]["roleName"] == "shop-app"
    assert [o["objectName"] for o in spc_objects(spc)] == ["password", "api.txt"]
    snippet = yaml.safe_load("\n".join(line[2:] for line in result.stdout.splitlines() if line.startswith("# ")
                                       and not line.startswith("# Pod spec")))
    assert snippet["volumes"][0]["csi"]["driver"] == "secrets-store.csi.k8s.io"
    assert snippet["volumes"][0]["csi"]["readOnly"] is True and snippet["volumeMounts"][0]["readOnly"] is True
    bad = run(env, "k8s", "render", "spc", "--name", "app", "--namespace", "shop", "--role", "r", "a/b=../x")
    assert bad.exit_code == 2 and "object name" in bad.stderr


def test_render_secret_warns_and_encodes(env: dict[str, str]) -> None:
    assert run(env, "secret", "put", "team/app/db", f"password={CANARY}", "user=bob").exit_code == 0
    result = run(env, "k8s", "render", "secret", "team/app/db", "--name", "db", "--namespace", "shop")
    assert result.exit_code == 0, result.stderr
    assert "not encrypted" in result.stderr and CANARY not in result.stderr
    (doc,) = load_all(result.stdout)
    assert doc["kind"] == "Secret" and doc["type"] == "Opaque" and doc["metadata"]["namespace"] == "shop"
    assert base64.b64decode(doc["data"]["password"]).decode() == CANARY
    wrong = run(env, "k8s", "render", "secret", "team/app/db", "--name", "db", "--namespace", "shop",
                "--type", "kubernetes.io/tls")
    one_error_line(wrong, "invalid_secret_type")
    one_error_line(run(env, "k8s", "render", "secret", "team/none", "--name", "x", "--namespace", "y"), "not_found")


def test_import_dry_run_shows_diff_stores_nothing(env: dict[str, str], tmp_path: Path) -> None:
    src = write_app(tmp_path / "src")
    result = run(env, "k8s", "import", str(src), "--prefix", "team/app")
    assert result.exit_code == 0, result.stderr
    no_canary(result.stdout, result.stderr)
    assert "--- a/secrets.yaml" in result.stdout and "-kind: Secret" in result.stdout
    assert "+        csi:" in result.stdout and "would store 2 secret(s)" in result.stdout
    assert "team/app/shop/db  type=Opaque  keys=password,username" in result.stdout
    assert "DB_PASSWORD -> /var/run/secrets/kinko/db/password" in result.stdout
    assert "application must read these files" in result.stdout
    assert run(env, "secret", "list").stdout.strip() == ""
    json_out = run(env, "k8s", "import", str(src), "--prefix", "team/app", "-o", "json")
    no_canary(json_out.stdout)


def test_import_apply_round_trip(env: dict[str, str], tmp_path: Path) -> None:
    src, out = write_app(tmp_path / "src"), tmp_path / "out"
    result = run(env, "k8s", "import", str(src), "--prefix", "team/app", "--apply", "--out", str(out),
                 "--role", "shop-app", "--address", "https://kinko.kinko.svc:8200")
    assert result.exit_code == 0, result.stderr
    no_canary(result.stdout, result.stderr)
    assert run(env, "secret", "get", "team/app/shop/db", "--key", "password").stdout == CANARY
    assert run(env, "secret", "get", "team/app/shop/db", "--key", "username").stdout == CANARY_USER
    versions = run(env, "secret", "versions", "team/app/shop/web-tls").stdout
    assert "type=kubernetes.io/tls" in versions
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    docs = [d for p in files for d in load_all(p.read_text())]
    no_canary(*(p.read_text() for p in files))
    assert "Secret" not in {d["kind"] for d in docs}
    spcs = [d for d in docs if d["kind"] == "SecretProviderClass"]
    paths = {o["secretPath"] for s in spcs for o in spc_objects(s)}
    assert paths == {"team/app/shop/db", "team/app/shop/web-tls"}
    assert {s["spec"]["parameters"]["roleName"] for s in spcs} == {"shop-app"}
    # A second import never overwrites: one error naming the path, exit 1.
    again = run(env, "k8s", "import", str(src), "--prefix", "team/app", "--apply", "--out", str(tmp_path / "o2"),
                "--role", "shop-app")
    one_error_line(again, "already_exists")
    assert "team/app/shop/db" in again.stderr


def test_import_bad_input_and_usage(env: dict[str, str], tmp_path: Path) -> None:
    src = write_app(tmp_path / "src")
    (src / "zz-bad.yaml").write_text("kind: Secret\napiVersion: v1\nmetadata: {name: bad}\ndata: {k: '%%%'}\n")
    result = run(env, "k8s", "import", str(src), "--prefix", "team/app", "--apply", "--out", str(tmp_path / "o"),
                 "--role", "r")
    one_error_line(result, "invalid_input")
    assert "zz-bad.yaml document 1" in result.stderr and "'k'" in result.stderr
    assert run(env, "secret", "list").stdout.strip() == "" and not (tmp_path / "o").exists()  # all or nothing
    usage = run(env, "k8s", "import", str(src), "--prefix", "team/app", "--apply")
    assert usage.exit_code == 2 and "--role" in usage.stderr


# -- review fixes: addresses, mount paths, Secret types, duplicate moves, unknown Secrets ------------------------
SPC = ("k8s", "render", "spc", "--name", "app", "--namespace", "shop", "--role", "r")


def test_render_spc_checks_address_and_mount_path(env: dict[str, str]) -> None:
    for bad in ("not a url", "ftp://kinko:21", "https://", "kinko:8200"):
        result = run(env, *SPC, "--address", bad, "a/b")
        assert result.exit_code == 2 and "--address" in result.stderr, (bad, result.stderr)
    relative = run(env, *SPC, "--address", "https://kinko:8200", "--mount-path", "secrets", "a/b")
    assert relative.exit_code == 2 and "--mount-path" in relative.stderr
    good = run(env, *SPC, "--address", "https://kinko.kinko.svc:8200", "a/b")
    assert good.exit_code == 0 and good.stderr == ""
    local = run({**env, "KINKO_ADDR": "http://127.0.0.1:18777"}, *SPC, "a/b")
    assert local.exit_code == 0 and "loopback" in local.stderr and "plain http" in local.stderr
    assert "KINKO_ADDR" in local.stderr
    assert load_all(local.stdout)[0]["spec"]["parameters"]["kinkoAddress"] == "http://127.0.0.1:18777"
    assert "loopback" in run(env, *SPC, "--address", "https://localhost:8200", "a/b").stderr


def test_import_checks_address_and_mount_path(env: dict[str, str], tmp_path: Path) -> None:
    src = write_app(tmp_path / "src")
    assert run(env, "k8s", "import", str(src), "--prefix", "t/a", "--address", "nope").exit_code == 2
    assert run(env, "k8s", "import", str(src), "--prefix", "t/a", "--mount-path", "rel/dir").exit_code == 2
    local = run({**env, "KINKO_ADDR": "http://localhost:18777"}, "k8s", "import", str(src), "--prefix", "t/a")
    assert local.exit_code == 0 and "loopback" in local.stderr


def test_render_secret_unknown_type_is_usage(env: dict[str, str]) -> None:
    assert run(env, "secret", "put", "team/app/db", "password=x").exit_code == 0
    result = run(env, "k8s", "render", "secret", "team/app/db", "--name", "db", "--namespace", "shop",
                 "--type", "kubernetes.io/bogus")
    assert result.exit_code == 2 and "kubernetes.io/tls" in result.stderr and "Opaque" in result.stderr


def test_import_dedupes_moves_and_warns_on_unknown_secret(env: dict[str, str], tmp_path: Path) -> None:
    src = write_app(tmp_path / "src")
    (src / "other.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: shop}\n"
        f"stringData: {{DB_PASSWORD: {CANARY}}}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n"
        "spec:\n  containers:\n  - name: c\n    image: x\n"
        "    env:\n    - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: DB_PASSWORD}}}\n"
        "    - {name: API, valueFrom: {secretKeyRef: {name: elsewhere, key: token}}}\n"
        "    envFrom:\n    - {secretRef: {name: creds}}\n")
    result = run(env, "k8s", "import", str(src), "--prefix", "team/app", "-o", "json")
    assert result.exit_code == 0, result.stderr
    no_canary(result.stdout, result.stderr)
    summary = json.loads(result.stdout)
    assert [m for m in summary["moved_env"] if m.startswith("Pod/")] == [
        "Pod/shop/p container c: DB_PASSWORD -> /var/run/secrets/kinko/creds/DB_PASSWORD"]
    (warning,) = [w for w in summary["warnings"] if "elsewhere" in w]
    assert "API" in warning and "unchanged" in warning
    out = tmp_path / "out"
    assert run(env, "k8s", "import", str(src), "--prefix", "team/app", "--apply", "--out", str(out),
               "--role", "r").exit_code == 0
    (pod,) = load_all((out / "other.yaml").read_text())
    assert pod["metadata"]["annotations"][MOVED_ANNOTATION].count("DB_PASSWORD ->") == 1
    container = pod["spec"]["containers"][0]
    assert container["env"] == [{"name": "API", "valueFrom": {"secretKeyRef": {"name": "elsewhere", "key": "token"}}}]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/var/run/secrets/kinko/creds"]
