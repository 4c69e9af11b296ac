"""KubernetesSource: Secrets, ConfigMaps, workloads, YAML octal traps, List kinds, kinko's own output, hostile input."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinko.deliver.k8s.render import dump_yaml, parse_object_ref, render_spc, volume_snippet
from kinko.errors import ScanError
from kinko.scan.detect import default_detector
from kinko.scan.interface import Finding, FindingKind, ScanResult, Severity
from kinko.scan.sources.kubernetes import KubernetesSource
from kinko.scan.sources.kubernetes.source import manifest_findings
from kinko.scan.sources.kubernetes.workloads import parse_mode
from tests.cli.test_cli_operator import run
from tests.deliver.k8s.apps import write_app

PG_URL = "postgresql://app:Sup3rS3cretPw9@db.internal:5432/app"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def scan(tmp_path: Path, text: str, name: str = "m.yaml") -> tuple[list[Finding], ScanResult]:
    path = tmp_path / name
    path.write_text(text)
    result = ScanResult()
    return list(KubernetesSource([path]).scan(default_detector(), result)), result


def by_rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule]


def deployment(volume: str) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n"
        "spec:\n  template:\n    spec:\n      containers: [{name: app, image: x}]\n"
        f"      volumes:\n      - name: s\n{volume}"
    )


def test_secret_data_decoded_scanned_and_described(tmp_path: Path) -> None:
    text = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\ndata:\n  url: {b64(PG_URL)}\n"
    findings, result = scan(tmp_path, text)
    [secret] = [f for f in findings if f.kind is FindingKind.SECRET]
    assert secret.secret == PG_URL or secret.secret in PG_URL
    assert secret.location.path == "Secret/prod/db:data.url" and secret.location.line == 7
    [b64_rule] = by_rule(findings, "k8s-secret-base64-not-encryption")
    assert b64_rule.severity is Severity.MEDIUM and "decodes to a PostgreSQL" in b64_rule.message
    assert "Sup3rS3cretPw9" not in b64_rule.message and "Sup3rS3cretPw9" not in repr(b64_rule)
    assert result.artifacts == [str(tmp_path / "m.yaml")]


def secret_manifest(url: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\ndata:\n  url: {b64(url)}\n"


def test_decoded_secret_url_with_a_simple_password_is_critical(tmp_path: Path) -> None:
    """`user:pass` is a doc stand-in in source files, but a Secret's data is what the cluster really uses."""
    findings, _ = scan(tmp_path, secret_manifest("postgresql://user:pass@host/db"))
    [secret] = [f for f in findings if f.kind is FindingKind.SECRET]
    assert secret.rule_id == "postgres-connection-url" and secret.severity is Severity.CRITICAL
    assert secret.location.path == "Secret/shop/db:data.url" and secret.location.line == 7
    assert secret.secret == "pass"
    [described] = [f for f in findings if f.rule_id == "k8s-secret-base64-not-encryption"]
    assert "PostgreSQL" in described.message


def test_templates_in_decoded_secret_data_are_still_placeholders(tmp_path: Path) -> None:
    findings, _ = scan(tmp_path, secret_manifest("postgresql://user:${DB_PASSWORD}@host/db"))
    assert [f for f in findings if f.kind is FindingKind.SECRET] == []


def test_invalid_base64_and_stringdata(tmp_path: Path) -> None:
    text = (
        "kind: Secret\napiVersion: v1\nmetadata: {name: s}\ndata:\n  k: '%%%not-base64'\nstringData:\n  pw: hunter2\n"
    )
    findings, _ = scan(tmp_path, text)
    assert by_rule(findings, "k8s-secret-invalid-base64")[0].location.line == 5
    [plain] = by_rule(findings, "k8s-secret-stringdata-plaintext")
    assert plain.severity is Severity.HIGH and plain.secret == "hunter2" and plain.location.line == 7
    assert plain.location.path == "Secret/default/s:stringData.pw"


