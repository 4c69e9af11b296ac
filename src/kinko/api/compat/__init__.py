"""Other products' wire protocols over the same vault service: HashiCorp Vault (KV v2, token, sys) and Azure
Key Vault secrets (docs/compat.md)."""
