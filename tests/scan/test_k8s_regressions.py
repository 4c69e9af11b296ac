"""Kubernetes scanning regressions a new user found: kinko's own SPCs flagged, decoded Secret URLs missed."""

from __future__ import annotations

import base64
from pathlib import Path

from kinko.deliver.k8s.render import dump_yaml, parse_object_ref, render_spc, volume_snippet
from kinko.scan.detect import default_detector
from kinko.scan.interface import Finding, FindingKind, ScanResult, Severity
from kinko.scan.sources.kubernetes import KubernetesSource
from tests.cli.test_cli_operator import run
from tests.deliver.k8s.apps import write_app


def scan_text(tmp_path: Path, text: str) -> list[Finding]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return list(KubernetesSource([path]).scan(default_detector(), ScanResult()))


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
    serious = [(f.rule_id, f.location.line) for f in scan_text(tmp_path, text) if f.severity >= Severity.MEDIUM]
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
    hits = [f for f in scan_text(tmp_path, text) if f.rule_id == "generic-secret"]
    assert [f.location.line for f in hits] == [6]


def secret_manifest(url: str) -> str:
    encoded = base64.b64encode(url.encode()).decode()
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\ndata:\n  url: {encoded}\n"


def test_decoded_secret_url_with_a_simple_password_is_critical(tmp_path: Path) -> None:
    """`user:pass` is a doc stand-in in source files, but a Secret's data is what the cluster really uses."""
    findings = scan_text(tmp_path, secret_manifest("postgresql://user:pass@host/db"))
    [secret] = [f for f in findings if f.kind is FindingKind.SECRET]
    assert secret.rule_id == "postgres-connection-url" and secret.severity is Severity.CRITICAL
    assert secret.location.path == "Secret/shop/db:data.url" and secret.location.line == 7
    assert secret.secret == "pass"
    [described] = [f for f in findings if f.rule_id == "k8s-secret-base64-not-encryption"]
    assert "PostgreSQL" in described.message


def test_templates_in_decoded_secret_data_are_still_placeholders(tmp_path: Path) -> None:
    findings = scan_text(tmp_path, secret_manifest("postgresql://user:${DB_PASSWORD}@host/db"))
    assert [f for f in findings if f.kind is FindingKind.SECRET] == []


def test_stand_in_passwords_in_plain_source_text_stay_quiet() -> None:
    """The relaxed check is only for deployed values: a README's `user:pass` URL is still not reported."""
    detector = default_detector()
    assert detector.scan(b"connect with postgresql://user:pass@host/db") == []
    [hit] = detector.scan_deployed(b"postgresql://user:pass@host/db")
    assert hit.rule_id == "postgres-connection-url"