@pytest.mark.parametrize(
    ("stype", "keys", "problems"),
    [
        ("kubernetes.io/tls", {"tls.crt": "x"}, ["missing required key 'tls.key'"]),
        ("kubernetes.io/tls", {"tls.crt": "x", "tls.key": "y"}, []),
        ("kubernetes.io/basic-auth", {"other": "x"}, ["needs a 'username' or 'password' key"]),
        ("kubernetes.io/basic-auth", {"username": ""}, []),
        ("kubernetes.io/ssh-auth", {"ssh-privatekey": ""}, ["'ssh-privatekey' is empty"]),
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "[1]"}, ["'.dockerconfigjson' is not a JSON object"]),
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"auths": {}}'}, []),
        ("kubernetes.io/dockercfg", {}, ["missing required key '.dockercfg'"]),
        ("kubernetes.io/service-account-token", {}, ["missing annotation 'kubernetes.io/service-account.name'"]),
        ("bootstrap.kubernetes.io/token", {"token-id": "abcdef", "token-secret": "0123456789abcdef"}, []),
        ("bootstrap.kubernetes.io/token", {"token-id": "ABC"}, ["missing required key 'token-secret'",
                                                                "'token-id' does not match [a-z0-9]{6}"]),
        ("Opaque", {}, []),
        ("example.com/custom", {}, []),
    ],
)  # fmt: skip
def test_secret_type_required_keys(tmp_path: Path, stype: str, keys: dict[str, str], problems: list[str]) -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": stype,
           "data": {k: b64(v) for k, v in keys.items()}}  # fmt: skip
    findings, _ = scan(tmp_path, json.dumps(obj), name="s.json")
    got = [f.message.split(": ", 1)[1] for f in by_rule(findings, "k8s-secret-invalid-type")]
    assert got == problems


@pytest.mark.parametrize(
    ("volume", "reported"),
    [
        ("        secret: {secretName: db}\n", "is unset and defaults to 0644"),
        ("        secret: {secretName: db, defaultMode: 0644}\n", "is 0644 (decimal 420)"),
        ("        secret: {secretName: db, defaultMode: 420}\n", "is 0644 (decimal 420)"),
        ("        secret: {secretName: db, defaultMode: '0644'}\n", "is 0644 (string '0644')"),
        ("        secret: {secretName: db, defaultMode: 0o644}\n", "is 0644 (string '0o644')"),
        ("        secret: {secretName: db, defaultMode: 0440}\n", "is 0440"),
        ("        secret: {secretName: db, defaultMode: 256}\n", None),
        ("        secret: {secretName: db, defaultMode: 0400}\n", None),
        ("        secret: {secretName: db, defaultMode: '0400'}\n", None),
        ("        secret: {secretName: db, items: [{key: a, path: a, mode: 0600}]}\n", None),
        ("        secret: {secretName: db, items: [{key: a, path: a, mode: 0604}]}\n", "items[0].mode is 0604"),
        ("        secret: {secretName: db, defaultMode: 0400, items: [{key: a, path: a}]}\n", None),
        ("        secret: {secretName: db, items: [{key: a, path: a}]}\n", "defaults to 0644"),
        ("        projected: {sources: [{secret: {name: db}}]}\n", "projected volume 's' defaultMode is unset"),
        ("        projected: {defaultMode: 256, sources: [{secret: {name: db}}]}\n", None),
        ("        projected: {sources: [{configMap: {name: c}}]}\n", None),
        ("        configMap: {name: c}\n", None),
    ],
)
def test_secret_volume_modes_and_yaml_octal_traps(tmp_path: Path, volume: str, reported: str | None) -> None:
    findings, _ = scan(tmp_path, deployment(volume))
    hits = by_rule(findings, "k8s-secret-volume-mode")
    if reported is None:
        assert hits == []
    else:
        [hit] = hits
        assert reported in hit.message and hit.severity is Severity.MEDIUM
        assert hit.location.path.startswith("Deployment/prod/web:spec.template.spec.volumes[0]")
        assert hit.location.line == 10


@pytest.mark.parametrize(
    ("raw", "mode"),
    [(420, 0o644), (256, 0o400), ("0644", 0o644), ("0o644", 0o644), ("420", 420), (511, 0o777),
     (512, None), (-1, None), ("abc", None), (True, None), (None, None)],
)  # fmt: skip
def test_parse_mode(raw: object, mode: int | None) -> None:
    assert parse_mode(raw) == mode


def test_fsgroup_makes_0400_group_readable(tmp_path: Path) -> None:
    volume = "        secret: {secretName: db, defaultMode: 0400}\n"
    text = deployment(volume).replace(
        "    spec:\n      containers", "    spec:\n      securityContext: {fsGroup: 2000}\n      containers"
    )
    findings, _ = scan(tmp_path, text)
    [hit] = by_rule(findings, "k8s-secret-volume-mode")
    assert hit.severity is Severity.LOW and "0440" in hit.message and "fsGroup" in hit.message


def test_invalid_mode_is_reported_low(tmp_path: Path) -> None:
    findings, _ = scan(tmp_path, deployment("        secret: {secretName: db, defaultMode: 9999}\n"))
    [hit] = by_rule(findings, "k8s-secret-volume-mode")
    assert hit.severity is Severity.LOW and "not a valid file mode" in hit.message


