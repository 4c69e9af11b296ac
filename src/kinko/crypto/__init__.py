"""kinko.crypto."""
