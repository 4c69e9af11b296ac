"""Images on OCI registries: references, Docker config credentials, pulling, and the scan source."""

from kinko.scan.sources.registry.reference import ImageRef, parse_reference
from kinko.scan.sources.registry.source import RegistrySource

__all__ = ["ImageRef", "RegistrySource", "parse_reference"]