def test_cronjob_init_containers_env_and_envfrom(tmp_path: Path) -> None:
    text = """apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: ops}
spec:
  schedule: "0 0 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
          - name: init
            env:
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: db, key: pw}}
          containers:
          - name: job
            envFrom:
            - secretRef: {name: db}
            - configMapRef: {name: c}
            env:
            - name: API_TOKEN
              value: q8Z1x0Lk3mPp
            - name: DATABASE_URL
              value: "PG_URL"
            - name: PASSWORD_FILE
              value: /run/secrets/pw
            - name: DB_PASSWORD
              value: "$(PW_FROM_OTHER_VAR)"
          volumes:
          - name: s
            secret: {secretName: db, defaultMode: 0400}
""".replace("PG_URL", PG_URL)
    findings, _ = scan(tmp_path, text)
    refs = by_rule(findings, "k8s-env-secretkeyref")
    assert [f.location.path.split(":", 1)[1] for f in refs] == [
        "spec.jobTemplate.spec.template.spec.initContainers[0].env[0]",
        "spec.jobTemplate.spec.template.spec.containers[0].envFrom[0]",
    ]
    assert "child processes" in refs[0].message and refs[0].location.line == 13
    literal = by_rule(findings, "k8s-env-literal-secret")
    assert [f.location.line for f in literal] == [22, 24]
    assert literal[0].secret == "q8Z1x0Lk3mPp" and literal[1].secret and literal[1].secret in PG_URL
    assert "PostgreSQL" in literal[1].message
    # the raw-text detector pass does not report the DATABASE_URL a second time on the same line
    assert [f for f in findings if f.location.line == 24 and f.rule_id != "k8s-env-literal-secret"] == []
    assert by_rule(findings, "k8s-secret-volume-mode") == []


@pytest.mark.parametrize("kind", ["Pod", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"])
def test_every_workload_kind(tmp_path: Path, kind: str) -> None:
    pod = {"volumes": [{"name": "s", "secret": {"secretName": "x"}}], "containers": [{"name": "c"}]}
    spec: dict[str, object] = pod if kind == "Pod" else {"template": {"spec": pod}}
    findings, _ = scan(tmp_path, json.dumps({"apiVersion": "v1", "kind": kind, "metadata": {"name": "w"},
                                              "spec": spec}), "w.json")  # fmt: skip
    assert len(by_rule(findings, "k8s-secret-volume-mode")) == 1


def test_list_kinds_json_and_configmaps(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMapList",
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "a"},
             "data": {"DATABASE_URL": PG_URL, "LOG_LEVEL": "debug"},
             "binaryData": {"blob": b64("AWS key AKIAQ3EGRZ7XLM4VNB2K here")}},
            {"apiVersion": "v1", "kind": "List", "items": [{"kind": "Secret", "metadata": {"name": "inner"},
                                                            "stringData": {"x": "y"}}]},
        ],
    }  # fmt: skip
    findings, _ = scan(tmp_path, json.dumps(doc, indent=1), "list.json")
    cm = by_rule(findings, "k8s-configmap-secret")
    assert sorted(f.location.path for f in cm) == ["ConfigMap/a/cm:binaryData.blob", "ConfigMap/a/cm:data.DATABASE_URL"]
    assert all(f.severity is Severity.HIGH and f.secret for f in cm)
    assert [f.location.path for f in by_rule(findings, "k8s-secret-stringdata-plaintext")] == [
        "Secret/default/inner:stringData.x"
    ]


def test_generated_secret_provider_class_passes_kinkos_own_scan(tmp_path: Path) -> None:
    """`kinko k8s import --apply` writes SPCs whose `objects` list secretPath/secretKey references."""
    objects = [
        parse_object_ref("shop/shop/db-creds#password"),
        parse_object_ref("shop/shop/db-creds#username=db-user"),
        parse_object_ref("shop/shop/payments-api-key"),
        parse_object_ref("shop/payments/stripe-webhook-signing-secret#signing-secret=stripe/webhook"),
    ]
    spc = render_spc("shop-secrets", "shop", objects, role="shop-app", address="https://kinko.kinko.svc:8200",
                     audience="kinko")
    volume = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
              "spec": {"containers": [{"name": "app", "image": "shop:1",
                                       "volumeMounts": volume_snippet("shop-secrets")["volumeMounts"]}],
                       "volumes": volume_snippet("shop-secrets")["volumes"]}}
    text = dump_yaml([spc, volume])
    assert "secretPath: shop/shop/db-creds" in text  # the shape the user's report quoted
    serious = [(f.rule_id, f.location.line) for f in scan(tmp_path, text)[0] if f.severity >= Severity.MEDIUM]
    assert serious == []


