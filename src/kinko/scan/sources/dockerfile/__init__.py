"""Dockerfiles: a buildkit-compatible parser and the misconfiguration rules over it."""

from kinko.scan.sources.dockerfile.source import DockerfileSource

__all__ = ["DockerfileSource"]
