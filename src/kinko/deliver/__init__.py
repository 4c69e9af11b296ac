"""kinko.deliver."""