def test_kinko_k8s_import_apply_output_scans_clean(tmp_path: Path) -> None:
    """The user's path end to end: import a Secret-based app into a vault, then scan what --apply wrote."""
    env = {"KINKO_VAULT": str(tmp_path / "v.db")}
    assert run(env, "operator", "init", "--seal", "keyfile", "--key-file", str(tmp_path / "k")).exit_code == 0
    out = tmp_path / "out"
    applied = run(env, "k8s", "import", str(write_app(tmp_path / "src")), "--prefix", "shop", "--apply",
                  "--out", str(out), "--role", "shop-app", "--address", "https://kinko.kinko.svc:8200")
    assert applied.exit_code == 0, applied.stderr
    result = ScanResult()
    findings = list(KubernetesSource([out]).scan(default_detector(), result))
    assert result.artifacts and "secretPath: shop/" in "".join(Path(a).read_text() for a in result.artifacts)
    assert [(f.rule_id, f.location.path) for f in findings if f.severity >= Severity.MEDIUM] == []


def test_real_secret_next_to_reference_keys_is_still_found(tmp_path: Path) -> None:
    """Skipping reference names must not hide a literal secret stored under a secret-named key."""
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata:\n"
            "  secretPath: shop/shop/db-creds\n  SECRET_KEY: mG39YU4Jv5dUfPjgfbpUQxpDcBRWTUhhilk\n")
    hits = [f for f in scan(tmp_path, text)[0] if f.rule_id == "generic-secret"]
    assert [f.location.line for f in hits] == [6]


def test_multi_document_yaml_with_a_broken_document_continues(tmp_path: Path) -> None:
    text = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: one}\nstringData: {a: b}\n"
        "---\nkey: [unclosed\n"
        "---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: two}\nstringData: {c: d}\n"
    )
    findings, result = scan(tmp_path, text)
    hits = by_rule(findings, "k8s-secret-stringdata-plaintext")
    assert [(f.location.path, f.location.line) for f in hits] == [
        ("Secret/default/one:stringData.a", 4),
        ("Secret/default/two:stringData.c", 12),
    ]
    [warning] = result.warnings
    assert "m.yaml: document 1: invalid YAML" in warning.message and warning.artifact.endswith("m.yaml")


def test_directories_recurse_and_skip_other_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n"
    (tmp_path / "a" / "b" / "deep.yml").write_text(secret)
    (tmp_path / "top.yaml").write_text(secret)
    (tmp_path / "notes.txt").write_text(secret)
    os.symlink(tmp_path / "top.yaml", tmp_path / "a" / "link.yaml")
    result = ScanResult()
    findings = list(KubernetesSource([tmp_path]).scan(default_detector(), result))
    assert sorted(Path(a).name for a in result.artifacts) == ["deep.yml", "top.yaml"]
    assert len(by_rule(findings, "k8s-secret-stringdata-plaintext")) == 2
    with pytest.raises(ScanError, match="no such file"):
        list(KubernetesSource([tmp_path / "nope"]).scan(default_detector(), ScanResult()))


def test_kinko_allow_on_a_line(tmp_path: Path) -> None:
    findings, _ = scan(tmp_path, deployment("        secret: {secretName: db, defaultMode: 0644} # kinko:allow\n"))
    assert by_rule(findings, "k8s-secret-volume-mode") == []


# --- hostile input: each must end with a warning, in bounded time --------------------------------------


def test_binary_junk_named_yaml(tmp_path: Path) -> None:
    path = tmp_path / "junk.yaml"
    path.write_bytes(os.urandom(4096) + b"\x00")
    result = ScanResult()
    findings = list(KubernetesSource([path]).scan(default_detector(), result))
    assert all(f.kind is FindingKind.SECRET for f in findings)  # only raw detector hits, no structure
    assert any("binary content" in w.message for w in result.warnings)
    assert result.incomplete == []  # not a manifest: its raw bytes were scanned, nothing was skipped


