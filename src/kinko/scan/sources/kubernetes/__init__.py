"""Kubernetes manifests: Secret, ConfigMap and workload rules over files loaded by `kinko.k8s`."""

from kinko.scan.sources.kubernetes.source import KubernetesSource

__all__ = ["KubernetesSource"]
