"""kinko.scan."""