def test_non_utf8_and_invalid_yaml(tmp_path: Path) -> None:
    _, result = scan(tmp_path, "a: b\n", "ok.yaml")
    (tmp_path / "latin.yaml").write_bytes(b"kind: Secret\nx: \xff\xfe\n")
    (tmp_path / "bad.yaml").write_text("kind: Secret\n  bad: indent: here\n\t- tab\n")
    result = ScanResult()
    list(KubernetesSource([tmp_path / "latin.yaml", tmp_path / "bad.yaml"]).scan(default_detector(), result))
    messages = [w.message for w in result.warnings]
    assert any("not UTF-8" in m for m in messages) and any("bad.yaml: document 0: invalid YAML" in m for m in messages)
    assert result.incomplete == []


def test_billion_laughs_is_bounded(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nextra:\n" + "".join(f"  {ln}\n" for ln in lines)
    start = time.monotonic()
    _, result = scan(tmp_path, text)
    assert time.monotonic() - start < 5
    assert any("alias bomb" in w.message and "document 0" in w.message for w in result.warnings)
    [skipped] = result.incomplete
    assert skipped.artifact == str(tmp_path / "m.yaml")
    assert skipped.message.endswith("document 0: expands to more than 200000 nodes or 64 levels (YAML alias bomb or "
                                    "cycle?); skipped")  # fmt: skip


def test_recursive_alias_and_deep_nesting_are_bounded(tmp_path: Path) -> None:
    start = time.monotonic()
    _, result = scan(tmp_path, "kind: Pod\nspec: &s\n  x: *s\n", "rec.yaml")
    [skipped] = result.incomplete
    assert "rec.yaml: document 0: expands to more than 200000 nodes or 64 levels" in skipped.message
    _, result = scan(tmp_path, "kind: Pod\nspec: " + "[" * 50_000 + "]" * 50_000 + "\n", "deep.yaml")
    assert result.warnings and [w.message for w in result.incomplete] == [
        f"{tmp_path / 'deep.yaml'}: document 0: nested too deeply (over 64 levels); skipped"
    ]
    _, result = scan(tmp_path, "[" * 50_000 + "]" * 50_000, "deep.json")
    assert [w.message.split(": ", 2)[2] for w in result.incomplete] == ["JSON nested too deeply; skipped"]
    assert time.monotonic() - start < 10


def test_ten_megabyte_yaml_is_skipped_structurally_but_still_detected(tmp_path: Path) -> None:
    filler = "# " + "x" * 98 + "\n"
    text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  url: " + PG_URL + "\n" + filler * 100_000
    start = time.monotonic()
    findings, result = scan(tmp_path, text, "big.yaml")
    assert time.monotonic() - start < 10
    assert any("larger than" in w.message for w in result.warnings)
    assert [f.location.line for f in findings if f.kind is FindingKind.SECRET] == [4]
    assert [w.message.split(": ", 1)[1] for w in result.incomplete] == [
        "larger than 4194304 bytes; not parsed as Kubernetes manifests (Secret values in it were not decoded and "
        "checked)"
    ]


def test_unreadable_manifest_and_unlistable_directory_are_skipped(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    (tmp_path / "ok" / "locked.yaml").write_text("apiVersion: v1\nkind: Secret\n")
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "b.yaml").write_text("apiVersion: v1\nkind: Secret\n")
    real_read, real_scandir = Path.read_bytes, os.scandir

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.yaml":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    def scandir(path: str) -> object:  # root runs the tests: a chmod 000 directory would still be listed
        if str(path).endswith("closed"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(os, "scandir", scandir)
    result = ScanResult()
    list(KubernetesSource([tmp_path]).scan(default_detector(), result))
    assert sorted((w.artifact, w.message) for w in result.incomplete) == [
        (str(tmp_path / "closed"), "cannot list directory: Permission denied; its files were not scanned"),
        (str(tmp_path / "ok" / "locked.yaml"), "cannot read: Permission denied; not scanned"),
    ]
    assert result.artifacts == [str(tmp_path / "ok" / "a.yaml")]


_YAML_PIECES = ["kind: Secret\n", "kind: Pod\n", "kind: List\nitems:\n", "- ", "  ", "data: {a: '!!'}\n",
                "spec:\n", "volumes: [{secret: {defaultMode: x}}]\n", "---\n", "&a [1]\n", "*a\n", "{", "]",
                "stringData: [1]\n", "containers: 3\n", "\t", ": ", "\"", "'", "0o7\n", "!!binary x\n"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_YAML_PIECES), max_size=30))
def test_manifest_parsing_never_crashes(pieces: list[str]) -> None:
    warnings: list[str] = []
    findings = manifest_findings("".join(pieces).encode(), "m.yaml", "m.yaml", default_detector(), warnings.append)
    assert isinstance(findings, list)
