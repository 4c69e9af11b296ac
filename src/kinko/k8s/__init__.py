"""Kubernetes manifests as data: bounded YAML/JSON loading and pod-spec lookups, shared by the scanner and deliver."""
