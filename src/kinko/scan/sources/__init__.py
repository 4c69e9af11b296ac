"""kinko.scan.sources."""
