"""kinko.api."""
