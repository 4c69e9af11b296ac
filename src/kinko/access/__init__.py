"""kinko.access: tokens, policies and the audit log (used by the Vault service, never by interfaces)."""
