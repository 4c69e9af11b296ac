"""deploy/: the server and CSI provider manifests have the required shape and pass kinko's own scanner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kinko.scan.detect import default_detector
from kinko.scan.interface import ScanResult, Severity
from kinko.scan.sources.dockerfile import DockerfileSource
from kinko.scan.sources.kubernetes import KubernetesSource

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


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
