"""Walking Kubernetes objects loaded from YAML/JSON: where each workload kind keeps its pod spec, safe lookups."""

from __future__ import annotations

from typing import Any

#: kind -> path from the object to its PodSpec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def get_in(obj: object, *path: str) -> Any:
    """`obj[path[0]][path[1]]...`, or None as soon as something on the way is not a mapping."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def as_list(value: object) -> list[Any]:
    """`value` if it is a list, else [] (manifests from users may hold anything)."""
    return value if isinstance(value, list) else []
