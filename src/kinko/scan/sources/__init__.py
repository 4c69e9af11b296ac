"""Scan sources, one per artifact kind: image archives, Dockerfiles, Kubernetes manifests, directories."""
