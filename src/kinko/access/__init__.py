"""kinko.access."""
