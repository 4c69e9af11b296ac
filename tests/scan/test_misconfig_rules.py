"""The misconfiguration rule registry: ids per source family, complete fixes, and the secret-name test."""

from __future__ import annotations

import pytest

from kinko.scan import misconfig_rules
from kinko.scan.interface import FindingKind, Location, Severity
from kinko.scan.misconfig_rules import SECRET_ARG, SECRET_ENV, MisconfigRule, secret_name

RULES = [v for v in vars(misconfig_rules).values() if isinstance(v, MisconfigRule)]
HERE = Location("Dockerfile", "Dockerfile", line=3)


def test_the_registry_holds_every_dockerfile_and_kubernetes_rule_with_complete_wording() -> None:
    assert {r.id for r in RULES} == {
        "dockerfile-add-remote-url", "dockerfile-copy-then-rm", "dockerfile-credential-file-final-stage",
        "dockerfile-run-inline-credentials", "dockerfile-secret-arg-env", "k8s-configmap-secret",
        "k8s-env-literal-secret", "k8s-env-secretkeyref", "k8s-secret-base64-not-encryption",
        "k8s-secret-invalid-base64", "k8s-secret-invalid-type", "k8s-secret-stringdata-plaintext",
        "k8s-secret-volume-mode",
    }  # fmt: skip
    for rule in RULES:
        assert rule.title and rule.fix
        if rule.id != "dockerfile-secret-arg-env":  # the one fix that names something
            assert rule.finding(HERE, "m").fix == rule.fix


def test_a_finding_carries_the_rules_wording_and_kind() -> None:
    finding = misconfig_rules.ENV_LITERAL_SECRET.finding(HERE, "env DB_PASSWORD holds a secret", secret="pw")
    assert (finding.rule_id, finding.severity, finding.kind) == ("k8s-env-literal-secret", Severity.HIGH,
                                                                 FindingKind.SECRET)
    assert finding.secret == "pw" and finding.message == "env DB_PASSWORD holds a secret"


def test_arg_and_env_variants_share_the_id_and_name_the_variable_in_the_fix() -> None:
    arg, env = SECRET_ARG.finding(HERE, "m", name="NPM_TOKEN"), SECRET_ENV.finding(HERE, "m", name="API_KEY")
    assert arg.rule_id == env.rule_id == "dockerfile-secret-arg-env"
    assert (arg.title, env.title) == ("Secret-looking ARG name", "Secret-looking ENV name")
    assert "env=NPM_TOKEN`" in arg.fix and "env=API_KEY`" in env.fix


@pytest.mark.parametrize(
    ("name", "secret"),
    [("AWS_SECRET_ACCESS_KEY", True), ("aws_access_key_id", True), ("clientSecret", True), ("MYSQL_PWD", True),
     ("GPG_KEY", False), ("TOKEN_URL", False), ("PASSWORD_FILE", False), ("KEYBOARD", False), ("PATH", False)],
)  # fmt: skip
def test_secret_name_heuristic(name: str, secret: bool) -> None:
    assert secret_name(name) is secret
