"""Container image archives: every layer and the config, streamed, with whiteouts resolved per finding."""

from kinko.scan.sources.image.source import ImageSource

__all__ = ["ImageSource"]
