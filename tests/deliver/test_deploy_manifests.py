"""deploy/: every manifest valid for Kubernetes (kubernetes-validate, offline, strict), the shape a deployment on
PostgreSQL needs, kinko's own scanner clean on the manifests and the Dockerfile, and `make image`'s message."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kinko.scan.detect import default_detector
from kinko.scan.interface import ScanResult, Severity
from kinko.scan.sources.dockerfile import DockerfileSource
from kinko.scan.sources.kubernetes import KubernetesSource

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
#: The oldest Kubernetes the manifests are checked against, and the newest kubernetes-validate knows.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def manifests() -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for file in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(file.read_text()):
            if doc:
                by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in manifests()[kind] if d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str) -> None:
    docs = [d for kind in manifests().values() for d in kind]
    assert len(docs) >= 12
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error or unknown field


def test_the_server_runs_two_replicas_on_postgresql_reachable_while_sealed() -> None:
    by_kind = manifests()
    assert "Secret" not in by_kind and "PersistentVolumeClaim" not in by_kind
    server = one("StatefulSet", "kinko")
    spec, pod = server["spec"], server["spec"]["template"]["spec"]
    labels = spec["selector"]["matchLabels"]
    assert spec["replicas"] == 2 and spec["podManagementPolicy"] == "Parallel" and "volumeClaimTemplates" not in spec
    peers, ready = one("Service", spec["serviceName"]), one("Service", "kinko")
    assert peers["spec"]["clusterIP"] == "None" and peers["spec"]["publishNotReadyAddresses"] is True
    assert not ready["spec"].get("publishNotReadyAddresses") and ready["spec"]["selector"] == labels
    assert one("PodDisruptionBudget", "kinko")["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": labels}}
    policy = one("NetworkPolicy", "kinko")["spec"]
    assert policy["podSelector"]["matchLabels"] == labels and policy["policyTypes"] == ["Ingress", "Egress"]
    assert {p["port"] for rule in policy["egress"] for p in rule["ports"]} == {53, 5432}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    # The database URL (with its password) comes from a mounted file, never from the environment or argv.
    env = {e["name"]: e for e in container["env"]}
    assert "KINKO_STORAGE" not in env and not any("secretKeyRef" in e.get("valueFrom", {}) for e in env.values())
    assert container["args"] == ["server", "--config", "/etc/kinko/config/server.yaml"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["secret"]["secretName"] == "kinko-config"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/sys/health"
    assert env["KINKO_ADDR"]["value"] == f"https://$(POD_NAME).{spec['serviceName']}.kinko.svc:8200"
    namespace = one("Namespace", "kinko")["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_csi_provider_has_its_namespace_its_ca_configmap_and_no_api_access() -> None:
    provider = one("DaemonSet", "kinko-csi-provider")
    namespace = provider["metadata"]["namespace"]
    labels = one("Namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"  # a hostPath socket needs it
    pod = provider["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["providers"]["hostPath"]["path"] == "/var/run/secrets-store-csi-providers"
    assert volumes["ca"]["configMap"]["name"] == "kinko-ca"
    args = pod["containers"][0]["args"]
    assert args[0] == "csi-provider" and "/var/run/secrets-store-csi-providers/kinko.sock" in args
    assert args[args.index("--addr") + 1] == "https://kinko.kinko.svc:8200"
    assert args[args.index("--ca-file") + 1] == "/etc/kinko/ca/ca.crt"
    assert pod["containers"][0]["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert one("ClusterRole", "kinko-csi-provider")["rules"] == []
    assert one("NetworkPolicy", "kinko-csi-provider")["metadata"]["namespace"] == namespace
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert "kinko-ca" in guide and "publishNotReadyAddresses" in guide and "make image" in guide


def test_deploy_passes_kinkos_own_scanner() -> None:
    detector, result = default_detector(), ScanResult()
    findings = list(KubernetesSource([DEPLOY]).scan(detector, result))
    findings += list(DockerfileSource(DEPLOY / "Dockerfile").scan(detector, result))
    assert len(result.artifacts) == 3
    assert [(f.rule_id, f.location.path) for f in findings if f.severity >= Severity.MEDIUM] == []
    # Accepted, and said in the manifest: fsGroup makes the mounted Secrets group-readable (0440) by the pod's
    # own group; without it uid 10001 could not read them at all.
    assert {(f.rule_id, f.severity) for f in findings} <= {("k8s-secret-volume-mode", Severity.LOW)}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "\nUSER 10001" in dockerfile and "ADD " not in dockerfile and dockerfile.count("FROM ") >= 2
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignored)


def test_make_image_says_so_when_no_builder_is_installed(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # only what the recipe itself needs: no docker, podman or buildah
    bin_dir.mkdir()
    for tool in ("sh", "sed"):
        found = next(Path(d, tool) for d in ("/usr/bin", "/bin") if Path(d, tool).exists())
        (bin_dir / tool).symlink_to(found)
    make = next(Path(d, "make") for d in ("/usr/bin", "/bin", "/usr/local/bin") if Path(d, "make").exists())
    done = subprocess.run([str(make), "-s", "-C", str(ROOT), "image", "STAMP="], capture_output=True, text=True,
                          env={**os.environ, "PATH": str(bin_dir)}, check=False)
    assert done.returncode != 0
    assert "none of docker, podman or buildah" in done.stderr
