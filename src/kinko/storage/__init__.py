"""kinko.storage."""
