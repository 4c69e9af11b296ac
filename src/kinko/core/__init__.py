"""kinko.core."""
